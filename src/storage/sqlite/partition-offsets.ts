import { inject, injectable } from 'inversify';
import type { PartitionOffset, PartitionOffsetsTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';

@injectable()
export class SqlitePartitionOffsetsTable implements PartitionOffsetsTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  selectPartitionOffsets(tx: Tx, topic: string): Promise<PartitionOffset[]> {
    return this.conn.run(tx, (c) => c.stmt(`SELECT partition, partition_offset AS offset FROM partition_offsets WHERE topic = ?
      ORDER BY partition`).all(topic) as PartitionOffset[]);
  }

  upsertPartitionOffset(tx: Tx, topic: string, partition: number, offset: number): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt(`INSERT INTO partition_offsets (topic, partition, partition_offset) VALUES (?, ?, ?)
        ON CONFLICT (topic, partition) DO UPDATE SET partition_offset = excluded.partition_offset`).run(topic, partition, offset);
    });
  }
}

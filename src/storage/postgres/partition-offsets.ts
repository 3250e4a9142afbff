import { inject, injectable } from 'inversify';
import type { PartitionOffset, PartitionOffsetsTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

@injectable()
export class PostgresPartitionOffsetsTable implements PartitionOffsetsTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async selectPartitionOffsets(tx: Tx, topic: string): Promise<PartitionOffset[]> {
    const r = await this.conn.query<PartitionOffset>(tx, `SELECT partition, partition_offset AS "offset" FROM partition_offsets
      WHERE topic = $1 ORDER BY partition`, [topic]);
    return r.rows;
  }

  async upsertPartitionOffset(tx: Tx, topic: string, partition: number, offset: number): Promise<void> {
    await this.conn.query(tx, `INSERT INTO partition_offsets (topic, partition, partition_offset) VALUES ($1, $2, $3)
      ON CONFLICT (topic, partition) DO UPDATE SET partition_offset = excluded.partition_offset`, [topic, partition, offset]);
  }
}

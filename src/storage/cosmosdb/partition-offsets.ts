import { inject, injectable } from 'inversify';
import type { PartitionOffset, PartitionOffsetsTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';

/** partition_offsets on Cosmos DB: a partition per topic (`offsets|<topic>`), a document per partition. */
@injectable()
export class CosmosPartitionOffsetsTable implements PartitionOffsetsTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  async selectPartitionOffsets(_tx: Tx, topic: string): Promise<PartitionOffset[]> {
    const rows = await this.conn.requests.query<PartitionOffset>('partitionOffsets.select', this.conn.pk('offsets', topic),
      "SELECT c.partition, c.offset FROM c WHERE c.pk = @pk AND c.k = 'offset'");
    return rows.map((r) => ({ partition: r.partition, offset: r.offset })).sort((a, b) => a.partition - b.partition);
  }

  async upsertPartitionOffset(_tx: Tx, topic: string, partition: number, offset: number): Promise<void> {
    // The topic kept as a field too: the partition key may hold it only hashed (see ids.ts).
    await this.conn.requests.upsert('partitionOffsets.upsert', { id: String(partition), pk: this.conn.pk('offsets', topic), k: 'offset', partition, offset, topic });
  }
}

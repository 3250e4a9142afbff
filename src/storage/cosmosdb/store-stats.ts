import { inject, injectable } from 'inversify';
import type { StoreStats, StoreStatsReader } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { StoreFingerprint } from '../shared/fingerprint.js';
import { codePointCompare } from './order.js';
import { COPY_PROGRESS_KIND } from './dump.js';

/**
 * Store statistics on Cosmos DB: cross-partition aggregate queries over this tenant's documents. A rare path (the
 * CLI's summary, benchmarks), never called by the Database code.
 */
@injectable()
export class CosmosStoreStats implements StoreStatsReader {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private async aggregate(kind: string, expression: string): Promise<number> {
    const rows = await this.conn.requests.crossPartitionQuery<number>('stats', this.conn.tenantPrefix,
      `SELECT VALUE ${expression} FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = @k`, [{ name: '@k', value: kind }]);
    return rows.reduce((a, b) => a + (b ?? 0), 0);
  }

  async collect(): Promise<StoreStats> {
    const [rooms, events, stateSnapshots, stateBlocks, stateTuples, blockChars, snapshotBlocks] = await Promise.all([
      this.aggregate('room_id', 'COUNT(1)'),
      this.aggregate('event_id', 'COUNT(1)'),
      this.aggregate('ssh', 'COUNT(1)'),
      this.aggregate('sbh', 'COUNT(1)'),
      this.aggregate('sb', 'SUM(c.count)'),
      this.aggregate('sb', 'SUM(LENGTH(c.bytes))'),
      this.aggregate('ss', 'SUM(ARRAY_LENGTH(c.blocks))'),
    ]);
    // Base64 text is 4/3 of the bytes it encodes; a snapshot's block NIDs are stored as JSON numbers (~8 bytes each).
    return { rooms, events, stateSnapshots, stateBlocks, stateTuples, stateBytes: Math.round(blockChars * 0.75) + snapshotBlocks * 8, totalBytes: undefined };
  }

  async fingerprint(): Promise<string> {
    const docs = await this.conn.requests.crossPartitionQuery<Record<string, unknown>>('stats', this.conn.tenantPrefix,
      'SELECT * FROM c WHERE STARTSWITH(c.pk, @tenant)');
    // The copy's progress record is bookkeeping about the store, not its content.
    const plain = docs.filter((doc) => doc.k !== COPY_PROGRESS_KIND).map(({ _rid, _self, _etag, _attachments, _ts, ...doc }) => doc)
      .sort((a, b) => codePointCompare(`${a.pk}\u0000${a.id}`, `${b.pk}\u0000${b.id}`));
    return new StoreFingerprint().table('documents', plain).digest();
  }
}

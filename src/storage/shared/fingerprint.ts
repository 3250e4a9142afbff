import { createHash, type Hash } from 'node:crypto';

/**
 * The digest behind StoreStatsReader.fingerprint, written once: each table (or Cosmos document kind) is fed in
 * name order, each row as JSON of its values, Buffers as hex, so that two reads of an unchanged store agree.
 */
export class StoreFingerprint {
  private readonly hash: Hash = createHash('sha256');

  table(name: string, rows: Iterable<unknown>): this {
    this.hash.update(`\u0001${name}\n`);
    for (const row of rows) this.hash.update(`${JSON.stringify(row, hexBuffers)}\n`);
    return this;
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

function hexBuffers(this: unknown, _key: string, value: unknown): unknown {
  // JSON.stringify hands a Buffer's toJSON() form here; a Uint8Array (better-sqlite3 BLOBs are Buffers too) likewise.
  if (value && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return `\\x${Buffer.from((value as { data: number[] }).data).toString('hex')}`;
  }
  return value;
}

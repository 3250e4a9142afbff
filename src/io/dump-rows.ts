import { createHash } from 'node:crypto';
import type { DumpRows, DumpTableName, StoreDump } from '../storage/tables/dump.js';

/**
 * Helpers over a store's dump shared by `copy`, its verification and `check`: reading a table page by page,
 * a row's size, and an order-independent digest of a table's rows.
 */

/** Every page of a table from `cursor` on (undefined: from the start), each with the cursor that follows it. */
export async function* pagesOf<K extends DumpTableName>(
  dump: StoreDump, name: K, pageSize: number, cursor?: string,
): AsyncGenerator<{ rows: DumpRows[K][]; next: string | undefined }> {
  const table = dump.table(name);
  let at = cursor;
  // The next page is read while the caller works on this one: a copy's source reads and target writes overlap.
  const read = (from: string | undefined) => {
    const p = table.read(from, pageSize);
    // Awaited on the next turn; until then a failure must not count as unhandled (it is thrown there).
    p.catch(() => {});
    return p;
  };
  let pending = read(at);
  for (;;) {
    const page = await pending;
    if (page.next !== undefined) pending = read(page.next);
    yield page;
    if (page.next === undefined) return;
    at = page.next;
  }
}

/** Every row of a table, a page at a time. */
export async function* rowsOf<K extends DumpTableName>(dump: StoreDump, name: K, pageSize = 1000): AsyncGenerator<DumpRows[K]> {
  for await (const page of pagesOf(dump, name, pageSize)) yield* page.rows;
}

/**
 * The bytes a row's values take (strings as UTF-16 code units, numbers as 8, flags as 1): the measure of data
 * moved that progress and throughput report, the same whichever drivers are at either end.
 */
export function rowBytes(row: object): number {
  let n = 0;
  for (const v of Object.values(row)) {
    if (typeof v === 'string') n += v.length;
    else if (typeof v === 'number') n += 8;
    else if (typeof v === 'boolean') n += 1;
    else if (Array.isArray(v)) n += 8 * v.length * (Array.isArray(v[0]) ? (v[0] as unknown[]).length : 1);
  }
  return n;
}

/** JSON with object keys sorted at every level: the same text for the same row, whatever the driver's key order. */
export function stableJSON(value: unknown): string {
  return JSON.stringify(sortedKeys(value));
}

/** The value with its objects' keys in sorted order; arrays without objects inside (NID lists) kept as they are. */
function sortedKeys(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.some((v) => v !== null && typeof v === 'object') ? value.map(sortedKeys) : value;
  const object = value as Record<string, unknown>;
  return Object.fromEntries(Object.keys(object).sort().map((k) => [k, sortedKeys(object[k])]));
}

const LANES = 4;
const MASK = (1n << 64n) - 1n;

/**
 * An order-independent digest of a multiset of rows: the SHA-256 of each row's stable JSON, added lane by lane
 * (four 64-bit lanes, each modulo 2^64). Two drivers that page in different orders give the same digest for the
 * same rows; a row missing, extra, repeated or changed changes it. Addition rather than XOR, so that a row
 * written twice does not cancel out.
 */
export class RowDigest {
  private readonly lanes = new Array<bigint>(LANES).fill(0n);
  rows = 0;

  /** Adds a row; returns its hash (the caller may use it to sample rows the same way on both sides). */
  add(row: unknown): Buffer {
    const hash = createHash('sha256').update(stableJSON(row)).digest();
    for (let i = 0; i < LANES; i++) this.lanes[i] = (this.lanes[i]! + hash.readBigUInt64LE(i * 8)) & MASK;
    this.rows++;
    return hash;
  }

  hex(): string {
    return this.lanes.map((l) => l.toString(16).padStart(16, '0')).join('');
  }
}

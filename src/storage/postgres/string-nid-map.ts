import { duplicate, notFound, unique } from '../shared/contracts.js';
import { sha256 } from '../shared/state-codec.js';
import type { Tx } from '../tables/index.js';
import type { PostgresConnection } from './connection.js';

/** The content address of a string key: SHA-256 of its UTF-8 bytes (what PostgreSQL stores for the text). */
export const textHash = (s: string): Buffer => sha256(Buffer.from(s, 'utf8'));

/**
 * The shape event_types and event_state_keys share: a string column <-> a NID column from a sequence.
 * Uniqueness and lookups go through a SHA-256 column rather than the string itself, because a B-tree entry is
 * limited to about 2.7 kB and a state key is not (see migrations.ts). Table and column names come from the two
 * table classes, never from input.
 */
export class PostgresStringNIDMap<N extends number> {
  private readonly sql: { insert: string; select: string; bulkByHash: string; bulkByNID: string; assign: string };

  constructor(
    private readonly conn: PostgresConnection, private readonly what: string,
    table: string, nidColumn: string, stringColumn: string, hashColumn: string,
  ) {
    this.sql = {
      insert: `INSERT INTO ${table} (${hashColumn}, ${stringColumn}) VALUES ($1, $2)
        ON CONFLICT (${hashColumn}) DO NOTHING RETURNING ${nidColumn} AS nid`,
      select: `SELECT ${nidColumn} AS nid FROM ${table} WHERE ${hashColumn} = $1`,
      bulkByHash: `SELECT ${hashColumn} AS hash, ${nidColumn} AS nid FROM ${table} WHERE ${hashColumn} = ANY($1::bytea[])`,
      bulkByNID: `SELECT ${stringColumn} AS s, ${nidColumn} AS nid FROM ${table} WHERE ${nidColumn} = ANY($1::bigint[])`,
      // The inserted rows come back from RETURNING, the rows that were there from the SELECT (it reads the snapshot
      // of before the INSERT, so it never sees a row twice).
      assign: `WITH input AS (SELECT * FROM unnest($1::bytea[], $2::text[]) WITH ORDINALITY AS t(hash, s, n)),
        ins AS (INSERT INTO ${table} (${hashColumn}, ${stringColumn}) SELECT hash, s FROM input ORDER BY n
          ON CONFLICT (${hashColumn}) DO NOTHING RETURNING ${hashColumn} AS hash, ${nidColumn} AS nid)
        SELECT hash, nid FROM ins UNION ALL SELECT ${hashColumn} AS hash, ${nidColumn} AS nid FROM ${table}
          WHERE ${hashColumn} = ANY($1::bytea[])`,
    };
  }

  async insert(tx: Tx, value: string): Promise<N> {
    const r = await this.conn.query<{ nid: N }>(tx, this.sql.insert, [textHash(value), value]);
    const row = r.rows[0];
    if (!row) throw duplicate(this.what, value);
    return row.nid;
  }

  async select(tx: Tx, value: string): Promise<N> {
    const r = await this.conn.query<{ nid: N }>(tx, this.sql.select, [textHash(value)]);
    const row = r.rows[0];
    if (!row) throw notFound(this.what, value);
    return row.nid;
  }

  async bulkSelectNIDs(tx: Tx, values: readonly string[]): Promise<Map<string, N>> {
    const byHash = new Map(unique(values).map((v) => [textHash(v).toString('hex'), v]));
    if (byHash.size === 0) return this.conn.nothing(tx, new Map());
    const r = await this.conn.query<{ hash: Buffer; nid: N }>(tx, this.sql.bulkByHash, [[...byHash.keys()].map((h) => Buffer.from(h, 'hex'))]);
    return new Map(r.rows.map((row) => [byHash.get(row.hash.toString('hex'))!, row.nid]));
  }

  /**
   * Known values' NIDs, and new ones for the others, in one statement. A value another transaction inserts while
   * this one runs is missed by the statement's snapshot; it is read again, by itself, afterwards.
   */
  async assign(tx: Tx, values: readonly string[]): Promise<Map<string, N>> {
    // In hash order: concurrent inserts of the same new values then wait for each other in one order, never in a
    // cycle (two statements inserting the same keys in opposite orders deadlock).
    const hashed = unique(values).map((v) => ({ v, hash: textHash(v) })).sort((a, b) => Buffer.compare(a.hash, b.hash));
    if (hashed.length === 0) return this.conn.nothing(tx, new Map());
    const wanted = hashed.map((h) => h.v);
    const hashes = hashed.map((h) => h.hash);
    const byHash = new Map(wanted.map((v, i) => [hashes[i]!.toString('hex'), v]));
    const r = await this.conn.query<{ hash: Buffer; nid: N }>(tx, this.sql.assign, [hashes, wanted]);
    const out = new Map(r.rows.map((row) => [byHash.get(row.hash.toString('hex'))!, row.nid]));
    const missed = wanted.filter((v) => !out.has(v));
    if (missed.length > 0) for (const [v, nid] of await this.bulkSelectNIDs(tx, missed)) out.set(v, nid);
    return out;
  }

  async bulkSelectStrings(tx: Tx, nids: readonly N[]): Promise<Map<N, string>> {
    if (nids.length === 0) return this.conn.nothing(tx, new Map());
    const r = await this.conn.query<{ s: string; nid: N }>(tx, this.sql.bulkByNID, [unique(nids)]);
    return new Map(r.rows.map((row) => [row.nid, row.s]));
  }
}

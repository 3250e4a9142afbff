import { duplicate, notFound, unique } from '../shared/contracts.js';
import type { Tx } from '../tables/index.js';
import type { SqliteConnection } from './connection.js';
import { IN_LIST, nidList, textList } from './values.js';

/**
 * The shape event_types and event_state_keys share: a string column <-> an autoincrement NID column.
 * Table and column names come from the two table classes, never from input.
 */
export class SqliteStringNIDMap<N extends number> {
  private readonly sql: { insert: string; select: string; bulkByString: string; bulkByNID: string };

  constructor(private readonly conn: SqliteConnection, private readonly what: string, table: string, nidColumn: string, stringColumn: string) {
    this.sql = {
      insert: `INSERT INTO ${table} (${stringColumn}) VALUES (?) ON CONFLICT DO NOTHING RETURNING ${nidColumn} AS nid`,
      select: `SELECT ${nidColumn} AS nid FROM ${table} WHERE ${stringColumn} = ?`,
      bulkByString: `SELECT ${stringColumn} AS s, ${nidColumn} AS nid FROM ${table} WHERE ${stringColumn} ${IN_LIST}`,
      bulkByNID: `SELECT ${stringColumn} AS s, ${nidColumn} AS nid FROM ${table} WHERE ${nidColumn} ${IN_LIST}`,
    };
  }

  insert(tx: Tx, value: string): Promise<N> {
    return this.conn.run(tx, (c) => {
      const row = c.stmt(this.sql.insert).get(value) as { nid: N } | undefined;
      if (!row) throw duplicate(this.what, value);
      return row.nid;
    });
  }

  select(tx: Tx, value: string): Promise<N> {
    return this.conn.run(tx, (c) => {
      const row = c.stmt(this.sql.select).get(value) as { nid: N } | undefined;
      if (!row) throw notFound(this.what, value);
      return row.nid;
    });
  }

  /** Selects the known values' NIDs and inserts the others (SQLite has one writer: nobody races the inserts). */
  assign(tx: Tx, values: readonly string[]): Promise<Map<string, N>> {
    return this.conn.run(tx, (c) => {
      const wanted = unique(values);
      const found = new Map((c.stmt(this.sql.bulkByString).all(textList(wanted)) as { s: string; nid: N }[]).map((r) => [r.s, r.nid]));
      for (const v of wanted) {
        if (found.has(v)) continue;
        const row = c.stmt(this.sql.insert).get(v) as { nid: N } | undefined;
        found.set(v, row ? row.nid : (c.stmt(this.sql.select).get(v) as { nid: N }).nid);
      }
      return found;
    });
  }

  bulkSelectNIDs(tx: Tx, values: readonly string[]): Promise<Map<string, N>> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(this.sql.bulkByString).all(textList(unique(values))) as { s: string; nid: N }[];
      return new Map(rows.map((r) => [r.s, r.nid]));
    });
  }

  bulkSelectStrings(tx: Tx, nids: readonly N[]): Promise<Map<N, string>> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(this.sql.bulkByNID).all(nidList(unique(nids))) as { s: string; nid: N }[];
      return new Map(rows.map((r) => [r.nid, r.s]));
    });
  }
}

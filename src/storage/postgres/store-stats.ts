import { inject, injectable } from 'inversify';
import type { StoreStats, StoreStatsReader } from '../tables/index.js';
import { StoreFingerprint } from '../shared/fingerprint.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

@injectable()
export class PostgresStoreStats implements StoreStatsReader {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  /**
   * One statement. stateBytes counts the payload as stored (pg_column_size of the bytea and bigint[] values);
   * totalBytes is what the store's schema takes on disk: every table in it with its indexes and TOAST data
   * (pg_total_relation_size), which is the whole store when the schema is its own (postgres.schema).
   */
  async collect(): Promise<StoreStats> {
    const r = await this.conn.query<StoreStats>(this.conn.autocommit, `SELECT
        (SELECT count(*) FROM roomserver_rooms) AS rooms,
        (SELECT count(*) FROM roomserver_events) AS events,
        (SELECT count(*) FROM roomserver_state_snapshots) AS "stateSnapshots",
        (SELECT count(*) FROM roomserver_state_block) AS "stateBlocks",
        (SELECT coalesce(sum(entry_count), 0)::bigint FROM roomserver_state_block) AS "stateTuples",
        (SELECT coalesce(sum(pg_column_size(entries) + 4), 0)::bigint FROM roomserver_state_block)
          + (SELECT coalesce(sum(pg_column_size(block_list) + 4), 0)::bigint
             FROM roomserver_state_snapshots) AS "stateBytes",
        (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
          WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'm')) AS "totalBytes"`);
    return r.rows[0]!;
  }

  async fingerprint(): Promise<string> {
    const auto = this.conn.autocommit;
    const tables = await this.conn.query<{ name: string; columns: number }>(auto, `SELECT c.relname AS name, count(a.attnum)::int AS columns
      FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND c.relname NOT IN ('matrix_storage_migrations', 'matrix_storage_copy')
      GROUP BY c.relname ORDER BY c.relname COLLATE "C"`);
    const print = new StoreFingerprint();
    for (const { name, columns } of tables.rows) {
      const order = Array.from({ length: columns }, (_, i) => i + 1).join(', ');
      // Table names come from the catalog, never from input; quoted all the same. Rows as arrays: column names aside.
      const rows = await this.conn.pool.query({ text: `SELECT * FROM "${name.replace(/"/g, '""')}" ORDER BY ${order}`, rowMode: 'array' });
      print.table(name, rows.rows);
    }
    return print.digest();
  }
}

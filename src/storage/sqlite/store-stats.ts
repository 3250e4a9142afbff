import { inject, injectable } from 'inversify';
import type { StoreStats, StoreStatsReader } from '../tables/index.js';
import { StoreFingerprint } from '../shared/fingerprint.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';

@injectable()
export class SqliteStoreStats implements StoreStatsReader {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  async collect(): Promise<StoreStats> {
    const counts = await this.conn.run(this.conn.autocommit, (c) => c.stmt(`SELECT
        (SELECT COUNT(*) FROM roomserver_rooms) AS rooms,
        (SELECT COUNT(*) FROM roomserver_events) AS events,
        (SELECT COUNT(*) FROM roomserver_state_snapshots) AS stateSnapshots,
        (SELECT COUNT(*) FROM roomserver_state_block) AS stateBlocks,
        (SELECT COALESCE(SUM(entry_count), 0) FROM roomserver_state_block) AS stateTuples,
        (SELECT COALESCE(SUM(length(entries) + 4), 0) FROM roomserver_state_block)
          + (SELECT COALESCE(SUM(length(block_list) + 4), 0) FROM roomserver_state_snapshots) AS stateBytes`)
      .get() as Omit<StoreStats, 'totalBytes'>);
    return { ...counts, totalBytes: this.fileBytes() };
  }

  async fingerprint(): Promise<string> {
    return this.conn.run(this.conn.autocommit, (c) => {
      const print = new StoreFingerprint();
      const tables = c.db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT IN ('matrix_storage_migrations', 'matrix_storage_copy') ORDER BY name").pluck().all() as string[];
      for (const table of tables) {
        const columns = (c.db.prepare(`SELECT count(*) FROM pragma_table_info(?)`).pluck().get(table) as number);
        const order = Array.from({ length: columns }, (_, i) => i + 1).join(', ');
        // Table names come from the schema itself, never from input; quoted all the same.
        print.table(table, c.db.prepare(`SELECT * FROM "${table.replace(/"/g, '""')}" ORDER BY ${order}`).raw().iterate());
      }
      return print.digest();
    });
  }

  /** The database file plus its WAL: what the store takes on disk (undefined in memory). */
  /**
   * The database's size as its file holds it once the WAL is checkpointed: its pages, those still in the WAL
   * included. (The WAL file itself keeps its size between checkpoints: adding it would count pages twice.)
   */
  private fileBytes(): number | undefined {
    const file = this.conn.db.name;
    if (file === ':memory:' || file === '') return undefined;
    const pages = this.conn.db.pragma('page_count', { simple: true }) as number;
    return pages * (this.conn.db.pragma('page_size', { simple: true }) as number);
  }
}

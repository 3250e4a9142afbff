import { inject, injectable } from 'inversify';
import { OFFSET_NEWEST } from '../../types/keys.js';
import type { KeyChangesTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';

@injectable()
export class SqliteKeyChangesTable implements KeyChangesTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  /** One statement: max + 1 over the table. Rows are never deleted and only move up, so IDs only grow. */
  insertKeyChange(tx: Tx, userID: string): Promise<number> {
    return this.conn.run(tx, (c) => (c.stmt(`INSERT INTO keyserver_key_changes (user_id, change_id)
      VALUES (?, (SELECT COALESCE(MAX(change_id), 0) + 1 FROM keyserver_key_changes))
      ON CONFLICT (user_id) DO UPDATE SET change_id = excluded.change_id RETURNING change_id AS id`).get(userID) as { id: number }).id);
  }

  selectKeyChanges(tx: Tx, fromOffset: number, toOffset: number): Promise<{ userIDs: string[]; latestOffset: number }> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT user_id AS userID, change_id AS id FROM keyserver_key_changes
        WHERE change_id > @fromOffset AND (@toOffset = ${OFFSET_NEWEST} OR change_id <= @toOffset) ORDER BY user_id`).all({ fromOffset, toOffset }) as
        { userID: string; id: number }[];
      return { userIDs: rows.map((r) => r.userID), latestOffset: rows.reduce((max, r) => Math.max(max, r.id), fromOffset) };
    });
  }
}

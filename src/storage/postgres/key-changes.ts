import { inject, injectable } from 'inversify';
import { OFFSET_NEWEST } from '../../types/keys.js';
import type { KeyChangesTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

@injectable()
export class PostgresKeyChangesTable implements KeyChangesTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  /**
   * One upsert: a new user's row, or an existing user's row moved, takes nextval of the table's sequence, so every
   * change ID is greater than any handed out before, whichever transactions run at once (nextval is never rolled
   * back, so an aborted change leaves a gap, never a repeat).
   */
  async insertKeyChange(tx: Tx, userID: string): Promise<number> {
    const r = await this.conn.query<{ id: number }>(tx, `INSERT INTO keyserver_key_changes (user_id, change_id)
      VALUES ($1, nextval('keyserver_key_changes_change_id_seq'))
      ON CONFLICT (user_id) DO UPDATE SET change_id = excluded.change_id RETURNING change_id AS id`, [userID]);
    return r.rows[0]!.id;
  }

  async selectKeyChanges(tx: Tx, fromOffset: number, toOffset: number): Promise<{ userIDs: string[]; latestOffset: number }> {
    const r = await this.conn.query<{ userID: string; id: number }>(tx, `SELECT user_id AS "userID", change_id AS id FROM keyserver_key_changes
      WHERE change_id > $1 AND ($2::bigint = ${OFFSET_NEWEST} OR change_id <= $2) ORDER BY user_id`, [fromOffset, toOffset]);
    return { userIDs: r.rows.map((row) => row.userID), latestOffset: r.rows.reduce((max, row) => Math.max(max, row.id), fromOffset) };
  }
}

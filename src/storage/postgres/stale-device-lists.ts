import { inject, injectable } from 'inversify';
import { serverNameOf } from '../../types/input.js';
import { unique } from '../shared/contracts.js';
import type { StaleDeviceListsTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

@injectable()
export class PostgresStaleDeviceListsTable implements StaleDeviceListsTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async insertStaleDeviceList(tx: Tx, userID: string, isStale: boolean): Promise<void> {
    const domain = serverNameOf(userID);
    await this.conn.query(tx, `INSERT INTO keyserver_stale_device_lists (user_id, domain, is_stale, ts_added_secs) VALUES ($1, $2, $3, $4)
      ON CONFLICT (user_id) DO UPDATE SET is_stale = excluded.is_stale, ts_added_secs = excluded.ts_added_secs`,
    [userID, domain, isStale, Math.floor(Date.now() / 1000)]);
  }

  async selectUserIDsWithStaleDeviceLists(tx: Tx, domains: readonly string[]): Promise<string[]> {
    const r = domains.length === 0
      ? await this.conn.query<{ id: string }>(tx, 'SELECT user_id AS id FROM keyserver_stale_device_lists WHERE is_stale ORDER BY user_id')
      : await this.conn.query<{ id: string }>(tx, `SELECT user_id AS id FROM keyserver_stale_device_lists
          WHERE is_stale AND domain = ANY($1::text[]) ORDER BY user_id`, [unique(domains)]);
    return r.rows.map((row) => row.id);
  }

  async deleteStaleDeviceLists(tx: Tx, userIDs: readonly string[]): Promise<void> {
    if (userIDs.length === 0) return this.conn.nothing(tx, undefined);
    await this.conn.query(tx, 'DELETE FROM keyserver_stale_device_lists WHERE user_id = ANY($1::text[])', [unique(userIDs)]);
  }
}

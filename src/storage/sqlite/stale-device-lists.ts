import { inject, injectable } from 'inversify';
import { serverNameOf } from '../../types/input.js';
import { unique } from '../shared/contracts.js';
import type { StaleDeviceListsTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { bool, IN_LIST, textList } from './values.js';

@injectable()
export class SqliteStaleDeviceListsTable implements StaleDeviceListsTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertStaleDeviceList(tx: Tx, userID: string, isStale: boolean): Promise<void> {
    return this.conn.run(tx, (c) => {
      const domain = serverNameOf(userID);
      c.stmt(`INSERT INTO keyserver_stale_device_lists (user_id, domain, is_stale, ts_added_secs) VALUES (?, ?, ?, ?)
        ON CONFLICT (user_id) DO UPDATE SET is_stale = excluded.is_stale, ts_added_secs = excluded.ts_added_secs`)
        .run(userID, domain, bool(isStale), Math.floor(Date.now() / 1000));
    });
  }

  selectUserIDsWithStaleDeviceLists(tx: Tx, domains: readonly string[]): Promise<string[]> {
    return this.conn.run(tx, (c) => {
      const rows = domains.length === 0
        ? c.stmt('SELECT user_id AS id FROM keyserver_stale_device_lists WHERE is_stale = 1 ORDER BY user_id').all()
        : c.stmt(`SELECT user_id AS id FROM keyserver_stale_device_lists WHERE is_stale = 1 AND domain ${IN_LIST} ORDER BY user_id`)
          .all(textList(unique(domains)));
      return (rows as { id: string }[]).map((r) => r.id);
    });
  }

  deleteStaleDeviceLists(tx: Tx, userIDs: readonly string[]): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt(`DELETE FROM keyserver_stale_device_lists WHERE user_id ${IN_LIST}`).run(textList(unique(userIDs)));
    });
  }
}

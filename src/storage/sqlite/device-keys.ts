import { inject, injectable } from 'inversify';
import { InvalidInputError } from '../../types/errors.js';
import { deviceMessageOf, unique, type DeviceKeyRow } from '../shared/contracts.js';
import type { DeviceKeysTable, DeviceMessage, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { IN_LIST, nidList, textList } from './values.js';

const COLUMNS = 'user_id AS userID, device_id AS deviceID, key_json AS keyJSON, stream_id AS streamID, display_name AS displayName';

@injectable()
export class SqliteDeviceKeysTable implements DeviceKeysTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertDeviceKeys(tx: Tx, messages: readonly DeviceMessage[]): Promise<void> {
    return this.conn.run(tx, (c) => {
      const now = Math.floor(Date.now() / 1000);
      const insert = c.stmt(`INSERT INTO keyserver_device_keys (user_id, device_id, ts_added_secs, key_json, stream_id, display_name)
        VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO UPDATE
        SET key_json = excluded.key_json, stream_id = excluded.stream_id, display_name = excluded.display_name`);
      // One SAVEPOINT (or transaction) around the batch: under autocommit a failure half-way must not leave half.
      c.db.transaction(() => {
        for (const m of messages) insert.run(m.userID, m.deviceID, now, m.keyJSON, m.streamID, m.displayName ?? null);
      }).immediate();
    });
  }

  selectDeviceKeysJSON(tx: Tx, messages: DeviceMessage[]): Promise<void> {
    return this.conn.run(tx, (c) => {
      const select = c.stmt(`SELECT ${COLUMNS} FROM keyserver_device_keys WHERE user_id = ? AND device_id = ?`);
      for (const m of messages) {
        const row = select.get(m.userID, m.deviceID) as DeviceKeyRow | undefined;
        m.keyJSON = row?.keyJSON ?? '';
        m.streamID = row?.streamID ?? 0;
        m.displayName = row?.displayName ?? undefined;
      }
    });
  }

  selectMaxStreamIDForUser(tx: Tx, userID: string): Promise<number> {
    return this.conn.run(tx, (c) => (c.stmt('SELECT COALESCE(MAX(stream_id), 0) AS m FROM keyserver_device_keys WHERE user_id = ?')
      .get(userID) as { m: number }).m);
  }

  /** Inside a transaction, SQLite's single writer (BEGIN IMMEDIATE) holds every other writer off until it ends. */
  reserveStreamIDs(tx: Tx, userID: string, count: number): Promise<number> {
    return this.conn.run(tx, (c) => {
      if (!Number.isSafeInteger(count) || count < 1) throw new InvalidInputError(`a stream ID reservation is for 1 or more IDs, got ${count}`);
      return (c.stmt('SELECT COALESCE(MAX(stream_id), 0) + 1 AS first FROM keyserver_device_keys WHERE user_id = ?').get(userID) as { first: number }).first;
    });
  }

  countStreamIDsForUser(tx: Tx, userID: string, streamIDs: readonly number[]): Promise<number> {
    return this.conn.run(tx, (c) => (c.stmt(`SELECT COUNT(DISTINCT stream_id) AS n FROM keyserver_device_keys WHERE user_id = ? AND stream_id ${IN_LIST}`)
      .get(userID, nidList(unique(streamIDs))) as { n: number }).n);
  }

  selectBatchDeviceKeys(tx: Tx, userID: string, deviceIDs: readonly string[], includeEmpty = false): Promise<DeviceMessage[]> {
    const keys = includeEmpty ? '' : "AND key_json != ''";
    return this.conn.run(tx, (c) => {
      const rows = deviceIDs.length === 0
        ? c.stmt(`SELECT ${COLUMNS} FROM keyserver_device_keys WHERE user_id = ? ${keys} ORDER BY device_id`).all(userID)
        : c.stmt(`SELECT ${COLUMNS} FROM keyserver_device_keys WHERE user_id = ? ${keys} AND device_id ${IN_LIST}
            ORDER BY device_id`).all(userID, textList(unique(deviceIDs)));
      return (rows as DeviceKeyRow[]).map(deviceMessageOf);
    });
  }

  deleteDeviceKeys(tx: Tx, userID: string, deviceID: string): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt('DELETE FROM keyserver_device_keys WHERE user_id = ? AND device_id = ?').run(userID, deviceID);
    });
  }

  deleteAllDeviceKeys(tx: Tx, userID: string, keepDeviceIDs: readonly string[] = []): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt(`DELETE FROM keyserver_device_keys WHERE user_id = ? AND device_id NOT ${IN_LIST}`).run(userID, textList(unique(keepDeviceIDs)));
    });
  }
}

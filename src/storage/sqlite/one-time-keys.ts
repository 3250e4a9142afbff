import { inject, injectable } from 'inversify';
import { InvalidInputError } from '../../types/errors.js';
import { preview } from '../../types/input.js';
import { unique } from '../shared/contracts.js';
import type { OneTimeKeys, OneTimeKeysCount, OneTimeKeysTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';

/** "algorithm:keyID" split at the first ":", or undefined when there is none. */
const split = (name: string): [string, string] | undefined => {
  const colon = name.indexOf(':');
  return colon < 0 ? undefined : [name.slice(0, colon), name.slice(colon + 1)];
};

@injectable()
export class SqliteOneTimeKeysTable implements OneTimeKeysTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertOneTimeKeys(tx: Tx, keys: OneTimeKeys): Promise<OneTimeKeysCount> {
    return this.conn.run(tx, (c) => {
      const rows = [...keys.keyJSON].map(([name, json]) => {
        const parts = split(name);
        if (!parts) throw new InvalidInputError(`one-time key names are "algorithm:keyID", got ${preview(name)}`);
        return [...parts, json] as const;
      });
      const now = Math.floor(Date.now() / 1000);
      const insert = c.stmt(`INSERT INTO keyserver_one_time_keys (user_id, device_id, algorithm, key_id, ts_added_secs, key_json)
        VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, device_id, algorithm, key_id) DO UPDATE SET key_json = excluded.key_json`);
      // One SAVEPOINT (or transaction) around the batch: under autocommit a failure half-way must not leave half.
      c.db.transaction(() => {
        for (const [algorithm, keyID, json] of rows) insert.run(keys.userID, keys.deviceID, algorithm, keyID, now, json);
      }).immediate();
      return this.count(c, keys.userID, keys.deviceID);
    });
  }

  selectOneTimeKeys(tx: Tx, userID: string, deviceID: string, keyIDsWithAlgorithms: readonly string[]): Promise<Map<string, string>> {
    return this.conn.run(tx, (c) => {
      const select = c.stmt(`SELECT key_json AS json FROM keyserver_one_time_keys
        WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?`);
      const out = new Map<string, string>();
      for (const name of unique(keyIDsWithAlgorithms)) {
        const parts = split(name);
        if (!parts) continue;
        const row = select.get(userID, deviceID, parts[0], parts[1]) as { json: string } | undefined;
        if (row) out.set(name, row.json);
      }
      return out;
    });
  }

  countOneTimeKeys(tx: Tx, userID: string, deviceID: string): Promise<OneTimeKeysCount> {
    return this.conn.run(tx, (c) => this.count(c, userID, deviceID));
  }

  private count(c: SqliteConnection, userID: string, deviceID: string): OneTimeKeysCount {
    const rows = c.stmt(`SELECT algorithm, COUNT(*) AS n FROM keyserver_one_time_keys WHERE user_id = ? AND device_id = ?
      GROUP BY algorithm ORDER BY algorithm`).all(userID, deviceID) as { algorithm: string; n: number }[];
    return { userID, deviceID, keyCount: new Map(rows.map((r) => [r.algorithm, r.n])) };
  }

  /** One DELETE ... RETURNING: atomic on its own, so two claims can never both get a key. */
  selectAndDeleteOneTimeKey(tx: Tx, userID: string, deviceID: string, algorithm: string): Promise<readonly [string, string] | null> {
    return this.conn.run(tx, (c) => {
      const row = c.stmt(`DELETE FROM keyserver_one_time_keys WHERE user_id = @userID AND device_id = @deviceID AND algorithm = @algorithm
        AND key_id = (SELECT key_id FROM keyserver_one_time_keys WHERE user_id = @userID AND device_id = @deviceID AND algorithm = @algorithm
          ORDER BY key_id LIMIT 1)
        RETURNING key_id AS keyID, key_json AS json`).get({ userID, deviceID, algorithm }) as { keyID: string; json: string } | undefined;
      return row ? [`${algorithm}:${row.keyID}`, row.json] as const : null;
    });
  }
}

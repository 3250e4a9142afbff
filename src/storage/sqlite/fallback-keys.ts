import { inject, injectable } from 'inversify';
import type { FallbackKeysTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';

@injectable()
export class SqliteFallbackKeysTable implements FallbackKeysTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  upsertFallbackKeys(tx: Tx, userID: string, deviceID: string, keys: readonly (readonly [string, string, string])[]): Promise<void> {
    return this.conn.run(tx, (c) => {
      // The same key uploaded again keeps its used mark (the WHERE leaves its row alone); any other replaces it, unused.
      const upsert = c.stmt(`INSERT INTO keyserver_fallback_keys (user_id, device_id, algorithm, key_id, ts_added_secs, key_json, used)
        VALUES (?, ?, ?, ?, ?, ?, 0)
        ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET key_id = excluded.key_id, ts_added_secs = excluded.ts_added_secs,
          key_json = excluded.key_json, used = 0
        WHERE key_id <> excluded.key_id OR key_json <> excluded.key_json`);
      const now = Math.floor(Date.now() / 1000);
      // One SAVEPOINT (or transaction) around the batch: under autocommit a failure half-way must not leave half.
      c.db.transaction(() => {
        for (const [algorithm, keyID, json] of keys) upsert.run(userID, deviceID, algorithm, keyID, now, json);
      }).immediate();
    });
  }

  selectUnusedFallbackKeyAlgorithms(tx: Tx, userID: string, deviceID: string): Promise<string[]> {
    return this.conn.run(tx, (c) => (c.stmt(`SELECT algorithm FROM keyserver_fallback_keys
      WHERE user_id = ? AND device_id = ? AND used = 0 ORDER BY algorithm`).all(userID, deviceID) as { algorithm: string }[]).map((r) => r.algorithm));
  }

  /** One UPDATE ... RETURNING: the key is marked used in the statement that reads it. */
  claimFallbackKey(tx: Tx, userID: string, deviceID: string, algorithm: string): Promise<readonly [string, string] | null> {
    return this.conn.run(tx, (c) => {
      const row = c.stmt(`UPDATE keyserver_fallback_keys SET used = 1 WHERE user_id = ? AND device_id = ? AND algorithm = ?
        RETURNING key_id AS keyID, key_json AS json`).get(userID, deviceID, algorithm) as { keyID: string; json: string } | undefined;
      return row ? [`${algorithm}:${row.keyID}`, row.json] as const : null;
    });
  }

  deleteFallbackKeys(tx: Tx, userID: string, deviceID: string): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt('DELETE FROM keyserver_fallback_keys WHERE user_id = ? AND device_id = ?').run(userID, deviceID);
    });
  }
}

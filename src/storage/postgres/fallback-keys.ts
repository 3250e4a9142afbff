import { inject, injectable } from 'inversify';
import type { FallbackKeysTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

@injectable()
export class PostgresFallbackKeysTable implements FallbackKeysTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  /**
   * One statement for all the keys (unnest; each algorithm once, so no row is touched twice). The same key uploaded
   * again keeps its used mark (the WHERE leaves its row alone); any other replaces it, unused.
   */
  async upsertFallbackKeys(tx: Tx, userID: string, deviceID: string, keys: readonly (readonly [string, string, string])[]): Promise<void> {
    if (keys.length === 0) return this.conn.nothing(tx, undefined);
    await this.conn.query(tx, `INSERT INTO keyserver_fallback_keys (user_id, device_id, algorithm, key_id, ts_added_secs, key_json, used)
      SELECT $1, $2, k.a, k.i, $3, k.j, false FROM unnest($4::text[], $5::text[], $6::text[]) AS k(a, i, j)
      ON CONFLICT (user_id, device_id, algorithm) DO UPDATE SET key_id = excluded.key_id, ts_added_secs = excluded.ts_added_secs,
        key_json = excluded.key_json, used = false
      WHERE keyserver_fallback_keys.key_id <> excluded.key_id OR keyserver_fallback_keys.key_json <> excluded.key_json`,
    [userID, deviceID, Math.floor(Date.now() / 1000), keys.map((k) => k[0]), keys.map((k) => k[1]), keys.map((k) => k[2])]);
  }

  async selectUnusedFallbackKeyAlgorithms(tx: Tx, userID: string, deviceID: string): Promise<string[]> {
    const r = await this.conn.query<{ algorithm: string }>(tx, `SELECT algorithm FROM keyserver_fallback_keys
      WHERE user_id = $1 AND device_id = $2 AND NOT used ORDER BY algorithm`, [userID, deviceID]);
    return r.rows.map((row) => row.algorithm);
  }

  /**
   * One UPDATE ... RETURNING: the key is marked used in the statement that reads it; concurrent claims of one key
   * take its row lock in turn and each gets the key (a fallback key is handed out to every claim that needs it).
   */
  async claimFallbackKey(tx: Tx, userID: string, deviceID: string, algorithm: string): Promise<readonly [string, string] | null> {
    const r = await this.conn.query<{ keyID: string; json: string }>(tx, `UPDATE keyserver_fallback_keys SET used = true
      WHERE user_id = $1 AND device_id = $2 AND algorithm = $3 RETURNING key_id AS "keyID", key_json AS json`, [userID, deviceID, algorithm]);
    const row = r.rows[0];
    return row ? [`${algorithm}:${row.keyID}`, row.json] as const : null;
  }

  async deleteFallbackKeys(tx: Tx, userID: string, deviceID: string): Promise<void> {
    await this.conn.query(tx, 'DELETE FROM keyserver_fallback_keys WHERE user_id = $1 AND device_id = $2', [userID, deviceID]);
  }
}

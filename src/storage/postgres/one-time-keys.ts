import { inject, injectable } from 'inversify';
import { InvalidInputError } from '../../types/errors.js';
import { preview } from '../../types/input.js';
import { unique } from '../shared/contracts.js';
import type { OneTimeKeys, OneTimeKeysCount, OneTimeKeysTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

/** "algorithm:keyID" split at the first ":", or undefined when there is none. */
const split = (name: string): [string, string] | undefined => {
  const colon = name.indexOf(':');
  return colon < 0 ? undefined : [name.slice(0, colon), name.slice(colon + 1)];
};

const COUNT = `SELECT algorithm, COUNT(*) AS n FROM keyserver_one_time_keys WHERE user_id = $1 AND device_id = $2
  GROUP BY algorithm ORDER BY algorithm`;

/** The device's keys of the algorithm, first key ID first (the primary key's order). */
const OF_ALGORITHM = `SELECT key_id FROM keyserver_one_time_keys WHERE user_id = $1 AND device_id = $2 AND algorithm = $3
  ORDER BY key_id LIMIT 1`;

@injectable()
export class PostgresOneTimeKeysTable implements OneTimeKeysTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  /**
   * The upsert is one statement for all the keys (unnest; a Map holds each name once, so no row is touched twice),
   * then the counts. In a transaction the two are pipelined (one round trip; the count runs after the upsert and
   * sees it); under autocommit they go one after the other, since the pool could run them on two connections.
   */
  async insertOneTimeKeys(tx: Tx, keys: OneTimeKeys): Promise<OneTimeKeysCount> {
    const rows = [...keys.keyJSON].map(([name, json]) => {
      const parts = split(name);
      if (!parts) throw new InvalidInputError(`one-time key names are "algorithm:keyID", got ${preview(name)}`);
      return [...parts, json] as const;
    });
    const inTransaction = this.conn.clientOf(tx) !== undefined;
    const insert = rows.length === 0 ? undefined : this.conn.query(tx, `INSERT INTO keyserver_one_time_keys
      (user_id, device_id, algorithm, key_id, ts_added_secs, key_json)
      SELECT $1, $2, k.a, k.i, $3, k.j FROM unnest($4::text[], $5::text[], $6::text[]) AS k(a, i, j)
      ON CONFLICT (user_id, device_id, algorithm, key_id) DO UPDATE SET key_json = excluded.key_json`,
    [keys.userID, keys.deviceID, Math.floor(Date.now() / 1000), rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])]);
    if (!inTransaction) await insert;
    const [, count] = await Promise.all([insert, this.count(tx, keys.userID, keys.deviceID)]);
    return count;
  }

  /** One statement for all the names; the answer lists the keys found in the order they were asked for. */
  async selectOneTimeKeys(tx: Tx, userID: string, deviceID: string, keyIDsWithAlgorithms: readonly string[]): Promise<Map<string, string>> {
    const wanted = unique(keyIDsWithAlgorithms).flatMap((name) => {
      const parts = split(name);
      return parts ? [{ name, parts }] : [];
    });
    if (wanted.length === 0) return this.conn.nothing(tx, new Map());
    const r = await this.conn.query<{ algorithm: string; keyID: string; json: string }>(tx, `SELECT algorithm, key_id AS "keyID", key_json AS json
      FROM keyserver_one_time_keys WHERE user_id = $1 AND device_id = $2
      AND (algorithm, key_id) IN (SELECT * FROM unnest($3::text[], $4::text[]))`,
    [userID, deviceID, wanted.map((w) => w.parts[0]), wanted.map((w) => w.parts[1])]);
    const found = new Map(r.rows.map((row) => [`${row.algorithm}:${row.keyID}`, row.json]));
    const out = new Map<string, string>();
    for (const { name } of wanted) {
      const json = found.get(name);
      if (json !== undefined) out.set(name, json);
    }
    return out;
  }

  async countOneTimeKeys(tx: Tx, userID: string, deviceID: string): Promise<OneTimeKeysCount> {
    return this.count(tx, userID, deviceID);
  }

  private async count(tx: Tx, userID: string, deviceID: string): Promise<OneTimeKeysCount> {
    const r = await this.conn.query<{ algorithm: string; n: number }>(tx, COUNT, [userID, deviceID]);
    return { userID, deviceID, keyCount: new Map(r.rows.map((row) => [row.algorithm, row.n])) };
  }

  /**
   * One DELETE ... RETURNING whose key is picked by the first of two sub-selects that finds one:
   * - `FOR UPDATE SKIP LOCKED`: the first key no other transaction holds, locked until this one ends. Concurrent
   *   claims each lock a different key and never wait for one another; a key deleted by a claim that committed
   *   after this statement's snapshot is passed over (its row lock is gone, the row with it).
   * - only if every key the snapshot shows is held by another transaction: the same with a plain `FOR UPDATE`, which
   *   waits for the holder. If it deleted the key (a claim that committed), the next one is tried; if it kept the key
   *   (a claim that rolled back, a re-upload of the key), this claim takes it. So no claim comes back empty while a
   *   key remains, which SKIP LOCKED alone would allow.
   * COALESCE evaluates the second sub-select only when the first found nothing: the common claim locks one row and
   * waits for nobody. N keys serve exactly N of any number of concurrent claims.
   */
  async selectAndDeleteOneTimeKey(tx: Tx, userID: string, deviceID: string, algorithm: string): Promise<readonly [string, string] | null> {
    const r = await this.conn.query<{ keyID: string; json: string }>(tx, `DELETE FROM keyserver_one_time_keys
      WHERE user_id = $1 AND device_id = $2 AND algorithm = $3
        AND key_id = COALESCE((${OF_ALGORITHM} FOR UPDATE SKIP LOCKED), (${OF_ALGORITHM} FOR UPDATE))
      RETURNING key_id AS "keyID", key_json AS json`, [userID, deviceID, algorithm]);
    const row = r.rows[0];
    return row ? [`${algorithm}:${row.keyID}`, row.json] as const : null;
  }
}

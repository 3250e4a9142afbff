import { inject, injectable } from 'inversify';
import { InvalidInputError } from '../../types/errors.js';
import { deviceMessageOf, unique, type DeviceKeyRow } from '../shared/contracts.js';
import type { DeviceKeysTable, DeviceMessage, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

const COLUMNS = 'user_id AS "userID", device_id AS "deviceID", key_json AS "keyJSON", stream_id AS "streamID", display_name AS "displayName"';

/** A Map key for a (user, device) pair that no two pairs share, whatever characters the IDs hold. */
const pairKey = (userID: string, deviceID: string) => JSON.stringify([userID, deviceID]);

/**
 * The advisory lock class of device stream ID reservations (the ASCII of "mSds": matrix-storage device streams).
 * Locks are taken in PostgreSQL's two-int4 key space (class, object), which is disjoint from the single-bigint
 * space that the migration lock (migrations.ts) uses: the two can never collide, whatever the hashes. The object
 * is a hash of the schema and the user ID, so stores in other schemas of the database do not wait on each other
 * (a hash collision between two users only makes their uploads take turns; it never hands out one ID twice).
 */
const STREAM_LOCK_CLASS = 0x6d536473;

@injectable()
export class PostgresDeviceKeysTable implements DeviceKeysTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  /**
   * One statement for the whole batch (unnest of one array per column), so it is atomic even under autocommit. ON
   * CONFLICT DO UPDATE may not touch one row twice in a statement, so a device named twice keeps its last message
   * only: what applying the upserts one by one, in order, would leave.
   */
  async insertDeviceKeys(tx: Tx, messages: readonly DeviceMessage[]): Promise<void> {
    const last = new Map(messages.map((m) => [pairKey(m.userID, m.deviceID), m]));
    if (last.size === 0) return this.conn.nothing(tx, undefined);
    const rows = [...last.values()];
    await this.conn.query(tx, `INSERT INTO keyserver_device_keys (user_id, device_id, ts_added_secs, key_json, stream_id, display_name)
      SELECT m.u, m.d, $1, m.k, m.s, m.n FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[]) AS m(u, d, k, s, n)
      ON CONFLICT (user_id, device_id) DO UPDATE
      SET key_json = excluded.key_json, stream_id = excluded.stream_id, display_name = excluded.display_name`,
    [Math.floor(Date.now() / 1000), rows.map((m) => m.userID), rows.map((m) => m.deviceID), rows.map((m) => m.keyJSON),
      rows.map((m) => m.streamID), rows.map((m) => m.displayName ?? null)]);
  }

  /** One statement for all the messages. */
  async selectDeviceKeysJSON(tx: Tx, messages: DeviceMessage[]): Promise<void> {
    if (messages.length === 0) return this.conn.nothing(tx, undefined);
    const r = await this.conn.query<DeviceKeyRow>(tx, `SELECT ${COLUMNS} FROM keyserver_device_keys
      WHERE (user_id, device_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [messages.map((m) => m.userID), messages.map((m) => m.deviceID)]);
    const found = new Map(r.rows.map((row) => [pairKey(row.userID, row.deviceID), row]));
    for (const m of messages) {
      const row = found.get(pairKey(m.userID, m.deviceID));
      m.keyJSON = row?.keyJSON ?? '';
      m.streamID = row?.streamID ?? 0;
      m.displayName = row?.displayName ?? undefined;
    }
  }

  async selectMaxStreamIDForUser(tx: Tx, userID: string): Promise<number> {
    const r = await this.conn.query<{ m: number }>(tx, 'SELECT COALESCE(MAX(stream_id), 0) AS m FROM keyserver_device_keys WHERE user_id = $1', [userID]);
    return r.rows[0]!.m;
  }

  /**
   * max + 1, read under a transaction-scoped advisory lock on the user: a second reservation for the user waits
   * until the first one's transaction (which writes the rows) has ended, then reads a max that includes them. A row
   * lock could not do this: a user with no rows yet has no row to lock.
   *
   * Two statements, not one: under READ COMMITTED a statement reads from a snapshot taken when it starts, so a MAX in
   * the statement that waited for the lock would not see the rows its predecessor committed meanwhile. They are
   * sent together (pipelined): one round trip, and the server still runs the read after the lock is held.
   */
  async reserveStreamIDs(tx: Tx, userID: string, count: number): Promise<number> {
    if (!Number.isSafeInteger(count) || count < 1) throw new InvalidInputError(`a stream ID reservation is for 1 or more IDs, got ${count}`);
    // The schema is a plain identifier (no spaces), so "schema user" names one (schema, user) pair. The call is in
    // FROM so that the statement is counted as "pg_advisory_xact_lock SELECT".
    const lock = this.conn.query(tx, 'SELECT FROM pg_advisory_xact_lock($1::int4, hashtext($2::text))', [STREAM_LOCK_CLASS, `${this.conn.schema} ${userID}`]);
    const first = this.conn.query<{ first: number }>(tx, 'SELECT COALESCE(MAX(stream_id), 0) + 1 AS first FROM keyserver_device_keys WHERE user_id = $1',
      [userID]);
    const [, r] = await Promise.all([lock, first]);
    return r.rows[0]!.first;
  }

  async countStreamIDsForUser(tx: Tx, userID: string, streamIDs: readonly number[]): Promise<number> {
    if (streamIDs.length === 0) return this.conn.nothing(tx, 0);
    const r = await this.conn.query<{ n: number }>(tx, `SELECT COUNT(DISTINCT stream_id) AS n FROM keyserver_device_keys
      WHERE user_id = $1 AND stream_id = ANY($2::bigint[])`, [userID, unique(streamIDs)]);
    return r.rows[0]!.n;
  }

  async selectBatchDeviceKeys(tx: Tx, userID: string, deviceIDs: readonly string[], includeEmpty = false): Promise<DeviceMessage[]> {
    const keys = includeEmpty ? '' : "AND key_json <> ''";
    const r = deviceIDs.length === 0
      ? await this.conn.query<DeviceKeyRow>(tx, `SELECT ${COLUMNS} FROM keyserver_device_keys WHERE user_id = $1 ${keys} ORDER BY device_id`, [userID])
      : await this.conn.query<DeviceKeyRow>(tx, `SELECT ${COLUMNS} FROM keyserver_device_keys WHERE user_id = $1 ${keys}
          AND device_id = ANY($2::text[]) ORDER BY device_id`, [userID, unique(deviceIDs)]);
    return r.rows.map(deviceMessageOf);
  }

  async deleteDeviceKeys(tx: Tx, userID: string, deviceID: string): Promise<void> {
    await this.conn.query(tx, 'DELETE FROM keyserver_device_keys WHERE user_id = $1 AND device_id = $2', [userID, deviceID]);
  }

  async deleteAllDeviceKeys(tx: Tx, userID: string, keepDeviceIDs: readonly string[] = []): Promise<void> {
    await this.conn.query(tx, 'DELETE FROM keyserver_device_keys WHERE user_id = $1 AND device_id <> ALL($2::text[])', [userID, unique(keepDeviceIDs)]);
  }
}

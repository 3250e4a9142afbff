import { inject, injectable } from 'inversify';
import type { EventStateKeyNID, RoomNID } from '../../types/nids.js';
import { keyFromText, keyToText } from '../shared/key-text.js';
import type { Tx, UserRoomKeysTable } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

@injectable()
export class PostgresUserRoomKeysTable implements UserRoomKeysTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  /** A remote user's row (public key only) gets the private key; a row with a private key keeps it. */
  async insertUserRoomPrivatePublicKey(tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID, privateKey: Uint8Array, publicKey: Uint8Array): Promise<Uint8Array> {
    const r = await this.conn.query<{ k: string }>(tx, `INSERT INTO roomserver_user_room_keys AS t (user_nid, room_nid, pseudo_id_key, pseudo_id_pub_key)
      VALUES ($1, $2, $3, $4) ON CONFLICT (user_nid, room_nid) DO UPDATE SET
        pseudo_id_pub_key = CASE WHEN t.pseudo_id_key IS NULL THEN excluded.pseudo_id_pub_key ELSE t.pseudo_id_pub_key END,
        pseudo_id_key = coalesce(t.pseudo_id_key, excluded.pseudo_id_key)
      RETURNING pseudo_id_key AS k`, [userNID, roomNID, keyToText(privateKey), keyToText(publicKey)]);
    return keyFromText(r.rows[0]!.k);
  }

  async insertUserRoomPublicKey(tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID, publicKey: Uint8Array): Promise<Uint8Array> {
    const r = await this.conn.query<{ k: string }>(tx, `INSERT INTO roomserver_user_room_keys AS t (user_nid, room_nid, pseudo_id_pub_key)
      VALUES ($1, $2, $3) ON CONFLICT (user_nid, room_nid) DO UPDATE SET pseudo_id_pub_key = t.pseudo_id_pub_key
      RETURNING pseudo_id_pub_key AS k`, [userNID, roomNID, keyToText(publicKey)]);
    return keyFromText(r.rows[0]!.k);
  }

  async selectUserRoomPrivateKey(tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID): Promise<Uint8Array | null> {
    const r = await this.conn.query<{ k: string | null }>(tx, 'SELECT pseudo_id_key AS k FROM roomserver_user_room_keys WHERE user_nid = $1 AND room_nid = $2', [userNID, roomNID]);
    const k = r.rows[0]?.k;
    return k ? keyFromText(k) : null;
  }

  async selectUserRoomPublicKey(tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID): Promise<Uint8Array | null> {
    const r = await this.conn.query<{ k: string }>(tx, 'SELECT pseudo_id_pub_key AS k FROM roomserver_user_room_keys WHERE user_nid = $1 AND room_nid = $2', [userNID, roomNID]);
    return r.rows[0] ? keyFromText(r.rows[0].k) : null;
  }

  /** One statement for every room: the (room, key) pairs unnested side by side. */
  async selectUserNIDsForPublicKeys(tx: Tx, keys: ReadonlyMap<RoomNID, readonly Uint8Array[]>): Promise<Map<RoomNID, Map<string, EventStateKeyNID>>> {
    const rooms: number[] = [];
    const texts: string[] = [];
    for (const [room, list] of keys) for (const k of list) { rooms.push(room); texts.push(keyToText(k)); }
    const out = new Map<RoomNID, Map<string, EventStateKeyNID>>();
    if (rooms.length === 0) return this.conn.nothing(tx, out);
    const r = await this.conn.query<{ room: RoomNID; user: EventStateKeyNID; k: string }>(tx, `SELECT t.room_nid AS room, t.user_nid AS user, t.pseudo_id_pub_key AS k
      FROM roomserver_user_room_keys t JOIN unnest($1::bigint[], $2::text[]) AS q(room_nid, k) ON t.room_nid = q.room_nid AND t.pseudo_id_pub_key = q.k`,
    [rooms, texts]);
    for (const row of r.rows) out.set(row.room, (out.get(row.room) ?? new Map()).set(row.k, row.user));
    return out;
  }
}

import { inject, injectable } from 'inversify';
import type { EventStateKeyNID, RoomNID } from '../../types/nids.js';
import { keyFromText, keyToText } from '../shared/key-text.js';
import type { Tx, UserRoomKeysTable } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { textList } from './values.js';

@injectable()
export class SqliteUserRoomKeysTable implements UserRoomKeysTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  /** A remote user's row (public key only) gets the private key; a row with a private key keeps it. */
  insertUserRoomPrivatePublicKey(tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID, privateKey: Uint8Array, publicKey: Uint8Array): Promise<Uint8Array> {
    return this.conn.run(tx, (c) => keyFromText((c.stmt(`INSERT INTO roomserver_user_room_keys (user_nid, room_nid, pseudo_id_key, pseudo_id_pub_key)
      VALUES (?, ?, ?, ?) ON CONFLICT (user_nid, room_nid) DO UPDATE SET
        pseudo_id_pub_key = CASE WHEN pseudo_id_key IS NULL THEN excluded.pseudo_id_pub_key ELSE pseudo_id_pub_key END,
        pseudo_id_key = coalesce(pseudo_id_key, excluded.pseudo_id_key)
      RETURNING pseudo_id_key AS k`).get(userNID, roomNID, keyToText(privateKey), keyToText(publicKey)) as { k: string }).k));
  }

  insertUserRoomPublicKey(tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID, publicKey: Uint8Array): Promise<Uint8Array> {
    return this.conn.run(tx, (c) => keyFromText((c.stmt(`INSERT INTO roomserver_user_room_keys (user_nid, room_nid, pseudo_id_pub_key)
      VALUES (?, ?, ?) ON CONFLICT (user_nid, room_nid) DO UPDATE SET pseudo_id_pub_key = pseudo_id_pub_key
      RETURNING pseudo_id_pub_key AS k`).get(userNID, roomNID, keyToText(publicKey)) as { k: string }).k));
  }

  selectUserRoomPrivateKey(tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID): Promise<Uint8Array | null> {
    return this.conn.run(tx, (c) => {
      const row = c.stmt('SELECT pseudo_id_key AS k FROM roomserver_user_room_keys WHERE user_nid = ? AND room_nid = ?').get(userNID, roomNID) as { k: string | null } | undefined;
      return row?.k ? keyFromText(row.k) : null;
    });
  }

  selectUserRoomPublicKey(tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID): Promise<Uint8Array | null> {
    return this.conn.run(tx, (c) => {
      const row = c.stmt('SELECT pseudo_id_pub_key AS k FROM roomserver_user_room_keys WHERE user_nid = ? AND room_nid = ?').get(userNID, roomNID) as { k: string } | undefined;
      return row ? keyFromText(row.k) : null;
    });
  }

  selectUserNIDsForPublicKeys(tx: Tx, keys: ReadonlyMap<RoomNID, readonly Uint8Array[]>): Promise<Map<RoomNID, Map<string, EventStateKeyNID>>> {
    return this.conn.run(tx, (c) => {
      const out = new Map<RoomNID, Map<string, EventStateKeyNID>>();
      const stmt = c.stmt(`SELECT user_nid AS user, pseudo_id_pub_key AS k FROM roomserver_user_room_keys
        WHERE room_nid = ? AND pseudo_id_pub_key IN (SELECT value FROM json_each(?))`);
      for (const [room, list] of keys) {
        const rows = stmt.all(room, textList(list.map(keyToText))) as { user: EventStateKeyNID; k: string }[];
        if (rows.length > 0) out.set(room, new Map(rows.map((r) => [r.k, r.user])));
      }
      return out;
    });
  }
}

import { inject, injectable } from 'inversify';
import type { EventStateKeyNID, RoomNID } from '../../types/nids.js';
import type { InviteRow, InvitesTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';

@injectable()
export class SqliteInvitesTable implements InvitesTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertInviteEvent(tx: Tx, invite: InviteRow): Promise<boolean> {
    return this.conn.run(tx, (c) => c.stmt(`INSERT INTO roomserver_invites (invite_event_id, room_nid, target_nid, sender_nid, invite_event_json)
      VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
      .run(invite.inviteEventID, invite.roomNID, invite.targetUserNID, invite.senderUserNID, invite.inviteEventJSON).changes > 0);
  }

  updateInviteRetired(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID): Promise<string[]> {
    return this.conn.run(tx, (c) => {
      // RETURNING has no defined order in SQLite: read the IDs in insertion order first, in the same write lock.
      const ids = (c.stmt(`SELECT invite_event_id AS id FROM roomserver_invites WHERE room_nid = ? AND target_nid = ? AND retired = 0
        ORDER BY rowid`).all(roomNID, targetUserNID) as { id: string }[]).map((r) => r.id);
      c.stmt('UPDATE roomserver_invites SET retired = 1 WHERE room_nid = ? AND target_nid = ? AND retired = 0').run(roomNID, targetUserNID);
      return ids;
    });
  }

  selectInviteActiveForUserInRoom(tx: Tx, targetUserNID: EventStateKeyNID, roomNID: RoomNID) {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT sender_nid AS sender, invite_event_id AS id FROM roomserver_invites
        WHERE target_nid = ? AND room_nid = ? AND retired = 0 ORDER BY rowid`).all(targetUserNID, roomNID) as
        { sender: EventStateKeyNID; id: string }[];
      return { senderUserNIDs: rows.map((r) => r.sender), eventIDs: rows.map((r) => r.id) };
    });
  }
}

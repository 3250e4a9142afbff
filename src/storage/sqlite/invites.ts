import { inject, injectable } from 'inversify';
import type { EventStateKeyNID, RoomNID } from '../../types/nids.js';
import type { InviteRow, InvitesTable, InviteWrite, Tx } from '../tables/index.js';
import { unique } from '../shared/contracts.js';
import { bool, IN_LIST, nidList, textList } from './values.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';

@injectable()
export class SqliteInvitesTable implements InvitesTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertInviteEvent(tx: Tx, invite: InviteRow): Promise<boolean> {
    return this.conn.run(tx, (c) => c.stmt(`INSERT INTO roomserver_invites (invite_event_id, room_nid, target_nid, sender_nid, invite_event_json)
      VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
      .run(invite.inviteEventID, invite.roomNID, invite.targetUserNID, invite.senderUserNID, invite.inviteEventJSON).changes > 0);
  }

  bulkSelectActiveInvites(tx: Tx, roomNID: RoomNID, targetUserNIDs: readonly EventStateKeyNID[]): Promise<Map<EventStateKeyNID, string[]>> {
    return this.conn.run(tx, (c) => {
      const out = new Map<EventStateKeyNID, string[]>();
      if (targetUserNIDs.length === 0) return out;
      const rows = c.stmt(`SELECT target_nid AS target, invite_event_id AS id FROM roomserver_invites
        WHERE room_nid = ? AND target_nid ${IN_LIST} AND retired = 0 ORDER BY rowid`).all(roomNID, nidList(unique(targetUserNIDs))) as
        { target: EventStateKeyNID; id: string }[];
      for (const r of rows) out.set(r.target, [...(out.get(r.target) ?? []), r.id]);
      return out;
    });
  }

  bulkSelectStoredInviteIDs(tx: Tx, inviteEventIDs: readonly string[]): Promise<Set<string>> {
    return this.conn.run(tx, (c) => {
      if (inviteEventIDs.length === 0) return new Set<string>();
      const rows = c.stmt(`SELECT invite_event_id AS id FROM roomserver_invites WHERE invite_event_id ${IN_LIST}`)
        .all(textList(unique(inviteEventIDs))) as { id: string }[];
      return new Set(rows.map((r) => r.id));
    });
  }

  bulkInsertInvites(tx: Tx, invites: readonly InviteWrite[]): Promise<void> {
    return this.conn.run(tx, (c) => {
      const insert = c.stmt(`INSERT INTO roomserver_invites (invite_event_id, room_nid, target_nid, sender_nid, invite_event_json, retired)
        VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`);
      for (const i of invites) insert.run(i.inviteEventID, i.roomNID, i.targetUserNID, i.senderUserNID, i.inviteEventJSON, bool(i.retired));
    });
  }

  bulkRetireInvites(tx: Tx, invites: readonly { roomNID: RoomNID; targetUserNID: EventStateKeyNID; inviteEventID: string }[]): Promise<void> {
    return this.conn.run(tx, (c) => {
      if (invites.length > 0) {
        c.stmt(`UPDATE roomserver_invites SET retired = 1 WHERE invite_event_id ${IN_LIST}`).run(textList(unique(invites.map((i) => i.inviteEventID))));
      }
    });
  }

  updateInviteRetired(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID): Promise<string[]> {
    return this.conn.run(tx, (c) => {
      // RETURNING has no defined order in SQLite: the rows come back with their rowid, the insertion order.
      const rows = c.stmt(`UPDATE roomserver_invites SET retired = 1 WHERE room_nid = ? AND target_nid = ? AND retired = 0
        RETURNING rowid AS n, invite_event_id AS id`).all(roomNID, targetUserNID) as { n: number; id: string }[];
      return rows.sort((a, b) => a.n - b.n).map((r) => r.id);
    });
  }

  selectInviteActiveForUserInRoom(tx: Tx, targetUserNID: EventStateKeyNID, roomNID: RoomNID) {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT sender_nid AS sender, invite_event_id AS id, invite_event_json AS json FROM roomserver_invites
        WHERE target_nid = ? AND room_nid = ? AND retired = 0 ORDER BY rowid`).all(targetUserNID, roomNID) as
        { sender: EventStateKeyNID; id: string; json: string }[];
      return { senderUserNIDs: rows.map((r) => r.sender), eventIDs: rows.map((r) => r.id), inviteEventJSONs: rows.map((r) => r.json) };
    });
  }
}

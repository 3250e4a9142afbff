import { inject, injectable } from 'inversify';
import { MembershipState } from '../../types/membership.js';
import type { EventNID, EventStateKeyNID, RoomNID } from '../../types/nids.js';
import { notFound, unique } from '../shared/contracts.js';
import type { MembershipRow, MembershipTable, MembershipWrite, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { bool, IN_LIST, nidList } from './values.js';

const JOIN = MembershipState.join;

@injectable()
export class SqliteMembershipTable implements MembershipTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertMembership(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID, localTarget: boolean): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt(`INSERT INTO roomserver_membership (room_nid, target_nid, target_local) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`)
        .run(roomNID, targetUserNID, bool(localTarget));
    });
  }

  /** The caller's transaction holds SQLite's single write lock, which is the exclusivity asked for. */
  selectMembershipForUpdate(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID): Promise<MembershipState> {
    return this.selectMembershipFromRoomAndTarget(tx, roomNID, targetUserNID).then((m) => m.membership);
  }

  /** The caller's transaction holds SQLite's single write lock, which is the exclusivity asked for. */
  bulkSelectMembershipsForUpdate(tx: Tx, roomNID: RoomNID, targetUserNIDs: readonly EventStateKeyNID[]): Promise<Map<EventStateKeyNID, MembershipRow>> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT target_nid AS target, membership_nid AS membership, event_nid AS eventNID FROM roomserver_membership
        WHERE room_nid = ? AND target_nid ${IN_LIST}`).all(roomNID, nidList(unique(targetUserNIDs))) as
        { target: EventStateKeyNID; membership: MembershipState; eventNID: EventNID }[];
      return new Map(rows.map((r) => [r.target, { membership: r.membership, eventNID: r.eventNID }]));
    });
  }

  bulkUpsertMemberships(tx: Tx, roomNID: RoomNID, rows: readonly MembershipWrite[]): Promise<void> {
    return this.conn.run(tx, (c) => {
      const upsert = c.stmt(`INSERT INTO roomserver_membership (room_nid, target_nid, target_local, sender_nid, membership_nid, event_nid, forgotten)
        VALUES (?, ?, ?, ?, ?, ?, 0) ON CONFLICT (room_nid, target_nid) DO UPDATE SET sender_nid = excluded.sender_nid,
        membership_nid = excluded.membership_nid, event_nid = excluded.event_nid, forgotten = 0`);
      for (const r of rows) upsert.run(roomNID, r.targetUserNID, bool(r.targetLocal), r.senderUserNID, r.membership, r.eventNID);
    });
  }

  selectMembershipFromRoomAndTarget(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID) {
    return this.conn.run(tx, (c) => {
      const row = c.stmt(`SELECT event_nid AS eventNID, membership_nid AS membership, forgotten FROM roomserver_membership
        WHERE room_nid = ? AND target_nid = ?`).get(roomNID, targetUserNID) as
        { eventNID: EventNID; membership: MembershipState; forgotten: number } | undefined;
      if (!row) throw notFound('membership of user NID', `${targetUserNID} in room NID ${roomNID}`);
      return { eventNID: row.eventNID, membership: row.membership, forgotten: row.forgotten === 1 };
    });
  }

  selectMembershipsFromRoom(tx: Tx, roomNID: RoomNID, localOnly: boolean): Promise<EventNID[]> {
    return this.conn.run(tx, (c) => (c.stmt(`SELECT event_nid AS nid FROM roomserver_membership
      WHERE room_nid = ? AND forgotten = 0 AND event_nid != 0 AND (target_local = 1 OR ? = 0) ORDER BY event_nid`)
      .all(roomNID, bool(localOnly)) as { nid: EventNID }[]).map((r) => r.nid));
  }

  selectMembershipsFromRoomAndMembership(tx: Tx, roomNID: RoomNID, membership: MembershipState, localOnly: boolean): Promise<EventNID[]> {
    return this.conn.run(tx, (c) => (c.stmt(`SELECT event_nid AS nid FROM roomserver_membership
      WHERE room_nid = ? AND membership_nid = ? AND forgotten = 0 AND event_nid != 0 AND (target_local = 1 OR ? = 0) ORDER BY event_nid`)
      .all(roomNID, membership, bool(localOnly)) as { nid: EventNID }[]).map((r) => r.nid));
  }

  updateMembership(
    tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID, senderUserNID: EventStateKeyNID,
    membership: MembershipState, eventNID: EventNID, forgotten: boolean,
  ): Promise<boolean> {
    return this.conn.run(tx, (c) => c.stmt(`UPDATE roomserver_membership SET sender_nid = ?, membership_nid = ?, event_nid = ?, forgotten = ?
      WHERE room_nid = ? AND target_nid = ?`).run(senderUserNID, membership, eventNID, bool(forgotten), roomNID, targetUserNID).changes > 0);
  }

  selectRoomsWithMembership(tx: Tx, userNID: EventStateKeyNID, membership: MembershipState): Promise<RoomNID[]> {
    return this.conn.run(tx, (c) => (c.stmt(`SELECT room_nid AS nid FROM roomserver_membership
      WHERE target_nid = ? AND membership_nid = ? AND forgotten = 0 ORDER BY room_nid`).all(userNID, membership) as { nid: RoomNID }[])
      .map((r) => r.nid));
  }

  selectJoinedUsersSetForRooms(tx: Tx, roomNIDs: readonly RoomNID[], userNIDs?: readonly EventStateKeyNID[], localOnly = false): Promise<Map<EventStateKeyNID, number>> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT target_nid AS nid, COUNT(*) AS n FROM roomserver_membership
        WHERE room_nid ${IN_LIST} AND membership_nid = ${JOIN} AND forgotten = 0
          AND (? = 0 OR target_nid ${IN_LIST}) AND (? = 0 OR target_local = 1) GROUP BY target_nid`)
        .all(nidList(unique(roomNIDs)), bool(userNIDs !== undefined), nidList(unique(userNIDs ?? [])), bool(localOnly)) as { nid: EventStateKeyNID; n: number }[];
      return new Map(rows.map((r) => [r.nid, r.n]));
    });
  }

  selectJoinedUsers(tx: Tx, userNIDs: readonly EventStateKeyNID[]): Promise<EventStateKeyNID[]> {
    return this.conn.run(tx, (c) => (c.stmt(`SELECT DISTINCT target_nid AS nid FROM roomserver_membership
      WHERE membership_nid > ${MembershipState.leaveOrBan} AND target_nid ${IN_LIST} ORDER BY nid`)
      .all(nidList(unique(userNIDs))) as { nid: EventStateKeyNID }[]).map((r) => r.nid));
  }

  selectRoomsWithLocalJoins(tx: Tx, roomNIDs: readonly RoomNID[]): Promise<Set<RoomNID>> {
    return this.conn.run(tx, (c) => new Set((c.stmt(`SELECT DISTINCT room_nid AS nid FROM roomserver_membership
      WHERE room_nid ${IN_LIST} AND membership_nid = ${JOIN} AND target_local = 1`)
      .all(nidList(unique(roomNIDs))) as { nid: RoomNID }[]).map((r) => r.nid)));
  }

  deleteMembership(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt('DELETE FROM roomserver_membership WHERE room_nid = ? AND target_nid = ?').run(roomNID, targetUserNID);
    });
  }

  selectKnownUsers(tx: Tx, userNID: EventStateKeyNID, search: string, limit: number): Promise<string[]> {
    return this.conn.run(tx, (c) => (c.stmt(`SELECT DISTINCT k.event_state_key AS id FROM roomserver_membership m
      JOIN roomserver_event_state_keys k ON k.event_state_key_nid = m.target_nid
      WHERE m.membership_nid = ${JOIN} AND instr(k.event_state_key, ?) > 0
        AND m.room_nid IN (SELECT room_nid FROM roomserver_membership WHERE target_nid = ? AND membership_nid = ${JOIN})
      ORDER BY id LIMIT ?`).all(search, userNID, Math.max(0, Math.trunc(limit))) as { id: string }[]).map((r) => r.id));
  }

  updateForgetMembership(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID, forget: boolean): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt('UPDATE roomserver_membership SET forgotten = ? WHERE room_nid = ? AND target_nid = ?').run(bool(forget), roomNID, targetUserNID);
    });
  }

  selectLocalServerInRoom(tx: Tx, roomNID: RoomNID): Promise<boolean> {
    return this.conn.run(tx, (c) => c.stmt(`SELECT 1 FROM roomserver_membership
      WHERE room_nid = ? AND membership_nid = ${JOIN} AND target_local = 1 LIMIT 1`).get(roomNID) !== undefined);
  }

  selectServerInRoom(tx: Tx, roomNID: RoomNID, serverName: string): Promise<boolean> {
    const suffix = `:${serverName}`;
    return this.conn.run(tx, (c) => c.stmt(`SELECT 1 FROM roomserver_membership m
      JOIN roomserver_event_state_keys k ON k.event_state_key_nid = m.target_nid
      WHERE m.room_nid = ? AND m.membership_nid = ${JOIN} AND substr(k.event_state_key, -length(?)) = ? LIMIT 1`)
      .get(roomNID, suffix, suffix) !== undefined);
  }
}

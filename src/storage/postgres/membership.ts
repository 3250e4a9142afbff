import { inject, injectable } from 'inversify';
import { MembershipState } from '../../types/membership.js';
import type { EventNID, EventStateKeyNID, RoomNID } from '../../types/nids.js';
import { notFound, unique } from '../shared/contracts.js';
import type { MembershipRow, MembershipTable, MembershipWrite, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';
import { changed } from './values.js';

const JOIN = MembershipState.join;

@injectable()
export class PostgresMembershipTable implements MembershipTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async insertMembership(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID, localTarget: boolean): Promise<void> {
    await this.conn.query(tx, `INSERT INTO roomserver_membership (room_nid, target_nid, target_local) VALUES ($1, $2, $3)
      ON CONFLICT DO NOTHING`, [roomNID, targetUserNID, localTarget]);
  }

  /** A row lock (FOR UPDATE) held until the caller's transaction ends. */
  async selectMembershipForUpdate(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID): Promise<MembershipState> {
    const r = await this.conn.query<{ membership: MembershipState }>(tx, `SELECT membership_nid AS membership FROM roomserver_membership
      WHERE room_nid = $1 AND target_nid = $2 FOR UPDATE`, [roomNID, targetUserNID]);
    const row = r.rows[0];
    if (!row) throw notFound('membership of user NID', `${targetUserNID} in room NID ${roomNID}`);
    return row.membership;
  }

  /** Row locks (FOR UPDATE) held until the caller's transaction ends. */
  async bulkSelectMembershipsForUpdate(tx: Tx, roomNID: RoomNID, targetUserNIDs: readonly EventStateKeyNID[]): Promise<Map<EventStateKeyNID, MembershipRow>> {
    if (targetUserNIDs.length === 0) return this.conn.nothing(tx, new Map());
    const r = await this.conn.query<{ target: EventStateKeyNID; membership: MembershipState; eventNID: EventNID }>(tx,
      `SELECT target_nid AS target, membership_nid AS membership, event_nid AS "eventNID" FROM roomserver_membership
       WHERE room_nid = $1 AND target_nid = ANY($2::bigint[]) ORDER BY target_nid FOR UPDATE`, [roomNID, unique(targetUserNIDs)]);
    return new Map(r.rows.map((row) => [row.target, { membership: row.membership, eventNID: row.eventNID }]));
  }

  async bulkUpsertMemberships(tx: Tx, roomNID: RoomNID, writes: readonly MembershipWrite[]): Promise<void> {
    // A user given twice: the last write wins (an UPSERT may not touch a row twice in one statement).
    const rows = [...new Map(writes.map((w) => [w.targetUserNID, w])).values()];
    if (rows.length === 0) return this.conn.nothing(tx, undefined);
    await this.conn.query(tx, `INSERT INTO roomserver_membership (room_nid, target_nid, target_local, sender_nid, membership_nid, event_nid, forgotten)
      SELECT $1, target, local, sender, membership, event, false FROM unnest($2::bigint[], $3::bool[], $4::bigint[], $5::bigint[], $6::bigint[])
        AS t(target, local, sender, membership, event)
      ON CONFLICT (room_nid, target_nid) DO UPDATE SET sender_nid = excluded.sender_nid, membership_nid = excluded.membership_nid,
        event_nid = excluded.event_nid, forgotten = false`, [roomNID, rows.map((x) => x.targetUserNID), rows.map((x) => x.targetLocal),
      rows.map((x) => x.senderUserNID), rows.map((x) => x.membership), rows.map((x) => x.eventNID)]);
  }

  async selectMembershipFromRoomAndTarget(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID) {
    const r = await this.conn.query<{ eventNID: EventNID; membership: MembershipState; forgotten: boolean }>(tx,
      `SELECT event_nid AS "eventNID", membership_nid AS membership, forgotten FROM roomserver_membership
       WHERE room_nid = $1 AND target_nid = $2`, [roomNID, targetUserNID]);
    const row = r.rows[0];
    if (!row) throw notFound('membership of user NID', `${targetUserNID} in room NID ${roomNID}`);
    return row;
  }

  async selectMembershipsFromRoom(tx: Tx, roomNID: RoomNID, localOnly: boolean): Promise<EventNID[]> {
    const r = await this.conn.query<{ nid: EventNID }>(tx, `SELECT event_nid AS nid FROM roomserver_membership
      WHERE room_nid = $1 AND NOT forgotten AND event_nid <> 0 AND (target_local OR NOT $2) ORDER BY event_nid`, [roomNID, localOnly]);
    return r.rows.map((row) => row.nid);
  }

  async selectMembershipsFromRoomAndMembership(tx: Tx, roomNID: RoomNID, membership: MembershipState, localOnly: boolean): Promise<EventNID[]> {
    const r = await this.conn.query<{ nid: EventNID }>(tx, `SELECT event_nid AS nid FROM roomserver_membership
      WHERE room_nid = $1 AND membership_nid = $2 AND NOT forgotten AND event_nid <> 0 AND (target_local OR NOT $3) ORDER BY event_nid`,
    [roomNID, membership, localOnly]);
    return r.rows.map((row) => row.nid);
  }

  async updateMembership(
    tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID, senderUserNID: EventStateKeyNID,
    membership: MembershipState, eventNID: EventNID, forgotten: boolean,
  ): Promise<boolean> {
    const r = await this.conn.query(tx, `UPDATE roomserver_membership SET sender_nid = $1, membership_nid = $2, event_nid = $3, forgotten = $4
      WHERE room_nid = $5 AND target_nid = $6`, [senderUserNID, membership, eventNID, forgotten, roomNID, targetUserNID]);
    return changed(r) > 0;
  }

  async selectRoomsWithMembership(tx: Tx, userNID: EventStateKeyNID, membership: MembershipState): Promise<RoomNID[]> {
    const r = await this.conn.query<{ nid: RoomNID }>(tx, `SELECT room_nid AS nid FROM roomserver_membership
      WHERE target_nid = $1 AND membership_nid = $2 AND NOT forgotten ORDER BY room_nid`, [userNID, membership]);
    return r.rows.map((row) => row.nid);
  }

  async selectJoinedUsersSetForRooms(tx: Tx, roomNIDs: readonly RoomNID[], userNIDs?: readonly EventStateKeyNID[], localOnly = false): Promise<Map<EventStateKeyNID, number>> {
    if (roomNIDs.length === 0 || userNIDs?.length === 0) return this.conn.nothing(tx, new Map());
    const r = await this.conn.query<{ nid: EventStateKeyNID; n: number }>(tx, `SELECT target_nid AS nid, COUNT(*)::int AS n FROM roomserver_membership
      WHERE room_nid = ANY($1::bigint[]) AND membership_nid = ${JOIN} AND NOT forgotten
        AND ($2::bigint[] IS NULL OR target_nid = ANY($2::bigint[])) AND (target_local OR NOT $3::boolean) GROUP BY target_nid`,
    [unique(roomNIDs), userNIDs === undefined ? null : unique(userNIDs), localOnly]);
    return new Map(r.rows.map((row) => [row.nid, row.n]));
  }

  async selectJoinedUsers(tx: Tx, userNIDs: readonly EventStateKeyNID[]): Promise<EventStateKeyNID[]> {
    if (userNIDs.length === 0) return this.conn.nothing(tx, []);
    const r = await this.conn.query<{ nid: EventStateKeyNID }>(tx, `SELECT DISTINCT target_nid AS nid FROM roomserver_membership
      WHERE membership_nid > ${MembershipState.leaveOrBan} AND target_nid = ANY($1::bigint[]) ORDER BY nid`, [unique(userNIDs)]);
    return r.rows.map((row) => row.nid);
  }

  async selectRoomsWithLocalJoins(tx: Tx, roomNIDs: readonly RoomNID[]): Promise<Set<RoomNID>> {
    if (roomNIDs.length === 0) return this.conn.nothing(tx, new Set());
    const r = await this.conn.query<{ nid: RoomNID }>(tx, `SELECT DISTINCT room_nid AS nid FROM roomserver_membership
      WHERE room_nid = ANY($1::bigint[]) AND membership_nid = ${JOIN} AND target_local`, [unique(roomNIDs)]);
    return new Set(r.rows.map((row) => row.nid));
  }

  async deleteMembership(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID): Promise<void> {
    await this.conn.query(tx, 'DELETE FROM roomserver_membership WHERE room_nid = $1 AND target_nid = $2', [roomNID, targetUserNID]);
  }

  /** strpos, not LIKE: the search is taken literally, so % and _ need no escaping. Sorted by the column's COLLATE "C". */
  async selectKnownUsers(tx: Tx, userNID: EventStateKeyNID, search: string, limit: number): Promise<string[]> {
    const r = await this.conn.query<{ id: string }>(tx, `SELECT DISTINCT k.event_state_key AS id FROM roomserver_membership m
      JOIN roomserver_event_state_keys k ON k.event_state_key_nid = m.target_nid
      WHERE m.membership_nid = ${JOIN} AND strpos(k.event_state_key, $1) > 0
        AND m.room_nid IN (SELECT room_nid FROM roomserver_membership WHERE target_nid = $2 AND membership_nid = ${JOIN})
      ORDER BY id LIMIT $3`, [search, userNID, Math.max(0, Math.trunc(limit))]);
    return r.rows.map((row) => row.id);
  }

  async updateForgetMembership(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID, forget: boolean): Promise<void> {
    await this.conn.query(tx, 'UPDATE roomserver_membership SET forgotten = $1 WHERE room_nid = $2 AND target_nid = $3', [forget, roomNID, targetUserNID]);
  }

  async selectLocalServerInRoom(tx: Tx, roomNID: RoomNID): Promise<boolean> {
    const r = await this.conn.query(tx, `SELECT 1 FROM roomserver_membership
      WHERE room_nid = $1 AND membership_nid = ${JOIN} AND target_local LIMIT 1`, [roomNID]);
    return changed(r) > 0;
  }

  /** right(), not LIKE: the server name is matched literally at the end of the user ID. */
  async selectServerInRoom(tx: Tx, roomNID: RoomNID, serverName: string): Promise<boolean> {
    const suffix = `:${serverName}`;
    const r = await this.conn.query(tx, `SELECT 1 FROM roomserver_membership m
      JOIN roomserver_event_state_keys k ON k.event_state_key_nid = m.target_nid
      WHERE m.room_nid = $1 AND m.membership_nid = ${JOIN} AND right(k.event_state_key, char_length($2::text)) = $2 LIMIT 1`,
    [roomNID, suffix]);
    return changed(r) > 0;
  }
}

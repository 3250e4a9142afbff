import type { EventNID, EventStateKeyNID, RoomNID } from '../../types/nids.js';
import type { MembershipState } from '../../types/membership.js';
import type { Tx } from './unit-of-work.js';

/** A membership as the batch write path reads it. */
export interface MembershipRow {
  readonly membership: MembershipState;
  readonly eventNID: EventNID;
}

/** A membership as the batch write path writes it: created if absent (with target_local), else overwritten. */
export interface MembershipWrite {
  readonly targetUserNID: EventStateKeyNID;
  readonly targetLocal: boolean;
  readonly senderUserNID: EventStateKeyNID;
  readonly membership: MembershipState;
  readonly eventNID: EventNID;
}

/**
 * membership: one row per (room, user) ever seen. event_nid is the join event for a join, the leave/ban event for
 * a leave, and for an invite the earlier leave event (0 if none).
 */
export interface MembershipTable {
  /** Creates the row as leave with event 0 if absent; DO NOTHING if present (target_local is not changed). */
  insertMembership(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID, localTarget: boolean): Promise<void>;
  /** The membership, holding the row exclusively for `tx`. NotFoundError if missing. */
  selectMembershipForUpdate(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID): Promise<MembershipState>;
  /** NotFoundError if missing. */
  selectMembershipFromRoomAndTarget(
    tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID,
  ): Promise<{ eventNID: EventNID; membership: MembershipState; forgotten: boolean }>;
  /** Event NIDs of the room's memberships that are not forgotten and have an event, optionally local users only. */
  selectMembershipsFromRoom(tx: Tx, roomNID: RoomNID, localOnly: boolean): Promise<EventNID[]>;
  /** The same, filtered by membership state. */
  selectMembershipsFromRoomAndMembership(
    tx: Tx, roomNID: RoomNID, membership: MembershipState, localOnly: boolean,
  ): Promise<EventNID[]>;
  /** Overwrites sender, state, event and forgotten. Returns whether a row was updated. */
  updateMembership(
    tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID, senderUserNID: EventStateKeyNID,
    membership: MembershipState, eventNID: EventNID, forgotten: boolean,
  ): Promise<boolean>;
  /** Rooms where the user has this membership and has not forgotten it, ascending. */
  selectRoomsWithMembership(tx: Tx, userNID: EventStateKeyNID, membership: MembershipState): Promise<RoomNID[]>;
  /**
   * For each user joined (and not forgotten) to any of the rooms: in how many of them. Only the users among
   * `userNIDs` when given, only local users with `localOnly`.
   */
  selectJoinedUsersSetForRooms(tx: Tx, roomNIDs: readonly RoomNID[], userNIDs?: readonly EventStateKeyNID[], localOnly?: boolean): Promise<Map<EventStateKeyNID, number>>;
  /** The users among `userNIDs` that are joined, invited or knocking in any room (forgotten or not), ascending. */
  selectJoinedUsers(tx: Tx, userNIDs: readonly EventStateKeyNID[]): Promise<EventStateKeyNID[]>;
  /** The rooms among `roomNIDs` with at least one local user joined. */
  selectRoomsWithLocalJoins(tx: Tx, roomNIDs: readonly RoomNID[]): Promise<Set<RoomNID>>;
  /** Deletes the (room, user) row; no error if there is none (Dendrite's membership updater Delete). */
  deleteMembership(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID): Promise<void>;
  /**
   * User IDs joined to any room the user is joined to, whose ID contains `search` (taken literally: `%` and `_`
   * match only themselves), the user included, sorted, at most `limit`.
   */
  selectKnownUsers(tx: Tx, userNID: EventStateKeyNID, search: string, limit: number): Promise<string[]>;
  /** The memberships of these users in the room, held exclusively for `tx` as selectMembershipForUpdate holds one; users with no row omitted. */
  bulkSelectMembershipsForUpdate(tx: Tx, roomNID: RoomNID, targetUserNIDs: readonly EventStateKeyNID[]): Promise<Map<EventStateKeyNID, MembershipRow>>;
  /**
   * Writes each membership: a new row takes target_local from the write; an existing one keeps it, and gets the
   * sender, state and event, and forgotten false (what updateMembership writes). A user given twice: the last wins.
   */
  bulkUpsertMemberships(tx: Tx, roomNID: RoomNID, rows: readonly MembershipWrite[]): Promise<void>;
  /** Sets `forgotten`. */
  updateForgetMembership(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID, forget: boolean): Promise<void>;
  /** True if at least one local user is joined. */
  selectLocalServerInRoom(tx: Tx, roomNID: RoomNID): Promise<boolean>;
  /** True if a joined user's ID ends with ":" + serverName (matched literally). */
  selectServerInRoom(tx: Tx, roomNID: RoomNID, serverName: string): Promise<boolean>;
}

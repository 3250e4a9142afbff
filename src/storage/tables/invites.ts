import type { EventStateKeyNID, RoomNID } from '../../types/nids.js';
import type { Tx } from './unit-of-work.js';

export interface InviteRow {
  readonly inviteEventID: string;
  readonly roomNID: RoomNID;
  readonly targetUserNID: EventStateKeyNID;
  readonly senderUserNID: EventStateKeyNID;
  readonly inviteEventJSON: string;
}

/** An invite as the batch write path inserts it: with whether a later event of the same batch retired it. */
export interface InviteWrite extends InviteRow {
  readonly retired: boolean;
}

/** invites: invite events, active until a join or leave retires them. */
export interface InvitesTable {
  /** true if inserted; false (no error, nothing changed) if the invite ID exists. */
  insertInviteEvent(tx: Tx, invite: InviteRow): Promise<boolean>;
  /** Retires the active invites of the user in the room and returns their IDs, in insertion order. */
  updateInviteRetired(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID): Promise<string[]>;
  /** The active invites of these users in the room, each list in insertion order; users with none omitted. */
  bulkSelectActiveInvites(tx: Tx, roomNID: RoomNID, targetUserNIDs: readonly EventStateKeyNID[]): Promise<Map<EventStateKeyNID, string[]>>;
  /** Which of these invite IDs are stored (active or retired, in any room). */
  bulkSelectStoredInviteIDs(tx: Tx, inviteEventIDs: readonly string[]): Promise<Set<string>>;
  /**
   * Inserts the invites in the order given (their insertion order), each with its retired flag; an ID stored
   * already is left as it is (as insertInviteEvent).
   */
  bulkInsertInvites(tx: Tx, invites: readonly InviteWrite[]): Promise<void>;
  /** Marks these stored invites retired. */
  bulkRetireInvites(tx: Tx, invites: readonly { roomNID: RoomNID; targetUserNID: EventStateKeyNID; inviteEventID: string }[]): Promise<void>;
  /** Active invites, in insertion order, with their event JSON; empty lists if none. */
  selectInviteActiveForUserInRoom(
    tx: Tx, targetUserNID: EventStateKeyNID, roomNID: RoomNID,
  ): Promise<{ senderUserNIDs: EventStateKeyNID[]; eventIDs: string[]; inviteEventJSONs: string[] }>;
}

import type { EventStateKeyNID, RoomNID } from '../../types/nids.js';
import type { Tx } from './unit-of-work.js';

export interface InviteRow {
  readonly inviteEventID: string;
  readonly roomNID: RoomNID;
  readonly targetUserNID: EventStateKeyNID;
  readonly senderUserNID: EventStateKeyNID;
  readonly inviteEventJSON: string;
}

/** invites: invite events, active until a join or leave retires them. */
export interface InvitesTable {
  /** true if inserted; false (no error, nothing changed) if the invite ID exists. */
  insertInviteEvent(tx: Tx, invite: InviteRow): Promise<boolean>;
  /** Retires the active invites of the user in the room and returns their IDs, in insertion order. */
  updateInviteRetired(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID): Promise<string[]>;
  /** Active invites, in insertion order; empty lists if none. */
  selectInviteActiveForUserInRoom(
    tx: Tx, targetUserNID: EventStateKeyNID, roomNID: RoomNID,
  ): Promise<{ senderUserNIDs: EventStateKeyNID[]; eventIDs: string[] }>;
}

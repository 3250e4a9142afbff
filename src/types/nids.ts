/**
 * Numeric IDs (NIDs). Every NID is a positive integer assigned by the store; 0 means "none" everywhere
 * (not a state event, state unknown, no current state, nothing sent, no membership event, unknown sender).
 *
 * The brands stop one kind of NID being passed where another is expected: an event NID is not a room NID,
 * although both are plain numbers at run time. NIDs stay below 2^53 so that they are exact JS numbers.
 */
declare const nidBrand: unique symbol;
type Nid<Kind extends string> = number & { readonly [nidBrand]: Kind };

export type EventNID = Nid<'EventNID'>;
export type RoomNID = Nid<'RoomNID'>;
export type EventTypeNID = Nid<'EventTypeNID'>;
export type EventStateKeyNID = Nid<'EventStateKeyNID'>;
export type StateBlockNID = Nid<'StateBlockNID'>;
export type StateSnapshotNID = Nid<'StateSnapshotNID'>;

export const asEventNID = (n: number) => n as EventNID;
export const asRoomNID = (n: number) => n as RoomNID;
export const asEventTypeNID = (n: number) => n as EventTypeNID;
export const asEventStateKeyNID = (n: number) => n as EventStateKeyNID;
export const asStateBlockNID = (n: number) => n as StateBlockNID;
export const asStateSnapshotNID = (n: number) => n as StateSnapshotNID;

/** Event type NIDs every store has from the start, in every driver. */
export const EventTypes = {
  create: asEventTypeNID(1),
  powerLevels: asEventTypeNID(2),
  joinRules: asEventTypeNID(3),
  thirdPartyInvite: asEventTypeNID(4),
  member: asEventTypeNID(5),
  redaction: asEventTypeNID(6),
  historyVisibility: asEventTypeNID(7),
} as const;

export const PREASSIGNED_EVENT_TYPES: ReadonlyArray<readonly [EventTypeNID, string]> = [
  [EventTypes.create, 'm.room.create'],
  [EventTypes.powerLevels, 'm.room.power_levels'],
  [EventTypes.joinRules, 'm.room.join_rules'],
  [EventTypes.thirdPartyInvite, 'm.room.third_party_invite'],
  [EventTypes.member, 'm.room.member'],
  [EventTypes.redaction, 'm.room.redaction'],
  [EventTypes.historyVisibility, 'm.room.history_visibility'],
];

/** The empty state key "" is preassigned NID 1. */
export const EMPTY_STATE_KEY_NID = asEventStateKeyNID(1);

/** The largest NID we hand out: beyond it a JS number can no longer represent every integer. */
export const MAX_NID = Number.MAX_SAFE_INTEGER;

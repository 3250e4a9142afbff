import { ConflictError, InvalidInputError } from '../../types/errors.js';
import type { RoomEvent } from '../../types/event.js';
import { checkBoolean, checkCount, checkEventID, checkIdentifier, checkList, checkNID, checkNIDList, checkStateKey, checkString, checkUserID, preview } from '../../types/input.js';
import type { EventNID, RoomNID, StateSnapshotNID } from '../../types/nids.js';
import type { StateAtEvent, StateEntry, StateKeyTuple } from '../../types/state.js';
import type { TransactionKey } from '../tables/index.js';
import type { AuthResult } from '../../matrix/auth/views.js';
import type { StateDelta } from './append-plan.js';
import type { AppendInput } from './event-appender.js';

/** The room server Database's argument and result shapes, and the checks of its input. */

export interface StoredEvent {
  readonly eventNID: EventNID;
  readonly event: RoomEvent;
}

export interface StoreEventOptions {
  /** The client transaction that sent the event; a second event under the same key is a ConflictError. */
  readonly transaction?: TransactionKey;
  readonly authEventNIDs?: readonly EventNID[];
  /**
   * The event failed its auth checks: it is stored and flagged, but is in no state, never a forward extremity, and
   * moves no membership and applies no redaction. Storing it again without the flag accepts it.
   */
  readonly isRejected?: boolean;
  /**
   * appendEvent: the event passed its auth checks against its own state but not against the room's current state
   * (soft failure): its state before is stored, but it is not a forward extremity and changes nothing current.
   */
  readonly isSoftFailed?: boolean;
  /**
   * appendEvent: the state before the event, as the IDs of its state events (each stored already, as outliers
   * perhaps, or earlier in the same call): from /state_ids, send_join, backfill, or the caller's own resolution. It
   * wins over the state the store would compute from the event's prev events, and is stored as given (rejected
   * events among it are left out). Needed when the prev events are not stored or stateless.
   */
  readonly stateBefore?: readonly string[];
  /**
   * appendEvent, with `stateBefore`: the event replaces the room's forward extremities and current state (a join or
   * rejoin with state from send_join), as Dendrite's rewritesState.
   */
  readonly rewritesState?: boolean;
  /**
   * appendEvent: check the event against the auth rules of its room version, on the state before it, and say the
   * answer in the result (`auth`). The event is stored as the other options say whatever the answer: what to do
   * with a failing event (reject it, soft-fail it) is the homeserver's decision.
   */
  readonly checkAuth?: boolean;
}

export interface StoreEventResult {
  readonly roomNID: RoomNID;
  readonly stateAtEvent: StateAtEvent;
  /** True when the event was already stored: nothing new was written but what an interrupted call left undone. */
  readonly duplicate: boolean;
  /** Set when storing this event applied a redaction: the redaction event and the ID of the event it redacted. */
  readonly redaction?: { readonly redactionEvent: RoomEvent; readonly redactedEventID: string };
}

export interface AppendEventResult extends StoreEventResult {
  /** The state after the event (before it, plus the event itself if it is an accepted state event). */
  readonly stateAfterSnapshotNID: StateSnapshotNID;
  /**
   * True when this call input the event into the room: its forward extremities recalculated and its current state
   * moved. False for a duplicate (an earlier call did it), a rejected and a soft-failed event.
   */
  readonly applied: boolean;
  readonly retiredInviteIDs: readonly string[];
  /** How the room's current state changed: what a sync or federation-sender consumer needs. */
  readonly stateDelta: StateDelta;
  /** With `checkAuth`: whether the event passes the auth rules against the state before it (see StoreEventOptions). */
  readonly auth?: AuthResult;
}

export interface StateContent {
  readonly roomID: string;
  readonly eventType: string;
  readonly stateKey: string;
  readonly contentValue: string;
}

/** How many times an updater is re-run when another writer changed the room first (Cosmos DB only). */
export const MAX_UPDATE_ATTEMPTS = 20;

/** An event's row as the write path needs it, and that it was found already stored. */
export type FoundEvent = { eventNID: EventNID; roomNID: RoomNID; stateSnapshotNID: StateSnapshotNID; duplicate: boolean };

export const storedInAnotherRoom = (eventID: string) =>
  new ConflictError(`event ${eventID} is already stored in another room; event IDs are unique across rooms`);

// Input checks of the room server's API (the string rule itself is in types/input.ts).
export const checkEventIDs = (what: string, ids: unknown) => checkList<string>(what, ids, checkEventID);

export function checkStateKeyTuple(what: string, t: unknown): StateKeyTuple {
  if (typeof t !== 'object' || t === null) throw new InvalidInputError(`${what} must be a (type NID, state key NID) tuple, got ${preview(t)}`);
  const tuple = t as StateKeyTuple;
  checkNID(`${what}.eventTypeNID`, tuple.eventTypeNID);
  checkNID(`${what}.eventStateKeyNID`, tuple.eventStateKeyNID);
  return tuple;
}

/** A state entry; its event NID may be 0 (a tombstone) where `tombstoneAllowed`. */
export function checkStateEntry(what: string, e: unknown, tombstoneAllowed: boolean): StateEntry {
  const entry = checkStateKeyTuple(what, e) as StateEntry;
  checkNID(`${what}.eventNID`, entry.eventNID, tombstoneAllowed);
  return entry;
}

export function checkTypeAndKey(what: string, t: unknown): void {
  if (typeof t !== 'object' || t === null) throw new InvalidInputError(`${what} must be { eventType, stateKey }, got ${preview(t)}`);
  const { eventType, stateKey } = t as { eventType: unknown; stateKey: unknown };
  checkIdentifier(`${what}.eventType`, eventType);
  checkStateKey(stateKey, `${what}.stateKey`);
}

export function checkTransactionKey(what: string, key: unknown): TransactionKey {
  if (typeof key !== 'object' || key === null) throw new InvalidInputError(`${what} must be { transactionID, sessionID, userID }, got ${preview(key)}`);
  const k = key as TransactionKey;
  checkIdentifier(`${what}.transactionID`, k.transactionID);
  checkCount(`${what}.sessionID`, k.sessionID);
  checkUserID(`${what}.userID`, k.userID);
  return k;
}

export function checkStoreEventOptions(options: unknown): StoreEventOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidInputError(`options must be an object, got ${preview(options)}`);
  const o = options as StoreEventOptions;
  if (o.transaction !== undefined) checkTransactionKey('options.transaction', o.transaction);
  if (o.authEventNIDs !== undefined) checkNIDList('options.authEventNIDs', o.authEventNIDs);
  if (o.isRejected !== undefined) checkBoolean('options.isRejected', o.isRejected);
  if (o.isSoftFailed !== undefined) checkBoolean('options.isSoftFailed', o.isSoftFailed);
  if (o.checkAuth !== undefined) checkBoolean('options.checkAuth', o.checkAuth);
  if (o.stateBefore !== undefined) checkEventIDs('options.stateBefore', o.stateBefore);
  if (o.rewritesState !== undefined) {
    checkBoolean('options.rewritesState', o.rewritesState);
    if (o.rewritesState && o.stateBefore === undefined) throw new InvalidInputError('options.rewritesState needs options.stateBefore: the state the event rewrites the room to');
  }
  return o;
}

/** An input of appendEvents that carries options: `{ event, options }` rather than a bare event. */
export function isAppendInput(x: unknown): x is AppendInput {
  return typeof x === 'object' && x !== null && 'event' in x && !('eventID' in x);
}

/** The version a caller names for a room it creates: a room version string (issue of the registry: types/room-versions). */
export const checkRoomVersion = (v: unknown) => checkString('room version', v);


import type { EventNID, EventStateKeyNID, EventTypeNID, RoomNID, StateSnapshotNID } from '../../types/nids.js';
import type { StateAtEvent, StateAtEventAndReference, StateEntry, StateKeyTuple } from '../../types/state.js';
import type { Tx } from './unit-of-work.js';

export interface EventRow {
  readonly eventNID: EventNID;
  readonly roomNID: RoomNID;
  readonly eventTypeNID: EventTypeNID;
  /** 0 when the event is not a state event. */
  readonly eventStateKeyNID: EventStateKeyNID;
  readonly eventID: string;
  readonly authEventNIDs: readonly EventNID[];
  readonly depth: number;
  readonly isRejected: boolean;
}

/** What the write path reads of a stored event. */
export interface StoredEventInfo {
  readonly eventNID: EventNID;
  readonly roomNID: RoomNID;
  readonly stateSnapshotNID: StateSnapshotNID;
  readonly eventTypeNID: EventTypeNID;
  /** 0 when the event is not a state event. */
  readonly eventStateKeyNID: EventStateKeyNID;
  readonly isRejected: boolean;
}

/** An event row as the batch write path inserts it: with the state before the event. */
export interface StoredEventRow extends EventRow {
  readonly stateSnapshotNID: StateSnapshotNID;
  /** The room server has sent the event to its output (Dendrite's sent_to_output); false unless given. */
  readonly sentToOutput?: boolean;
}

/**
 * events: one row per stored event. The event NID is reserved first (`reserveEventNID`) so that the event's JSON
 * can be written under it before the row itself, which is the commit point that makes the event visible.
 */
export interface EventsTable {
  /** A fresh event NID, never handed out before. */
  reserveEventNID(tx: Tx): Promise<EventNID>;
  /** Inserts the row with state snapshot 0. ConflictError on a duplicate event ID (the existing row is kept). */
  insertEvent(tx: Tx, row: EventRow): Promise<void>;
  /**
   * One fresh event NID (never handed out before) for each distinct ID among `eventIDs` that no stored event has,
   * ascending, not necessarily consecutive: the batch write path's NIDs, counted and reserved in one step.
   */
  reserveEventNIDsFor(tx: Tx, eventIDs: readonly string[]): Promise<EventNID[]>;
  /**
   * `count` fresh event NIDs, ascending: for an engine without atomic transactions (Cosmos DB), whose write path
   * has read which IDs are new already and need not have them looked up again. Optional.
   */
  reserveEventNIDs?(tx: Tx, count: number): Promise<EventNID[]>;
  /**
   * Inserts the rows, each with the snapshot of the state before it (0: unknown), all or none: ConflictError if an
   * event with one of their IDs is stored already, or an ID is given twice (the stored event is kept as it is). In
   * a transaction that error fails the transaction (roll it back): so that a transaction whose COMMIT is sent
   * behind this statement (see UnitOfWork.lastWrites) cannot commit without its rows. (On an engine without
   * transactions each row is its event's own commit point: the rows whose IDs were free are stored.)
   */
  bulkInsertEvents(tx: Tx, rows: readonly StoredEventRow[]): Promise<void>;
  /**
   * The stored events with these IDs (missing ones omitted): the set-based existence check of the write path, with
   * what it needs to know of a prev event (its state before, its own entry, whether it was rejected).
   */
  bulkSelectEventsByID(tx: Tx, eventIDs: readonly string[]): Promise<Map<string, StoredEventInfo>>;
  /** Marks a stored event accepted (it was stored rejected and is now stored again as accepted). No error if missing. */
  clearEventRejected(tx: Tx, eventNID: EventNID, eventID: string): Promise<void>;
  /** NotFoundError if missing. */
  selectEvent(tx: Tx, eventID: string): Promise<{ eventNID: EventNID; roomNID: RoomNID; stateSnapshotNID: StateSnapshotNID }>;
  /**
   * State entries of the given events, sorted by (type, state key). MissingEventError unless every ID is found
   * exactly once (a repeated input ID is an error too). With excludeRejected, rejected events are left out of the
   * answer silently (as Dendrite's send_join and backfill paths expect); an unknown ID is still an error.
   */
  bulkSelectStateEventByID(tx: Tx, eventIDs: readonly string[], excludeRejected?: boolean): Promise<StateEntry[]>;
  /**
   * State entries of the given event NIDs, sorted by (type, state key); missing NIDs are dropped. A non-empty
   * `tuples` filters by type in {their types} AND key in {their keys}: two independent sets, so the result can be a
   * superset (the cross product) of the tuples asked for.
   */
  bulkSelectStateEventByNID(tx: Tx, eventNIDs: readonly EventNID[], tuples: readonly StateKeyTuple[]): Promise<StateEntry[]>;
  /**
   * MissingEventError if any ID is missing; MissingStateError if an event's state is unknown (snapshot 0), except
   * for a genuine create event (type 1, state key ""). Order not guaranteed.
   */
  bulkSelectStateAtEventByID(tx: Tx, eventIDs: readonly string[]): Promise<StateAtEvent[]>;
  /** Sets the state before the event. No error if the NID is missing. */
  updateEventState(tx: Tx, eventNID: EventNID, stateSnapshotNID: StateSnapshotNID): Promise<void>;
  /** NotFoundError if missing. */
  selectEventSentToOutput(tx: Tx, eventNID: EventNID): Promise<boolean>;
  updateEventSentToOutput(tx: Tx, eventNID: EventNID): Promise<void>;
  /** NotFoundError if missing. */
  selectEventID(tx: Tx, eventNID: EventNID): Promise<string>;
  /** MissingEventError if any NID is missing. Order not guaranteed. */
  bulkSelectStateAtEventAndReference(tx: Tx, eventNIDs: readonly EventNID[]): Promise<StateAtEventAndReference[]>;
  /** MissingEventError if any NID is missing. */
  bulkSelectEventID(tx: Tx, eventNIDs: readonly EventNID[]): Promise<Map<EventNID, string>>;
  /** Missing IDs are omitted. */
  bulkSelectEventNID(tx: Tx, eventIDs: readonly string[]): Promise<Map<string, EventNID>>;
  /** max(depth) + 1 over the given events, or 0 when none of them exists. */
  selectMaxEventDepth(tx: Tx, eventNIDs: readonly EventNID[]): Promise<number>;
  /** Each event's ID and room. Missing NIDs are omitted. */
  bulkSelectEventIDsAndRooms(tx: Tx, eventNIDs: readonly EventNID[]): Promise<Map<EventNID, { eventID: string; roomNID: RoomNID }>>;
  /** The rooms holding at least one event of the type, ascending, each once (Dendrite's SelectRoomsWithEventTypeNID). */
  selectRoomsWithEventTypeNID(tx: Tx, eventTypeNID: EventTypeNID): Promise<RoomNID[]>;
  /** Missing NIDs are omitted. */
  selectRoomNIDsForEventNIDs(tx: Tx, eventNIDs: readonly EventNID[]): Promise<Map<EventNID, RoomNID>>;
}

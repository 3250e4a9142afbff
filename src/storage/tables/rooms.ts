import type { EventNID, RoomNID, StateBlockNID, StateSnapshotNID } from '../../types/nids.js';
import type { Tx } from './unit-of-work.js';

export interface RoomInfo {
  readonly roomNID: RoomNID;
  readonly roomVersion: string;
  readonly stateSnapshotNID: StateSnapshotNID;
  /** True while the room has no latest events. */
  readonly isStub: boolean;
}

export interface LatestEvents {
  readonly latestEventNIDs: readonly EventNID[];
  readonly lastEventSentNID: EventNID;
  readonly stateSnapshotNID: StateSnapshotNID;
  /**
   * What `updateLatestEventNIDs` must find unchanged (an ETag on Cosmos DB, where there is no row lock; the SQL
   * drivers lock the row instead and ignore it).
   */
  readonly version: string;
  /**
   * Events a batch may have stored before it moved the room's latest events to them, on an engine without atomic
   * transactions (see markAppending): an interrupted batch leaves them stored but not applied. Absent or empty on
   * the SQL drivers, whose batches commit whole or not at all.
   */
  readonly appending?: readonly EventNID[];
  /**
   * Until when (ms since the epoch) another writer holds the room (see claimRoom), on an engine without atomic
   * transactions; absent when nobody does, and always on the SQL drivers, whose row lock is the claim.
   */
  readonly claimedUntil?: number;
}

/** rooms: room ID <-> NID, and each room's forward extremities and current state. */
export interface RoomsTable {
  /** ConflictError if the room already exists. */
  insertRoomNID(tx: Tx, roomID: string, roomVersion: string): Promise<RoomNID>;
  /** NotFoundError if missing. */
  selectRoomNID(tx: Tx, roomID: string): Promise<RoomNID>;
  /** NotFoundError if missing. */
  selectLatestEventNIDs(tx: Tx, roomNID: RoomNID): Promise<{ eventNIDs: EventNID[]; stateSnapshotNID: StateSnapshotNID }>;
  /**
   * Reads the latest events and holds the room exclusively for `tx` until it ends (a row lock on PostgreSQL, the
   * single writer on SQLite, the returned version on Cosmos DB). NotFoundError if missing.
   */
  selectLatestEventsNIDsForUpdate(tx: Tx, roomNID: RoomNID): Promise<LatestEvents>;
  /**
   * Overwrites latest events, last event sent and current state. ConflictError if the room changed since
   * `expectedVersion` was read (only possible where there is no lock: Cosmos DB).
   */
  updateLatestEventNIDs(
    tx: Tx,
    roomNID: RoomNID,
    latestEventNIDs: readonly EventNID[],
    lastEventSentNID: EventNID,
    stateSnapshotNID: StateSnapshotNID,
    expectedVersion: string,
    /** Where claimRoom exists: the room's appending events from now on; the claim is released either way. */
    appending?: readonly EventNID[],
    /**
     * The new state snapshot's block list, where the caller knows it: a driver may keep it beside the room's current
     * state, so that loading the current state needs no read of the snapshot (Cosmos DB does).
     */
    stateBlockNIDs?: readonly StateBlockNID[],
  ): Promise<void>;
  /**
   * Only on an engine without atomic transactions (Cosmos DB; the SQL drivers lock the row instead): claims the room
   * until `until` (ms since the epoch) for a batch that is about to write, and sets its appending events
   * (LatestEvents.appending), on condition that the room is still at `expectedVersion`; returns the new version.
   * ConcurrentUpdateError if the room changed meanwhile. updateLatestEventNIDs releases the claim, releaseRoom too.
   */
  claimRoom?(tx: Tx, roomNID: RoomNID, appending: readonly EventNID[], until: number, expectedVersion: string): Promise<string>;
  /** Releases a claim this writer still holds (the room unchanged since `expectedVersion`); no error otherwise. */
  releaseRoom?(tx: Tx, roomNID: RoomNID, expectedVersion: string): Promise<void>;
  /** Missing NIDs are omitted. */
  selectRoomVersionsForRoomNIDs(tx: Tx, roomNIDs: readonly RoomNID[]): Promise<Map<RoomNID, string>>;
  /** null if the room is unknown. */
  selectRoomInfo(tx: Tx, roomID: string): Promise<RoomInfo | null>;
  /** Every room ID, sorted. */
  selectRoomIDs(tx: Tx): Promise<string[]>;
  /** The IDs of rooms with latest events (stub rooms left out), sorted: Dendrite's SelectRoomIDsWithEvents. */
  selectRoomIDsWithEvents(tx: Tx): Promise<string[]>;
  /** Missing NIDs are omitted. */
  bulkSelectRoomIDs(tx: Tx, roomNIDs: readonly RoomNID[]): Promise<Map<RoomNID, string>>;
  /** Missing IDs are omitted. */
  bulkSelectRoomNIDs(tx: Tx, roomIDs: readonly string[]): Promise<Map<string, RoomNID>>;
}

import type { EventNID, RoomNID, StateSnapshotNID } from '../../types/nids.js';
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
  ): Promise<void>;
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

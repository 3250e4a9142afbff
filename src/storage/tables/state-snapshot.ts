import type { RoomNID, StateBlockNID, StateSnapshotNID } from '../../types/nids.js';
import type { StateBlockNIDList, StateEntry } from '../../types/state.js';
import type { Tx } from './unit-of-work.js';

export interface SnapshotBlocks {
  readonly stateSnapshotNID: StateSnapshotNID;
  readonly stateBlockNIDs: readonly StateBlockNID[];
}

/**
 * state_snapshot: content-addressed ordered lists of state blocks. The order matters (later blocks override
 * earlier ones), so unlike Dendrite the list is kept as given, not sorted. The hash ignores the room, so the
 * empty snapshot is shared by every room; the room NID recorded is the first room that stored the snapshot.
 */
export interface StateSnapshotTable {
  /**
   * Returns the snapshot NID for this ordered block list, creating it if new. The same list (same NIDs, same
   * order) always gets the same NID. InvalidInputError if the list is longer than the snapshot limit (64).
   */
  insertState(tx: Tx, roomNID: RoomNID, stateBlockNIDs: readonly StateBlockNID[]): Promise<StateSnapshotNID>;
  /** insertState for many block lists of one room: their snapshot NIDs, in the order given. */
  bulkInsertStates(tx: Tx, roomNID: RoomNID, lists: readonly (readonly StateBlockNID[])[]): Promise<StateSnapshotNID[]>;
  /**
   * StateBlockTable.bulkInsertStateBlocks and then bulkInsertStates, in one call, for a driver that saves requests by
   * writing both together (Cosmos DB). A list names a stored block by its NID, a block of this call by its index in
   * `blocks` (`{ block: i }`). Answers both kinds of NIDs, as the two calls would.
   */
  bulkInsertBlocksAndStates?(tx: Tx, roomNID: RoomNID, blocks: readonly (readonly StateEntry[])[],
    lists: readonly (readonly (StateBlockNID | { readonly block: number })[])[]): Promise<{ blockNIDs: StateBlockNID[]; stateNIDs: StateSnapshotNID[] }>;
  /**
   * The state before an event: its snapshot NID and that snapshot's block list, read together (one query where
   * the engine can join). NotFoundError if the event is missing; snapshot 0 and no blocks if its state is unknown.
   */
  selectStateBlockNIDsAtEvent(tx: Tx, eventID: string): Promise<SnapshotBlocks>;
  /** A room's current state, the same way. NotFoundError if the room is missing; 0 and no blocks if it has none. */
  selectCurrentStateBlockNIDs(tx: Tx, roomID: string): Promise<SnapshotBlocks>;
  /** Ordered by snapshot NID ascending; each block list in stored order. MissingStateError if any is missing. */
  bulkSelectStateBlockNIDs(tx: Tx, stateSnapshotNIDs: readonly StateSnapshotNID[]): Promise<StateBlockNIDList[]>;
}

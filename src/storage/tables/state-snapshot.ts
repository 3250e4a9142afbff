import type { RoomNID, StateBlockNID, StateSnapshotNID } from '../../types/nids.js';
import type { StateBlockNIDList } from '../../types/state.js';
import type { Tx } from './unit-of-work.js';

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
  /** Ordered by snapshot NID ascending; each block list in stored order. MissingStateError if any is missing. */
  bulkSelectStateBlockNIDs(tx: Tx, stateSnapshotNIDs: readonly StateSnapshotNID[]): Promise<StateBlockNIDList[]>;
}

import type { StateBlockNID } from '../../types/nids.js';
import type { StateEntry, StateEntryList } from '../../types/state.js';
import type { Tx } from './unit-of-work.js';

/**
 * state_block: content-addressed sets of state entries. Unlike Dendrite, a block keeps the whole
 * (type, state key, event) tuple, so loading state never has to join the events table. An event NID of 0 is a
 * tombstone: the tuple is absent from the state, whatever earlier blocks say.
 */
export interface StateBlockTable {
  /**
   * Stores the entries (at most one per tuple; InvalidInputError otherwise) and returns the block's NID. The same
   * set of entries always gets the same NID: inserting an existing block returns the existing NID.
   */
  insertStateBlock(tx: Tx, entries: readonly StateEntry[]): Promise<StateBlockNID>;
  /** insertStateBlock for many blocks: their NIDs, in the order given. */
  bulkInsertStateBlocks(tx: Tx, blocks: readonly (readonly StateEntry[])[]): Promise<StateBlockNID[]>;
  /**
   * Each block's entries sorted by (type, state key); the list is ordered by block NID ascending, not by input
   * order. MissingStateError if any block is missing.
   */
  bulkSelectStateBlockEntries(tx: Tx, stateBlockNIDs: readonly StateBlockNID[]): Promise<StateEntryList[]>;
  /**
   * Optional: each block as stored, in the one encoding every driver shares (state-codec.ts), for the state layer,
   * which caches and resolves encodings without making an object per entry. Ordered by block NID ascending;
   * MissingStateError if any is missing. A driver without it is read through bulkSelectStateBlockEntries.
   */
  bulkSelectEncodedStateBlocks?(tx: Tx, stateBlockNIDs: readonly StateBlockNID[]): Promise<EncodedStateBlockRow[]>;
}

export interface EncodedStateBlockRow {
  readonly stateBlockNID: StateBlockNID;
  readonly encoded: Uint8Array;
}

import type { Tx } from './unit-of-work.js';

/**
 * key_changes: which users' device lists changed, as a stream. One row per user: recording a change moves the
 * user to a new, higher change ID (the 2022 form of the table; the Kafka partition is gone).
 */
export interface KeyChangesTable {
  /** Records that the user's keys changed; returns the new change ID, strictly greater than any handed out before. */
  insertKeyChange(tx: Tx, userID: string): Promise<number>;
  /**
   * Users whose latest change ID is in (fromOffset, toOffset] (`toOffset` OFFSET_NEWEST, -1: no upper bound),
   * each once, sorted; and the highest change ID among them (fromOffset if none).
   */
  selectKeyChanges(tx: Tx, fromOffset: number, toOffset: number): Promise<{ userIDs: string[]; latestOffset: number }>;
}

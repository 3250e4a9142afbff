import type { Tx } from './unit-of-work.js';

/** stale_device_lists: remote users whose device lists must be fetched again. */
export interface StaleDeviceListsTable {
  /**
   * UPSERT the flag (and the time). The domain is the user ID's server part (after the first ":"):
   * InvalidInputError if the user ID has none.
   */
  insertStaleDeviceList(tx: Tx, userID: string, isStale: boolean): Promise<void>;
  /** Users marked stale, on any of the domains (on every domain when the list is empty); sorted. */
  selectUserIDsWithStaleDeviceLists(tx: Tx, domains: readonly string[]): Promise<string[]>;
  /** Removes the users' rows; no-op for users not listed. */
  deleteStaleDeviceLists(tx: Tx, userIDs: readonly string[]): Promise<void>;
}

import type { Tx } from './unit-of-work.js';

/** One device's keys as the key server stores and returns them. */
export interface DeviceMessage {
  readonly userID: string;
  readonly deviceID: string;
  /** The signed device keys JSON; "" marks a deleted device. */
  keyJSON: string;
  /** Per-user position in the device list stream; 0 when the device is unknown. */
  streamID: number;
  /** undefined when the device has none ("" is a display name of its own). */
  displayName?: string | undefined;
}

/** device_keys: one row per (user, device). */
export interface DeviceKeysTable {
  /**
   * UPSERT per message, in order: replaces key JSON, stream ID and display name; the added time is kept from the
   * first insert. A later message for the same device in one call wins.
   */
  insertDeviceKeys(tx: Tx, messages: readonly DeviceMessage[]): Promise<void>;
  /**
   * Fills each message in place with the stored key JSON, stream ID and display name. A missing device gets
   * keyJSON "", stream ID 0 and no display name, with no error.
   */
  selectDeviceKeysJSON(tx: Tx, messages: DeviceMessage[]): Promise<void>;
  /** The user's highest stream ID, 0 if the user has no rows. A plain read: it reserves nothing. */
  selectMaxStreamIDForUser(tx: Tx, userID: string): Promise<number>;
  /**
   * Reserves `count` (>= 1) consecutive stream IDs for the user's next device-list updates and returns the first:
   * one above every stream ID the user has stored (1 for a new user), then upward. Two reservations for one user
   * never overlap, even from concurrent transactions; call it in the transaction that writes the rows.
   * - SQLite: max + 1, read under the single writer that BEGIN IMMEDIATE holds until the transaction ends.
   * - PostgreSQL: max + 1 read under a lock on the user held until the transaction ends (a transaction-scoped
   *   advisory lock on the user ID: MAX over rows locks nothing when the user has none).
   * - A lock-free engine (Cosmos DB) must not read-max-then-write: it keeps a per-user counter document in the
   *   user's partition, seeded from the rows' max, and bumps it with one atomic increment by `count`, so that
   *   concurrent batches get disjoint, consecutive ranges; a crash after the reservation leaves a gap, never a
   *   duplicate.
   */
  reserveStreamIDs(tx: Tx, userID: string, count: number): Promise<number>;
  /**
   * How many of the listed stream IDs the user has a row at, each ID counted once (repeats in the list, or two
   * rows at one ID, do not inflate it): the count equals the number of distinct IDs iff all of them exist.
   */
  countStreamIDsForUser(tx: Tx, userID: string, streamIDs: readonly number[]): Promise<number>;
  /**
   * The user's devices with keys (keyJSON not ""; with `includeEmpty` those without too), limited to `deviceIDs`
   * unless it is empty (then all of them); sorted by device ID. Unknown devices are skipped.
   */
  selectBatchDeviceKeys(tx: Tx, userID: string, deviceIDs: readonly string[], includeEmpty?: boolean): Promise<DeviceMessage[]>;
  /** No-op if absent. */
  deleteDeviceKeys(tx: Tx, userID: string, deviceID: string): Promise<void>;
  /** Deletes every row of the user (deleted markers included) except those of `keepDeviceIDs`; no-op if none. */
  deleteAllDeviceKeys(tx: Tx, userID: string, keepDeviceIDs?: readonly string[]): Promise<void>;
}

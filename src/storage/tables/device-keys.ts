import type { Tx } from './unit-of-work.js';

/** One device's keys as the key server stores and returns them. */
export interface DeviceMessage {
  readonly userID: string;
  readonly deviceID: string;
  /** The signed device keys JSON; "" marks a deleted device. */
  keyJSON: string;
  /** Per-user position in the device list stream; 0 when the device is unknown. */
  streamID: number;
  displayName?: string | undefined;
}

/** device_keys: one row per (user, device). */
export interface DeviceKeysTable {
  /** UPSERT per message: replaces key JSON, stream ID and display name; the added time is kept from the first insert. */
  insertDeviceKeys(tx: Tx, messages: readonly DeviceMessage[]): Promise<void>;
  /**
   * Fills each message in place with the stored key JSON, stream ID and display name. A missing device gets
   * keyJSON "" and stream ID 0, with no error.
   */
  selectDeviceKeysJSON(tx: Tx, messages: DeviceMessage[]): Promise<void>;
  /** The user's highest stream ID, 0 if the user has no rows. */
  selectMaxStreamIDForUser(tx: Tx, userID: string): Promise<number>;
  /** How many of the user's rows have a stream ID in the list. */
  countStreamIDsForUser(tx: Tx, userID: string, streamIDs: readonly number[]): Promise<number>;
  /** The user's devices with keys (keyJSON not ""), limited to `deviceIDs` unless it is empty; sorted by device ID. */
  selectBatchDeviceKeys(tx: Tx, userID: string, deviceIDs: readonly string[]): Promise<DeviceMessage[]>;
  /** No-op if absent. */
  deleteDeviceKeys(tx: Tx, userID: string, deviceID: string): Promise<void>;
  deleteAllDeviceKeys(tx: Tx, userID: string): Promise<void>;
}

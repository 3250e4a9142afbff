import type { Tx } from './unit-of-work.js';

export interface OneTimeKeys {
  readonly userID: string;
  readonly deviceID: string;
  /** "algorithm:keyID" -> key JSON. */
  readonly keyJSON: Readonly<Record<string, string>>;
}

export interface OneTimeKeysCount {
  readonly userID: string;
  readonly deviceID: string;
  /** algorithm -> number of keys; algorithms with none are absent. */
  readonly keyCount: Readonly<Record<string, number>>;
}

/** one_time_keys: unclaimed one-time keys per device. */
export interface OneTimeKeysTable {
  /**
   * UPSERT each key (the map key is split at the first ":" into algorithm and key ID; InvalidInputError if it has
   * none). Returns the device's counts after the insert.
   */
  insertOneTimeKeys(tx: Tx, keys: OneTimeKeys): Promise<OneTimeKeysCount>;
  /** Only the keys that exist, as "algorithm:keyID" -> JSON. */
  selectOneTimeKeys(tx: Tx, userID: string, deviceID: string, keyIDsWithAlgorithms: readonly string[]): Promise<Record<string, string>>;
  countOneTimeKeys(tx: Tx, userID: string, deviceID: string): Promise<OneTimeKeysCount>;
  /**
   * Picks any one key of the algorithm and deletes it, atomically: two concurrent claims never get the same key.
   * Returns { "algorithm:keyID": JSON }, or null if the device has none of that algorithm.
   */
  selectAndDeleteOneTimeKey(tx: Tx, userID: string, deviceID: string, algorithm: string): Promise<Record<string, string> | null>;
}

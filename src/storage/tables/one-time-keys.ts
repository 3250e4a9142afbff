import type { Tx } from './unit-of-work.js';

/** A device's one-time keys. Maps, not objects: an algorithm or key ID may be any string, "__proto__" included. */
export interface OneTimeKeys {
  readonly userID: string;
  readonly deviceID: string;
  /** "algorithm:keyID" -> key JSON. */
  readonly keyJSON: ReadonlyMap<string, string>;
}

export interface OneTimeKeysCount {
  readonly userID: string;
  readonly deviceID: string;
  /** algorithm -> number of keys; algorithms with none are absent. */
  readonly keyCount: ReadonlyMap<string, number>;
}

/** one_time_keys: unclaimed one-time keys per device. */
export interface OneTimeKeysTable {
  /**
   * UPSERT each key: the map key is split at the first ":" into algorithm and key ID (InvalidInputError, before
   * anything is written, if one has none); an existing key's JSON is replaced. Returns the device's counts after
   * the insert.
   */
  insertOneTimeKeys(tx: Tx, keys: OneTimeKeys): Promise<OneTimeKeysCount>;
  /** Only the keys that exist, as "algorithm:keyID" -> JSON; a name without ":" matches nothing. */
  selectOneTimeKeys(tx: Tx, userID: string, deviceID: string, keyIDsWithAlgorithms: readonly string[]): Promise<Map<string, string>>;
  /** Counts per algorithm; an empty map if the device has none. */
  countOneTimeKeys(tx: Tx, userID: string, deviceID: string): Promise<OneTimeKeysCount>;
  /**
   * Picks any one key of the algorithm and deletes it, atomically, even outside a transaction: two concurrent
   * claims never get the same key. Returns ["algorithm:keyID", JSON], or null if the device has none of that
   * algorithm. A claim that loses a race for one key moves on to another rather than giving up (on PostgreSQL a
   * plain DELETE ... WHERE key = (sub-select) under READ COMMITTED finds the row gone and deletes nothing: lock
   * the sub-select FOR UPDATE SKIP LOCKED, or retry), so N keys serve exactly N of any number of concurrent claims.
   */
  selectAndDeleteOneTimeKey(tx: Tx, userID: string, deviceID: string, algorithm: string): Promise<readonly [string, string] | null>;
}

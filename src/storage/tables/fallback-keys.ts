import type { OneTimeKeys } from './one-time-keys.js';
import type { Tx } from './unit-of-work.js';

/** A device's fallback keys as uploaded: "algorithm:keyID" -> key JSON, one per algorithm. */
export type FallbackKeys = OneTimeKeys;

/**
 * fallback_keys: a device's fallback key per algorithm (MSC2732, in the spec since v1.2). A claim that finds no
 * one-time key of the algorithm left gets the fallback key instead; it stays, marked used, and is handed out again
 * on later such claims until the device uploads a new one.
 */
export interface FallbackKeysTable {
  /**
   * UPSERT per (user, device, algorithm): `keys` holds [algorithm, key ID, key JSON] with each algorithm once. A key
   * replaces the algorithm's previous one and is marked unused, unless it is that same key (same ID and JSON), which
   * keeps its used mark: clients upload their current fallback key again, and that must not hide that it was used.
   */
  upsertFallbackKeys(tx: Tx, userID: string, deviceID: string, keys: readonly (readonly [string, string, string])[]): Promise<void>;
  /** The algorithms of the device's fallback keys that no claim has used yet, sorted; empty if none. */
  selectUnusedFallbackKeyAlgorithms(tx: Tx, userID: string, deviceID: string): Promise<string[]>;
  /**
   * The device's fallback key of the algorithm as ["algorithm:keyID", JSON], marked used in the same atomic step
   * (it stays stored); null if the device has none of that algorithm. Handing it out is the commit point: a key
   * returned is marked used, whatever answers were lost on the way.
   */
  claimFallbackKey(tx: Tx, userID: string, deviceID: string, algorithm: string): Promise<readonly [string, string] | null>;
  /** Deletes every fallback key of the device (no-op if none). */
  deleteFallbackKeys(tx: Tx, userID: string, deviceID: string): Promise<void>;
}

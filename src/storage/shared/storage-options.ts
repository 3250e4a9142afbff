import type { StatePolicy } from './state-policy.js';

/** Settings of the shared layer, from the config file (see config/schema.ts). */
export interface StorageOptions {
  /** This homeserver's name: users on it are "local" in memberships. */
  readonly serverName: string;
  readonly statePolicy: StatePolicy;
  /** How many state entries the in-process block cache holds, and block NIDs the snapshot cache (0 turns both off). */
  readonly blockCacheEntries: number;
}

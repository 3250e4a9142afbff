import type { StateResolver } from './state-resolver.js';
import type { StatePolicy } from './state-policy.js';

/** Settings of the shared layer, from the config file (see config/schema.ts). */
export interface StorageOptions {
  /** This homeserver's name: users on it are "local" in memberships. */
  readonly serverName: string;
  readonly statePolicy: StatePolicy;
  /** Days a send-to-device message is kept if its device does not fetch it (0 or undefined: until it does). */
  readonly sendToDeviceMaxAgeDays?: number;
  /** Bytes of stored block encodings the in-process block cache holds (an eighth more for snapshots; 0 turns both off). */
  readonly blockCacheBytes?: number;
  /**
   * @deprecated The earlier budget, in state entries; taken as 8 bytes an entry when blockCacheBytes is not given
   * (a StateStorage built by hand, as the conformance suite builds its own).
   */
  readonly blockCacheEntries?: number;
  /**
   * Combines states that differ: an event's prev events' states, a room's forward extremities' states. Without one,
   * such a conflict is a StateConflictError that writes nothing (the caller may always supply the state itself).
   */
  readonly stateResolver?: StateResolver;
}

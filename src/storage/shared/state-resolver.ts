import type { EventLoader, StateMap } from '../../matrix/state-resolution/index.js';

/**
 * What the input path calls where states differ (an event's prev events' states, a room's forward extremities'
 * states): the room's version, the states to combine (each whole, keyed by `stateMapKey(type, stateKey)`), and a
 * loader of the events they and their auth chains name (the store's events, and those of the call being input).
 * Returns the resolved state, whole. `resolveState` (the spec's state resolution) is the built-in one; a homeserver
 * may pass its own to createStorage.
 */
export type StateResolver = (roomVersion: string, stateSets: readonly StateMap[], loadEvents: EventLoader) => Promise<Map<string, string>>;

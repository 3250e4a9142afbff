import type { RoomEvent } from '../../types/event.js';

/** A state by (type, state key): `${type}\u0000${stateKey}` -> event ID. */
export type StateMapByKey = ReadonlyMap<string, string>;

/** Loads the events it can by ID, in one call per batch; IDs it does not hold are absent from the answer. */
export type ResolverEventLoader = (eventIDs: readonly string[]) => Promise<ReadonlyMap<string, RoomEvent>>;

/**
 * What the input path calls where states differ: the room's version, the states to combine (each whole), and a
 * loader of the events they and their auth chains name (the store's events, and those of the call being input).
 * Returns the resolved state, whole. The built-in resolver is the spec's state resolution; a homeserver may pass its
 * own to createStorage.
 */
export type StateResolver = (roomVersion: string, stateSets: readonly StateMapByKey[], loadEvents: ResolverEventLoader) => Promise<Map<string, string>>;

/** The key of a state map entry. */
export const stateMapKey = (type: string, stateKey: string): string => `${type}\u0000${stateKey}`;

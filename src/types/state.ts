import type { EventNID, EventStateKeyNID, EventTypeNID, StateBlockNID, StateSnapshotNID } from './nids.js';

/** (event type NID, state key NID): what a state event is "about". */
export interface StateKeyTuple {
  readonly eventTypeNID: EventTypeNID;
  readonly eventStateKeyNID: EventStateKeyNID;
}

/** A tuple and the event that currently fills it. An event NID of 0 in a state block is a tombstone. */
export interface StateEntry extends StateKeyTuple {
  readonly eventNID: EventNID;
}

/** The state before an event, and the event's own entry (state key NID 0 when it is not a state event). */
export interface StateAtEvent extends StateEntry {
  readonly beforeStateSnapshotNID: StateSnapshotNID;
  readonly isRejected: boolean;
}

export interface StateAtEventAndReference extends StateAtEvent {
  readonly eventID: string;
}

export interface StateBlockNIDList {
  readonly stateSnapshotNID: StateSnapshotNID;
  readonly stateBlockNIDs: readonly StateBlockNID[];
}

export interface StateEntryList {
  readonly stateBlockNID: StateBlockNID;
  readonly stateEntries: readonly StateEntry[];
}

export const isStateEvent = (s: StateKeyTuple): boolean => s.eventStateKeyNID !== 0;

/** Total order on tuples: by type NID, then by state key NID. */
export function compareTuples(a: StateKeyTuple, b: StateKeyTuple): number {
  return a.eventTypeNID - b.eventTypeNID || a.eventStateKeyNID - b.eventStateKeyNID;
}

/** Order on entries: by tuple, then by event NID. */
export function compareEntries(a: StateEntry, b: StateEntry): number {
  return compareTuples(a, b) || a.eventNID - b.eventNID;
}

export const tupleKey = (t: StateKeyTuple): string => `${t.eventTypeNID}:${t.eventStateKeyNID}`;

/**
 * Sorts by (tuple, event NID) and keeps, for each tuple, the entry with the highest event NID.
 * [(1,1)->1, (1,1)->2, (1,1)->3, (2,2)->4, (2,3)->5, (3,3)->6] gives event NIDs [3,4,5,6].
 */
export function deduplicateStateEntries(entries: readonly StateEntry[]): StateEntry[] {
  const sorted = [...entries].sort(compareEntries);
  const out: StateEntry[] = [];
  for (const e of sorted) {
    const last = out[out.length - 1];
    if (last && compareTuples(last, e) === 0) out[out.length - 1] = e;
    else out.push(e);
  }
  return out;
}

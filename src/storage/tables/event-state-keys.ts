import type { EventStateKeyNID } from '../../types/nids.js';
import type { Tx } from './unit-of-work.js';

/** event_state_keys: state key string <-> NID. Seeded with "" = 1. User IDs are state keys of m.room.member. */
export interface EventStateKeysTable {
  /** Inserts a new key. ConflictError if the key already exists. */
  insertEventStateKeyNID(tx: Tx, eventStateKey: string): Promise<EventStateKeyNID>;
  /** NotFoundError if the key is unknown. */
  selectEventStateKeyNID(tx: Tx, eventStateKey: string): Promise<EventStateKeyNID>;
  /** Unknown keys are omitted. */
  bulkSelectEventStateKeyNID(tx: Tx, eventStateKeys: readonly string[]): Promise<Map<string, EventStateKeyNID>>;
  /** The NIDs of these keys, creating the missing ones (safe against concurrent writers, as assignEventTypeNIDs). */
  assignEventStateKeyNIDs(tx: Tx, eventStateKeys: readonly string[]): Promise<Map<string, EventStateKeyNID>>;
  /**
   * Optional, for engines whose input path writes what comes before its commit in bulk (Cosmos DB): NIDs for keys
   * the call just found absent, whose mappings are written with the call's writes rather than now. `written`
   * settles once they are stored (a key another writer created meanwhile fails it, and the call, with
   * ConcurrentUpdateError); it never settles if the call writes nothing.
   */
  stageEventStateKeyNIDs?(tx: Tx, eventStateKeys: readonly string[]): Promise<{ nids: Map<string, EventStateKeyNID>; written: Promise<void> }>;
  /**
   * Optional, with stageEventStateKeyNIDs: bulkSelectEventStateKeyNID for a call that writes with its staged keys.
   * What the lookup finds but must still make sure of is made sure of with those writes; `settled` settles once it
   * has been (at once when nothing was left to do; never, if the call writes nothing), and until then the NIDs are
   * the call's to use and nobody else's to keep.
   */
  lookUpEventStateKeyNIDsForCall?(tx: Tx, eventStateKeys: readonly string[]): Promise<{ nids: Map<string, EventStateKeyNID>; settled: Promise<void> }>;
  /** Unknown NIDs are omitted. */
  bulkSelectEventStateKey(tx: Tx, eventStateKeyNIDs: readonly EventStateKeyNID[]): Promise<Map<EventStateKeyNID, string>>;
}

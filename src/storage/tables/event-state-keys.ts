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
  /** Unknown NIDs are omitted. */
  bulkSelectEventStateKey(tx: Tx, eventStateKeyNIDs: readonly EventStateKeyNID[]): Promise<Map<EventStateKeyNID, string>>;
}

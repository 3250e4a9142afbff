import type { EventTypeNID } from '../../types/nids.js';
import type { Tx } from './unit-of-work.js';

/** event_types: event type string <-> NID. Seeded with the 7 preassigned types. */
export interface EventTypesTable {
  /** Inserts a new type. ConflictError if the type already exists (DO NOTHING: the existing row is kept). */
  insertEventTypeNID(tx: Tx, eventType: string): Promise<EventTypeNID>;
  /** NotFoundError if the type is unknown. */
  selectEventTypeNID(tx: Tx, eventType: string): Promise<EventTypeNID>;
  /** Unknown types are omitted. */
  bulkSelectEventTypeNID(tx: Tx, eventTypes: readonly string[]): Promise<Map<string, EventTypeNID>>;
  /**
   * The NIDs of these types, creating the missing ones (safe against concurrent writers: a type another writer
   * creates at the same moment gets one NID, which both see).
   */
  assignEventTypeNIDs(tx: Tx, eventTypes: readonly string[]): Promise<Map<string, EventTypeNID>>;
  /** NID -> type string; unknown NIDs are omitted. */
  bulkSelectEventType(tx: Tx, eventTypeNIDs: readonly EventTypeNID[]): Promise<Map<EventTypeNID, string>>;
}

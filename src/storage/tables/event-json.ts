import type { EventNID } from '../../types/nids.js';
import type { Tx } from './unit-of-work.js';

export interface EventJSONPair {
  readonly eventNID: EventNID;
  readonly eventJSON: string;
}

/** event_json: the JSON text of each event, never parsed by the table. */
export interface EventJSONTable {
  /** UPSERT: replaces the JSON if the NID has some (redaction relies on this). */
  insertEventJSON(tx: Tx, eventNID: EventNID, eventJSON: string): Promise<void>;
  /** insertEventJSON for many events (UPSERT each). */
  bulkInsertEventJSON(tx: Tx, pairs: readonly EventJSONPair[]): Promise<void>;
  /** Ordered by event NID ascending; missing NIDs are omitted. */
  bulkSelectEventJSON(tx: Tx, eventNIDs: readonly EventNID[]): Promise<EventJSONPair[]>;
}

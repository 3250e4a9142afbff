import type { EventNID, RoomNID } from '../../types/nids.js';
import type { Tx } from './unit-of-work.js';

/** previous_events: for each event ID named in some prev_events, the NIDs of the events naming it. */
export interface PreviousEventsTable {
  /** Adds eventNID to the set for previousEventID (set semantics: no duplicates). */
  insertPreviousEvent(tx: Tx, previousEventID: string, eventNID: EventNID): Promise<void>;
  /** Resolves if some event names previousEventID; NotFoundError otherwise. */
  selectPreviousEventExists(tx: Tx, previousEventID: string): Promise<void>;
  /** insertPreviousEvent for many (previous event ID, event NID) pairs. */
  bulkInsertPreviousEvents(tx: Tx, pairs: readonly { previousEventID: string; eventNID: EventNID }[]): Promise<void>;
  /**
   * For each ID that some stored event names in its prev_events: the NIDs of the events naming it. Others omitted.
   * `roomOf` gives the room of IDs the caller knows it for (prev events are in their child's room): a driver that
   * keeps references by room (Cosmos DB) needs it for events it does not store yet; the SQL drivers ignore it.
   */
  bulkSelectPreviousEventReferences(tx: Tx, previousEventIDs: readonly string[], roomOf?: ReadonlyMap<string, RoomNID>): Promise<Map<string, EventNID[]>>;
  /**
   * The room's backward extremities: the event IDs that the room's stored events name in their prev_events and that
   * no stored event has, sorted (what a homeserver backfills from).
   */
  selectMissingPreviousEvents(tx: Tx, roomNID: RoomNID): Promise<string[]>;
}

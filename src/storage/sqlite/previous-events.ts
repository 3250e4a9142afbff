import { inject, injectable } from 'inversify';
import type { EventNID, RoomNID } from '../../types/nids.js';
import { notFound, unique } from '../shared/contracts.js';
import type { PreviousEventsTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { IN_LIST, textList } from './values.js';

/** One row per (previous event, referencing event): the reference's array column, normalised. */
@injectable()
export class SqlitePreviousEventsTable implements PreviousEventsTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertPreviousEvent(tx: Tx, previousEventID: string, eventNID: EventNID): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt('INSERT INTO roomserver_previous_events (previous_event_id, event_nid) VALUES (?, ?) ON CONFLICT DO NOTHING')
        .run(previousEventID, eventNID);
    });
  }

  bulkInsertPreviousEvents(tx: Tx, pairs: readonly { previousEventID: string; eventNID: EventNID }[]): Promise<void> {
    return this.conn.run(tx, (c) => {
      const insert = c.stmt('INSERT INTO roomserver_previous_events (previous_event_id, event_nid) VALUES (?, ?) ON CONFLICT DO NOTHING');
      for (const p of pairs) insert.run(p.previousEventID, p.eventNID);
    });
  }

  bulkSelectPreviousEventReferences(tx: Tx, previousEventIDs: readonly string[]): Promise<Map<string, EventNID[]>> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT previous_event_id AS id, event_nid AS nid FROM roomserver_previous_events WHERE previous_event_id ${IN_LIST}`)
        .all(textList(unique(previousEventIDs))) as { id: string; nid: EventNID }[];
      const out = new Map<string, EventNID[]>();
      for (const r of rows) out.set(r.id, [...(out.get(r.id) ?? []), r.nid]);
      return out;
    });
  }

  selectMissingPreviousEvents(tx: Tx, roomNID: RoomNID): Promise<string[]> {
    return this.conn.run(tx, (c) => (c.stmt(`SELECT DISTINCT p.previous_event_id AS id FROM roomserver_events e
      JOIN roomserver_previous_events p ON p.event_nid = e.event_nid
      WHERE e.room_nid = ? AND NOT EXISTS (SELECT 1 FROM roomserver_events x WHERE x.event_id = p.previous_event_id)
      ORDER BY id`).all(roomNID) as { id: string }[]).map((r) => r.id));
  }

  selectPreviousEventExists(tx: Tx, previousEventID: string): Promise<void> {
    return this.conn.run(tx, (c) => {
      if (!c.stmt('SELECT 1 FROM roomserver_previous_events WHERE previous_event_id = ? LIMIT 1').get(previousEventID)) {
        throw notFound('previous event', previousEventID);
      }
    });
  }
}

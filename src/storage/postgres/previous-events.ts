import { inject, injectable } from 'inversify';
import type { EventNID, RoomNID } from '../../types/nids.js';
import { notFound, unique } from '../shared/contracts.js';
import type { PreviousEventsTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';
import { changed } from './values.js';
import { compareCodePoints } from '../../matrix/canonical-json.js';

/** One row per (previous event, referencing event), as on SQLite: set semantics come from the primary key. */
@injectable()
export class PostgresPreviousEventsTable implements PreviousEventsTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async insertPreviousEvent(tx: Tx, previousEventID: string, eventNID: EventNID): Promise<void> {
    await this.conn.query(tx, `INSERT INTO roomserver_previous_events (previous_event_id, event_nid) VALUES ($1, $2)
      ON CONFLICT DO NOTHING`, [previousEventID, eventNID]);
  }

  async bulkInsertPreviousEvents(tx: Tx, pairs: readonly { previousEventID: string; eventNID: EventNID }[]): Promise<void> {
    if (pairs.length === 0) return this.conn.nothing(tx, undefined);
    await this.conn.query(tx, `INSERT INTO roomserver_previous_events (previous_event_id, event_nid) SELECT * FROM unnest($1::text[], $2::bigint[])
      ON CONFLICT DO NOTHING`, [pairs.map((p) => p.previousEventID), pairs.map((p) => p.eventNID)]);
  }

  async bulkSelectPreviousEventReferences(tx: Tx, previousEventIDs: readonly string[]): Promise<Map<string, EventNID[]>> {
    if (previousEventIDs.length === 0) return this.conn.nothing(tx, new Map());
    const r = await this.conn.query<{ id: string; nids: EventNID[] }>(tx, `SELECT previous_event_id AS id, array_agg(event_nid) AS nids
      FROM roomserver_previous_events WHERE previous_event_id = ANY($1::text[]) GROUP BY previous_event_id`, [unique(previousEventIDs)]);
    return new Map(r.rows.map((row) => [row.id, row.nids]));
  }

  async selectMissingPreviousEvents(tx: Tx, roomNID: RoomNID): Promise<string[]> {
    const r = await this.conn.query<{ id: string }>(tx, `SELECT DISTINCT p.previous_event_id AS id FROM roomserver_events e
      JOIN roomserver_previous_events p ON p.event_nid = e.event_nid
      WHERE e.room_nid = $1 AND NOT EXISTS (SELECT 1 FROM roomserver_events x WHERE x.event_id = p.previous_event_id)
      ORDER BY 1`, [roomNID]);
    // Sorted by code point here (the database's collation may differ).
    return r.rows.map((row) => row.id).sort(compareCodePoints);
  }

  async selectPreviousEventExists(tx: Tx, previousEventID: string): Promise<void> {
    const r = await this.conn.query(tx, 'SELECT 1 FROM roomserver_previous_events WHERE previous_event_id = $1 LIMIT 1', [previousEventID]);
    if (changed(r) === 0) throw notFound('previous event', previousEventID);
  }
}

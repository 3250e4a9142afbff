import { inject, injectable } from 'inversify';
import type { EventNID } from '../../types/nids.js';
import { notFound } from '../shared/contracts.js';
import type { PreviousEventsTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';

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

  selectPreviousEventExists(tx: Tx, previousEventID: string): Promise<void> {
    return this.conn.run(tx, (c) => {
      if (!c.stmt('SELECT 1 FROM roomserver_previous_events WHERE previous_event_id = ? LIMIT 1').get(previousEventID)) {
        throw notFound('previous event', previousEventID);
      }
    });
  }
}

import { inject, injectable } from 'inversify';
import type { EventNID } from '../../types/nids.js';
import { unique } from '../shared/contracts.js';
import type { EventJSONPair, EventJSONTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { IN_LIST, nidList } from './values.js';

@injectable()
export class SqliteEventJSONTable implements EventJSONTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertEventJSON(tx: Tx, eventNID: EventNID, eventJSON: string): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt(`INSERT INTO roomserver_event_json (event_nid, event_json) VALUES (?, ?)
        ON CONFLICT (event_nid) DO UPDATE SET event_json = excluded.event_json`).run(eventNID, eventJSON);
    });
  }

  bulkInsertEventJSON(tx: Tx, pairs: readonly EventJSONPair[]): Promise<void> {
    return this.conn.run(tx, (c) => {
      const upsert = c.stmt(`INSERT INTO roomserver_event_json (event_nid, event_json) VALUES (?, ?)
        ON CONFLICT (event_nid) DO UPDATE SET event_json = excluded.event_json`);
      for (const p of pairs) upsert.run(p.eventNID, p.eventJSON);
    });
  }

  bulkSelectEventJSON(tx: Tx, eventNIDs: readonly EventNID[]): Promise<EventJSONPair[]> {
    return this.conn.run(tx, (c) => c.stmt(`SELECT event_nid AS eventNID, event_json AS eventJSON FROM roomserver_event_json
      WHERE event_nid ${IN_LIST} ORDER BY event_nid`).all(nidList(unique(eventNIDs))) as EventJSONPair[]);
  }
}

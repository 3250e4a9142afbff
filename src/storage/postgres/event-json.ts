import { inject, injectable } from 'inversify';
import type { EventNID } from '../../types/nids.js';
import { unique } from '../shared/contracts.js';
import type { EventJSONPair, EventJSONTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

@injectable()
export class PostgresEventJSONTable implements EventJSONTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async insertEventJSON(tx: Tx, eventNID: EventNID, eventJSON: string): Promise<void> {
    await this.conn.query(tx, `INSERT INTO roomserver_event_json (event_nid, event_json) VALUES ($1, $2)
      ON CONFLICT (event_nid) DO UPDATE SET event_json = excluded.event_json`, [eventNID, eventJSON]);
  }

  async bulkInsertEventJSON(tx: Tx, pairs: readonly EventJSONPair[]): Promise<void> {
    // One row per NID (the last given wins, as one upsert after another would leave it): an UPSERT may not touch a
    // row twice in one statement.
    const last = new Map(pairs.map((p) => [p.eventNID, p.eventJSON]));
    if (last.size === 0) return this.conn.nothing(tx, undefined);
    await this.conn.query(tx, `INSERT INTO roomserver_event_json (event_nid, event_json) SELECT * FROM unnest($1::bigint[], $2::text[])
      ON CONFLICT (event_nid) DO UPDATE SET event_json = excluded.event_json`, [[...last.keys()], [...last.values()]]);
  }

  async bulkSelectEventJSON(tx: Tx, eventNIDs: readonly EventNID[]): Promise<EventJSONPair[]> {
    if (eventNIDs.length === 0) return this.conn.nothing(tx, []);
    const r = await this.conn.query<EventJSONPair>(tx, `SELECT event_nid AS "eventNID", event_json AS "eventJSON" FROM roomserver_event_json
      WHERE event_nid = ANY($1::bigint[]) ORDER BY event_nid`, [unique(eventNIDs)]);
    return r.rows;
  }
}

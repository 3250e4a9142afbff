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

  async bulkSelectEventJSON(tx: Tx, eventNIDs: readonly EventNID[]): Promise<EventJSONPair[]> {
    if (eventNIDs.length === 0) return this.conn.nothing(tx, []);
    const r = await this.conn.query<EventJSONPair>(tx, `SELECT event_nid AS "eventNID", event_json AS "eventJSON" FROM roomserver_event_json
      WHERE event_nid = ANY($1::bigint[]) ORDER BY event_nid`, [unique(eventNIDs)]);
    return r.rows;
  }
}

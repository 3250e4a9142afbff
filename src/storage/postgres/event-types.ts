import { inject, injectable } from 'inversify';
import type { EventTypeNID } from '../../types/nids.js';
import type { EventTypesTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';
import { PostgresStringNIDMap } from './string-nid-map.js';

@injectable()
export class PostgresEventTypesTable implements EventTypesTable {
  private readonly map: PostgresStringNIDMap<EventTypeNID>;

  constructor(@inject(POSTGRES_CONNECTION) conn: PostgresConnection) {
    this.map = new PostgresStringNIDMap(conn, 'event type', 'roomserver_event_types', 'event_type_nid', 'event_type', 'event_type_hash');
  }

  insertEventTypeNID(tx: Tx, eventType: string) { return this.map.insert(tx, eventType); }
  selectEventTypeNID(tx: Tx, eventType: string) { return this.map.select(tx, eventType); }
  bulkSelectEventTypeNID(tx: Tx, eventTypes: readonly string[]) { return this.map.bulkSelectNIDs(tx, eventTypes); }
  assignEventTypeNIDs(tx: Tx, eventTypes: readonly string[]) { return this.map.assign(tx, eventTypes); }
  bulkSelectEventType(tx: Tx, nids: readonly EventTypeNID[]) { return this.map.bulkSelectStrings(tx, nids); }
}

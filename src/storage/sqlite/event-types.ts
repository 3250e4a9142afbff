import { inject, injectable } from 'inversify';
import type { EventTypeNID } from '../../types/nids.js';
import type { EventTypesTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { SqliteStringNIDMap } from './string-nid-map.js';

@injectable()
export class SqliteEventTypesTable implements EventTypesTable {
  private readonly map: SqliteStringNIDMap<EventTypeNID>;

  constructor(@inject(SQLITE_CONNECTION) conn: SqliteConnection) {
    this.map = new SqliteStringNIDMap(conn, 'event type', 'roomserver_event_types', 'event_type_nid', 'event_type');
  }

  insertEventTypeNID(tx: Tx, eventType: string) { return this.map.insert(tx, eventType); }
  selectEventTypeNID(tx: Tx, eventType: string) { return this.map.select(tx, eventType); }
  bulkSelectEventTypeNID(tx: Tx, eventTypes: readonly string[]) { return this.map.bulkSelectNIDs(tx, eventTypes); }
  assignEventTypeNIDs(tx: Tx, eventTypes: readonly string[]) { return this.map.assign(tx, eventTypes); }
  bulkSelectEventType(tx: Tx, nids: readonly EventTypeNID[]) { return this.map.bulkSelectStrings(tx, nids); }
}

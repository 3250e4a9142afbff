import { inject, injectable } from 'inversify';
import type { EventTypeNID } from '../../types/nids.js';
import type { EventTypesTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { CosmosStringNIDMap } from './string-nid-map.js';

@injectable()
export class CosmosEventTypesTable implements EventTypesTable {
  readonly map: CosmosStringNIDMap<EventTypeNID>;

  constructor(@inject(COSMOS_CONNECTION) conn: CosmosConnection) {
    this.map = new CosmosStringNIDMap(conn, 'event type', 'et', 'eventType');
  }

  async insertEventTypeNID(_tx: Tx, eventType: string) { return this.map.insert(eventType); }
  async selectEventTypeNID(_tx: Tx, eventType: string) { return this.map.select(eventType); }
  async bulkSelectEventTypeNID(_tx: Tx, eventTypes: readonly string[]) { return this.map.bulkSelectNIDs(eventTypes); }
  async assignEventTypeNIDs(_tx: Tx, eventTypes: readonly string[]) { return this.map.assign(eventTypes); }
  async bulkSelectEventType(_tx: Tx, nids: readonly EventTypeNID[]) { return this.map.bulkSelectStrings(nids); }
}

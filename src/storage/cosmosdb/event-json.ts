import { inject, injectable } from 'inversify';
import type { EventNID } from '../../types/nids.js';
import { unique } from '../shared/contracts.js';
import type { EventJSONPair, EventJSONTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';

/** event_json on Cosmos DB: document `json` in the event's own partition `ev|<NID>`; the text is not indexed. */
@injectable()
export class CosmosEventJSONTable implements EventJSONTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  async insertEventJSON(_tx: Tx, eventNID: EventNID, eventJSON: string): Promise<void> {
    await this.conn.requests.upsert('eventJSON.insert', { id: 'json', pk: this.conn.pk('ev', eventNID), k: 'event_json', nid: eventNID, json: eventJSON });
  }

  async bulkInsertEventJSON(_tx: Tx, pairs: readonly EventJSONPair[]): Promise<void> {
    if (pairs.length === 0) return;
    await this.conn.requests.upsertMany('eventJSON.insert', pairs.map((p) => ({
      id: 'json', pk: this.conn.pk('ev', p.eventNID), k: 'event_json', nid: p.eventNID, json: p.eventJSON,
    })));
  }

  async bulkSelectEventJSON(_tx: Tx, eventNIDs: readonly EventNID[]): Promise<EventJSONPair[]> {
    const docs = await this.conn.requests.readMany<{ nid: EventNID; json: string }>('eventJSON.select',
      unique(eventNIDs).map((nid) => ({ id: 'json', pk: this.conn.pk('ev', nid) })));
    return docs.filter((d) => d !== undefined).map((d) => ({ eventNID: d.nid, eventJSON: d.json })).sort((a, b) => a.eventNID - b.eventNID);
  }
}

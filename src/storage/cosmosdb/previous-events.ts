import { inject, injectable } from 'inversify';
import type { EventNID } from '../../types/nids.js';
import { notFound } from '../shared/contracts.js';
import type { PreviousEventsTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { addToSetDocument, readSetDocument } from './set-document.js';

/** previous_events on Cosmos DB: one set document per previous event ID (`pe|<ID>`), holding the NIDs naming it. */
@injectable()
export class CosmosPreviousEventsTable implements PreviousEventsTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  async insertPreviousEvent(_tx: Tx, previousEventID: string, eventNID: EventNID): Promise<void> {
    await addToSetDocument(this.conn, 'previousEvents.insert', 'pe', previousEventID, eventNID);
  }

  async selectPreviousEventExists(_tx: Tx, previousEventID: string): Promise<void> {
    if (!(await readSetDocument(this.conn, 'previousEvents.exists', 'pe', previousEventID))) throw notFound('previous event', previousEventID);
  }
}

import { inject, injectable } from 'inversify';
import type { EventNID, RoomNID } from '../../types/nids.js';
import { compareCodePoints } from '../../matrix/canonical-json.js';
import { notFound, unique } from '../shared/contracts.js';
import type { PreviousEventsTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { addToSetDocument, readSetDocument, readSetDocuments } from './set-document.js';

/** previous_events on Cosmos DB: one set document per previous event ID (`pe|<ID>`), holding the NIDs naming it. */
@injectable()
export class CosmosPreviousEventsTable implements PreviousEventsTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  async insertPreviousEvent(_tx: Tx, previousEventID: string, eventNID: EventNID): Promise<void> {
    await addToSetDocument(this.conn, 'previousEvents.insert', 'pe', previousEventID, eventNID);
  }

  /** New sets in one bulk create (most are: an event is usually named by one event); the others one by one. */
  async bulkInsertPreviousEvents(tx: Tx, pairs: readonly { previousEventID: string; eventNID: EventNID }[]): Promise<void> {
    const byID = new Map<string, EventNID[]>();
    for (const p of pairs) {
      const nids = byID.get(p.previousEventID) ?? [];
      if (!nids.includes(p.eventNID)) nids.push(p.eventNID);
      byID.set(p.previousEventID, nids);
    }
    const sets = [...byID];
    if (sets.length === 0) return;
    const created = await this.conn.requests.createMany('previousEvents.insert',
      sets.map(([id, nids]) => ({ id: 'pe', pk: this.conn.pk('pe', id), k: 'pe', key: id, values: nids })));
    for (const [i, [id, nids]] of sets.entries()) {
      if (!created[i]) for (const nid of nids) await this.insertPreviousEvent(tx, id, nid);
    }
  }

  async bulkSelectPreviousEventReferences(_tx: Tx, previousEventIDs: readonly string[]): Promise<Map<string, EventNID[]>> {
    const out = new Map<string, EventNID[]>();
    const ids = unique(previousEventIDs);
    const docs = await readSetDocuments(this.conn, 'previousEvents.references', 'pe', ids);
    ids.forEach((id, i) => {
      const nids = docs[i];
      if (nids && nids.length > 0) out.set(id, nids as EventNID[]);
    });
    return out;
  }

  /**
   * Two cross-partition queries (the room's event rows, then the tenant's reference sets) and a bulk read of the
   * named events' locators: events and references live in partitions of their own, keyed by NID and by ID. A rare
   * path (backfill), listed in the README's access patterns.
   */
  async selectMissingPreviousEvents(_tx: Tx, roomNID: RoomNID): Promise<string[]> {
    const r = this.conn.requests;
    const tenant = this.conn.tenantPrefix;
    const rows = await r.crossPartitionQuery<{ nid: number }>('previousEvents.roomEvents', tenant,
      "SELECT c.nid FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'event' AND c.room = @room", [{ name: '@room', value: roomNID }]);
    const inRoom = new Set(rows.map((x) => x.nid));
    const sets = await r.crossPartitionQuery<{ key: string; values: number[] }>('previousEvents.missing', tenant,
      "SELECT c.key, c['values'] FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'pe'");
    const named = [...new Set(sets.filter((d) => d.values.some((n) => inRoom.has(n))).map((d) => d.key))];
    const held = await r.readMany<{ eventID: string }>('previousEvents.missing', named.map((id) => ({ id: 'eid', pk: this.conn.pk('eid', id) })));
    return named.filter((_, i) => held[i] === undefined).sort(compareCodePoints);
  }

  async selectPreviousEventExists(_tx: Tx, previousEventID: string): Promise<void> {
    if (!(await readSetDocument(this.conn, 'previousEvents.exists', 'pe', previousEventID))) throw notFound('previous event', previousEventID);
  }
}

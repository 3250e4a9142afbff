import { inject, injectable } from 'inversify';
import type { EventNID, RoomNID } from '../../types/nids.js';
import { compareCodePoints } from '../../matrix/canonical-json.js';
import { notFound, unique } from '../shared/contracts.js';
import type { PreviousEventsTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { CosmosRoomEvents, PREV_REFERENCE_KIND, ROOM_EVENT_KIND } from './room-events.js';
import { addToSetDocument, readSetDocuments } from './set-document.js';

/**
 * previous_events on Cosmos DB, in three homes. The input path commits the references its events make with them, in
 * their room's partition, so a reference counts exactly when the event making it is stored: in the new event's own
 * document where the event it names is stored (RoomEventDoc.prev), else in a document of the event named
 * (PrevReferenceDoc; see CosmosRoomCommit). The calls here, outside it (the table's own writes: events stored one
 * piece at a time), add to a set document per referenced ID (`pe|<ID>`, also where layouts before 4 kept every
 * reference). A lookup answers the union of the three: in the room's partition where the caller gives the room (the
 * input path does, for its events), else where the event's locator says it is.
 */
@injectable()
export class CosmosPreviousEventsTable implements PreviousEventsTable {
  constructor(
    @inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection,
    @inject(CosmosRoomEvents) private readonly roomEvents: CosmosRoomEvents,
  ) {}

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

  async bulkSelectPreviousEventReferences(_tx: Tx, previousEventIDs: readonly string[], roomOf?: ReadonlyMap<string, RoomNID>): Promise<Map<string, EventNID[]>> {
    const ids = unique(previousEventIDs);
    // The set documents, the rooms' documents where the room is given, and the locators of the others go out
    // together (one bulk request); the rooms' documents of those the locators place, after.
    const given = ids.flatMap((id) => {
      const room = roomOf?.get(id);
      return room === undefined ? [] : [{ room, eventID: id }];
    });
    const [sets, located, committedGiven, storedGiven] = await Promise.all([
      readSetDocuments(this.conn, 'previousEvents.references', 'pe', ids),
      this.roomEvents.roomsOf(ids.filter((id) => roomOf?.get(id) === undefined)),
      this.roomEvents.readReferences(given),
      this.roomEvents.read(given),
    ]);
    const placed = [...located].map(([eventID, room]) => ({ room, eventID }));
    const pairs = [...given, ...placed];
    const [committedPlaced, storedPlaced] = await Promise.all([this.roomEvents.readReferences(placed), this.roomEvents.read(placed)]);
    const committed = [...committedGiven, ...committedPlaced];
    // A stored event is also named in the documents of the events stored after it (RoomEventDoc.prev): asked of its
    // room (a query per event, on the rare paths that ask about stored events: a duplicate, one accepted late).
    const stored = [...storedGiven, ...storedPlaced];
    const byRoom = new Map<RoomNID, string[]>();
    pairs.forEach((p, i) => { if (stored[i]) byRoom.set(p.room, [...(byRoom.get(p.room) ?? []), p.eventID]); });
    const naming = await Promise.all([...byRoom].map(([room, list]) => this.roomEvents.namingEvents(room, list)));
    const out = new Map<string, EventNID[]>();
    const add = (id: string, nids: readonly EventNID[]) => {
      if (nids.length > 0) out.set(id, [...new Set([...(out.get(id) ?? []), ...nids])]);
    };
    ids.forEach((id, i) => add(id, (sets[i] ?? []) as EventNID[]));
    pairs.forEach((p, i) => add(p.eventID, committed[i]!));
    for (const found of naming) for (const [id, nids] of found) add(id, nids);
    return out;
  }

  /**
   * The room's references and stored events with the prev events they name (two single-partition queries), with the
   * set documents naming its
   * events (two cross-partition queries, for references made outside the input path), minus what is stored. A rare
   * path (backfill).
   */
  async selectMissingPreviousEvents(_tx: Tx, roomNID: RoomNID): Promise<string[]> {
    const r = this.conn.requests;
    const pk = this.conn.pk('room', roomNID);
    const tenant = this.conn.tenantPrefix;
    const [refs, held, rows, sets] = await Promise.all([
      r.query<{ key: string }>('previousEvents.missing', pk, `SELECT c.key FROM c WHERE c.pk = @pk AND c.k = '${PREV_REFERENCE_KIND}'`),
      r.query<{ eventID: string; prev?: string[] }>('previousEvents.missing', pk, `SELECT c.eventID, c.prev FROM c WHERE c.pk = @pk AND c.k = '${ROOM_EVENT_KIND}'`),
      r.crossPartitionQuery<{ nid: number }>('previousEvents.roomEvents', tenant,
        "SELECT c.nid FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'event' AND c.room = @room", [{ name: '@room', value: roomNID }]),
      r.crossPartitionQuery<{ key: string; values: number[] }>('previousEvents.missing', tenant,
        "SELECT c.key, c['values'] FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'pe' AND NOT IS_DEFINED(c.room)"),
    ]);
    const inRoom = new Set(rows.map((x) => x.nid));
    const named = new Set([
      ...refs.map((x) => x.key), ...held.flatMap((h) => h.prev ?? []), ...sets.filter((d) => d.values.some((n) => inRoom.has(n))).map((d) => d.key),
    ]);
    const stored = new Set(held.map((h) => h.eventID));
    // An event stored in another room (or under an ID this room's partition does not hold) is found by its locator.
    const elsewhere = await this.roomEvents.locateStored([...named].filter((id) => !stored.has(id)));
    return [...named].filter((id) => !stored.has(id) && !elsewhere.has(id)).sort(compareCodePoints);
  }

  async selectPreviousEventExists(tx: Tx, previousEventID: string): Promise<void> {
    if (!(await this.bulkSelectPreviousEventReferences(tx, [previousEventID])).has(previousEventID)) throw notFound('previous event', previousEventID);
  }
}

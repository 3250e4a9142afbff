import { inject, injectable } from 'inversify';
import { CorruptionError } from '../../types/errors.js';
import type { EventNID, EventStateKeyNID, EventTypeNID, RoomNID, StateSnapshotNID } from '../../types/nids.js';
import { compareEntries, type StateAtEvent, type StateAtEventAndReference, type StateEntry, type StateKeyTuple } from '../../types/state.js';
import { checkStateAt, duplicate, missingOf, notFound, unique } from '../shared/contracts.js';
import type { EventRow, EventsTable, StoredEventInfo, StoredEventRow, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { Lru } from './lru.js';

/** The event row, in the event's own partition `ev|<NID>` (beside its JSON). */
interface RowDoc {
  nid: EventNID;
  room: RoomNID;
  type: EventTypeNID;
  key: EventStateKeyNID;
  eventID: string;
  auth: EventNID[];
  depth: number;
  rejected: boolean;
  snapshot: StateSnapshotNID;
  sent: boolean;
}

/** The event ID's locator, in partition `eid|<event ID>`: cached once read (see the class on what may change). */
interface LocatorDoc {
  eventID: string;
  nid: EventNID;
  room: RoomNID;
  type: EventTypeNID;
  key: EventStateKeyNID;
  rejected: boolean;
  /**
   * The state before the event, as the row says it (absent in locators written before it was kept here, or by a
   * dump; 0 for an event stored without state): what a writer looking events up by ID needs of the row.
   */
  snapshot?: StateSnapshotNID;
}

const locatorOf = (row: StoredEventRow): LocatorDoc => ({
  eventID: row.eventID, nid: row.eventNID, room: row.roomNID, type: row.eventTypeNID, key: row.eventStateKeyNID, rejected: row.isRejected,
  snapshot: row.stateSnapshotNID,
});

/** A locator that says all a lookup by ID answers: one with the state before its event (see bulkSelectEventsByID). */
const complete = (l: LocatorDoc) => (l.snapshot ?? 0) > 0;

const rowDoc = (row: StoredEventRow): RowDoc => ({
  nid: row.eventNID, room: row.roomNID, type: row.eventTypeNID, key: row.eventStateKeyNID, eventID: row.eventID,
  auth: [...row.authEventNIDs], depth: row.depth, rejected: row.isRejected, snapshot: row.stateSnapshotNID, sent: row.sentToOutput ?? false,
});

const entryOf = (d: { type: EventTypeNID; key: EventStateKeyNID; nid: EventNID }): StateEntry =>
  ({ eventTypeNID: d.type, eventStateKeyNID: d.key, eventNID: d.nid });

/**
 * events on Cosmos DB. Each event is its own logical partition (`ev|<NID>`: the row and the JSON), and its event
 * ID another (`eid|<ID>`: the locator), so lookups both ways are point reads and no room, however large, piles
 * its events into one logical partition. Creating the locator is the commit point: the row is written first, so a
 * reader that finds the locator always finds the row.
 *
 * The locator repeats what a lookup by ID answers, the state before the event included, so that a writer finding
 * the events it names (usually cached locators) reads no row. Each change is made to the row first and to the
 * locator after (rejected cleared, state set), so a crash between leaves the locator behind the row: a locator
 * without state (0) is completed from the row, and the retry of the interrupted call writes both again.
 */
@injectable()
export class CosmosEventsTable implements EventsTable {
  private readonly locators = new Lru<string, LocatorDoc>(100_000);

  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  /** Forgets the cached locators of these event IDs: their events were deleted (a purge, through the dump). */
  forgetEvents(eventIDs: readonly string[]): void {
    for (const id of eventIDs) this.locators.delete(id);
  }

  private rowRef(nid: number) {
    return { id: 'row', pk: this.conn.pk('ev', nid) };
  }

  private locatorRef(eventID: string) {
    return { id: 'eid', pk: this.conn.pk('eid', eventID) };
  }

  async reserveEventNID(_tx: Tx): Promise<EventNID> {
    return (await this.conn.sequence('event').nextValue()) as EventNID;
  }

  async insertEvent(_tx: Tx, row: EventRow): Promise<void> {
    await this.insertRow({ ...row, stateSnapshotNID: 0 as StateSnapshotNID });
  }

  async reserveEventNIDs(_tx: Tx, count: number): Promise<EventNID[]> {
    const out: EventNID[] = [];
    for (let i = 0; i < count; i++) out.push((await this.conn.sequence('event').nextValue()) as EventNID);
    return out;
  }

  async reserveEventNIDsFor(tx: Tx, eventIDs: readonly string[]): Promise<EventNID[]> {
    const stored = await this.bulkSelectEventsByID(tx, eventIDs);
    const out: EventNID[] = [];
    for (const _ of unique(eventIDs).filter((id) => !stored.has(id))) out.push((await this.conn.sequence('event').nextValue()) as EventNID);
    return out;
  }

  /**
   * Rows prepared ahead (see prepareEvents), by NID: their event IDs. NIDs are fresh per call, so an entry is never
   * stale; one a failed call leaves behind is never asked for again, and the bound drops it.
   */
  private readonly prepared = new Lru<number, string>(10_000);

  /**
   * The row documents, in bulk (invisible until their locators exist): a row found under its NID already must be
   * this event's (a retried request whose answer was lost), else the NID is taken and that is corruption.
   */
  async prepareEvents(_tx: Tx, rows: readonly StoredEventRow[]): Promise<void> {
    await this.createRows(rows);
    for (const row of rows) this.prepared.set(row.eventNID, row.eventID);
  }

  private async createRows(rows: readonly StoredEventRow[]): Promise<void> {
    if (rows.length === 0) return;
    const created = await this.conn.requests.createMany('events.insert', rows.map((row) => ({ ...this.rowRef(row.eventNID), k: 'event', ...rowDoc(row) })));
    const taken = rows.filter((_, i) => !created[i]);
    if (taken.length > 0) {
      // A row document under our fresh NID already: ours, from a retried request whose answer was lost.
      const docs = await this.conn.requests.readMany<RowDoc>('events.readRow', taken.map((row) => this.rowRef(row.eventNID)));
      taken.forEach((row, i) => {
        if (docs[i]?.eventID !== row.eventID) throw new CorruptionError(`event NID ${row.eventNID} is already used by another event`);
      });
    }
  }

  /**
   * The rows in bulk (those not prepared ahead), then their locators in bulk: each locator is its event's commit
   * point (see insertRow), so a crash between the two leaves rows nobody finds. A locator that loses to another
   * writer's (another event under that ID) makes the call a ConflictError, after its row is removed; the locators
   * created before it stay.
   */
  async bulkInsertEvents(_tx: Tx, rows: readonly StoredEventRow[]): Promise<void> {
    const ids = new Set<string>();
    for (const row of rows) {
      if (ids.has(row.eventID)) throw duplicate('event', row.eventID);
      ids.add(row.eventID);
    }
    if (rows.length === 0) return;
    const r = this.conn.requests;
    const ready = rows.filter((row) => this.prepared.get(row.eventNID) === row.eventID);
    for (const row of ready) this.prepared.delete(row.eventNID);
    await this.createRows(rows.filter((row) => !ready.includes(row)));
    const locators = rows.map(locatorOf);
    const placed = await r.createMany('events.insert', locators.map((l) => ({ ...this.locatorRef(l.eventID), k: 'event_id', ...l })));
    const contested = locators.filter((_, i) => !placed[i]);
    const winners = contested.length > 0 ? await r.readMany<LocatorDoc>('events.readLocator', contested.map((l) => this.locatorRef(l.eventID))) : [];
    const lost = contested.filter((l, i) => winners[i]?.nid !== l.nid);
    for (const l of locators) if (!lost.includes(l)) this.locators.set(l.eventID, l);
    if (lost.length > 0) {
      // Lost the race to another writer: its events stand; ours were never visible, so remove their rows.
      await r.deleteMany('events.insert', lost.map((l) => this.rowRef(l.nid)));
      throw duplicate('event', lost[0]!.eventID);
    }
  }

  /** From the locators alone where they hold the state before their events (see the class), else with the rows. */
  async bulkSelectEventsByID(_tx: Tx, eventIDs: readonly string[]) {
    const locs = await this.locatorsFor(eventIDs);
    const rows = new Map((await this.rows(locs.filter((l) => !complete(l)).map((l) => l.nid))).map((r) => [r.nid as number, r]));
    const out = new Map<string, StoredEventInfo>();
    for (const l of locs) {
      const row = complete(l) ? { nid: l.nid, room: l.room, snapshot: l.snapshot!, type: l.type, key: l.key, rejected: l.rejected } : rows.get(l.nid);
      if (row) {
        out.set(l.eventID, {
          eventNID: row.nid, roomNID: row.room, stateSnapshotNID: row.snapshot, eventTypeNID: row.type, eventStateKeyNID: row.key, isRejected: row.rejected,
        });
      }
    }
    return out;
  }

  /** The row first, then the locator (which readers cache): a crash between them leaves the row saying accepted, which a retry repeats. */
  async clearEventRejected(_tx: Tx, eventNID: EventNID, eventID: string): Promise<void> {
    const row = this.rowRef(eventNID);
    await this.conn.requests.patch('events.clearRejected', row.id, row.pk, [{ op: 'set', path: '/rejected', value: false }]);
    const loc = this.locatorRef(eventID);
    await this.conn.requests.patch('events.clearRejected', loc.id, loc.pk, [{ op: 'set', path: '/rejected', value: false }]);
    this.locators.delete(eventID);
  }

  private async insertRow(row: StoredEventRow): Promise<void> {
    const r = this.conn.requests;
    const doc = rowDoc(row);
    if (!(await r.create('events.insert', { ...this.rowRef(row.eventNID), k: 'event', ...doc }))) {
      const existing = await this.row(row.eventNID);
      if (existing?.eventID !== row.eventID) throw new CorruptionError(`event NID ${row.eventNID} is already used by another event`);
    }
    const locator = locatorOf(row);
    if (!(await r.create('events.insert', { ...this.locatorRef(row.eventID), k: 'event_id', ...locator }))) {
      const winner = await this.locator(row.eventID);
      if (winner?.nid !== row.eventNID) {
        // Lost the race to another writer: its event stands; ours was never visible, so remove the row.
        const orphan = this.rowRef(row.eventNID);
        await r.delete('events.insert', orphan.id, orphan.pk);
        throw duplicate('event', row.eventID);
      }
    }
    this.locators.set(row.eventID, locator);
  }

  private async row(nid: number): Promise<RowDoc | undefined> {
    const { id, pk } = this.rowRef(nid);
    return this.conn.requests.read<RowDoc>('events.readRow', id, pk);
  }

  private async locator(eventID: string): Promise<LocatorDoc | undefined> {
    const cached = this.locators.get(eventID);
    if (cached) return cached;
    const { id, pk } = this.locatorRef(eventID);
    const doc = await this.conn.requests.read<LocatorDoc>('events.readLocator', id, pk);
    if (doc) this.locators.set(eventID, doc);
    return doc;
  }

  private async rows(nids: readonly number[]): Promise<RowDoc[]> {
    const docs = await this.conn.requests.readMany<RowDoc>('events.readRow', unique(nids).map((n) => this.rowRef(n)));
    return docs.filter((d) => d !== undefined);
  }

  /** Locators from the cache, the others in bulk. */
  private async locatorsFor(ids: readonly string[]): Promise<LocatorDoc[]> {
    const out: LocatorDoc[] = [];
    const missing: string[] = [];
    for (const id of unique(ids)) {
      const cached = this.locators.get(id);
      if (cached) out.push(cached);
      else missing.push(id);
    }
    if (missing.length > 0) {
      for (const doc of await this.conn.requests.readMany<LocatorDoc>('events.readLocator', missing.map((id) => this.locatorRef(id)))) {
        if (!doc) continue;
        this.locators.set(doc.eventID, doc);
        out.push(doc);
      }
    }
    return out;
  }

  async selectEvent(_tx: Tx, eventID: string) {
    const loc = await this.locator(eventID);
    if (!loc) throw notFound('event', eventID);
    const row = await this.row(loc.nid);
    if (!row) throw new CorruptionError(`event ${eventID} has a locator but no row`);
    return { eventNID: row.nid, roomNID: row.room, stateSnapshotNID: row.snapshot };
  }

  async bulkSelectStateEventByID(_tx: Tx, eventIDs: readonly string[], excludeRejected = false): Promise<StateEntry[]> {
    const found = await this.locatorsFor(eventIDs);
    const ids = new Set(found.map((l) => l.eventID));
    const err = missingOf('event', 'state events by ID', eventIDs, (id) => ids.has(id));
    if (err) throw err;
    return found.filter((l) => !excludeRejected || !l.rejected).map(entryOf).sort(compareEntries);
  }

  async bulkSelectStateEventByNID(_tx: Tx, eventNIDs: readonly EventNID[], tuples: readonly StateKeyTuple[]): Promise<StateEntry[]> {
    const types = new Set(tuples.map((t) => t.eventTypeNID as number));
    const keys = new Set(tuples.map((t) => t.eventStateKeyNID as number));
    return (await this.rows(eventNIDs))
      .filter((r) => tuples.length === 0 || (types.has(r.type) && keys.has(r.key)))
      .map(entryOf).sort(compareEntries);
  }

  async bulkSelectStateAtEventByID(_tx: Tx, eventIDs: readonly string[]): Promise<StateAtEvent[]> {
    const locs = await this.locatorsFor(eventIDs);
    const rows = await this.rows(locs.map((l) => l.nid));
    const checked = checkStateAt(eventIDs, rows.map((r) => ({ ...r, eventTypeNID: r.type, eventStateKeyNID: r.key, beforeStateSnapshotNID: r.snapshot })));
    return checked.map((r) => ({ ...entryOf(r), beforeStateSnapshotNID: r.snapshot, isRejected: r.rejected }));
  }

  /** The row, then its locator (see the class): the locator is found through the row's event ID. */
  async updateEventState(_tx: Tx, eventNID: EventNID, stateSnapshotNID: StateSnapshotNID): Promise<void> {
    const { id, pk } = this.rowRef(eventNID);
    const row = await this.conn.requests.patch<RowDoc>('events.updateState', id, pk, [{ op: 'set', path: '/snapshot', value: stateSnapshotNID }]);
    if (!row) return;
    const loc = this.locatorRef(row.eventID);
    this.locators.delete(row.eventID);
    // Only the event's own locator: one naming another NID is another writer's, which won the ID.
    await this.conn.requests.patchWhen<LocatorDoc>('events.updateState', loc.id, loc.pk, (doc) => doc.nid === eventNID,
      () => [{ op: 'set', path: '/snapshot', value: stateSnapshotNID }]);
  }

  async selectEventSentToOutput(_tx: Tx, eventNID: EventNID): Promise<boolean> {
    const row = await this.row(eventNID);
    if (!row) throw notFound('event NID', eventNID);
    return row.sent;
  }

  async updateEventSentToOutput(_tx: Tx, eventNID: EventNID): Promise<void> {
    const { id, pk } = this.rowRef(eventNID);
    await this.conn.requests.patch('events.updateSent', id, pk, [{ op: 'set', path: '/sent', value: true }]);
  }

  async selectEventID(_tx: Tx, eventNID: EventNID): Promise<string> {
    const row = await this.row(eventNID);
    if (!row) throw notFound('event NID', eventNID);
    return row.eventID;
  }

  async bulkSelectStateAtEventAndReference(_tx: Tx, eventNIDs: readonly EventNID[]): Promise<StateAtEventAndReference[]> {
    const rows = await this.rows(eventNIDs);
    const found = new Set(rows.map((r) => r.nid as number));
    const err = missingOf('event', 'events by NID', eventNIDs, (n) => found.has(n));
    if (err) throw err;
    return rows.map((r) => ({ ...entryOf(r), beforeStateSnapshotNID: r.snapshot, isRejected: r.rejected, eventID: r.eventID }));
  }

  async bulkSelectEventID(_tx: Tx, eventNIDs: readonly EventNID[]): Promise<Map<EventNID, string>> {
    const map = new Map((await this.rows(eventNIDs)).map((r) => [r.nid, r.eventID]));
    const err = missingOf('event', 'event IDs by NID', eventNIDs, (n) => map.has(n));
    if (err) throw err;
    return map;
  }

  async bulkSelectEventNID(_tx: Tx, eventIDs: readonly string[]): Promise<Map<string, EventNID>> {
    return new Map((await this.locatorsFor(eventIDs)).map((l) => [l.eventID, l.nid]));
  }

  async selectMaxEventDepth(_tx: Tx, eventNIDs: readonly EventNID[]): Promise<number> {
    const rows = await this.rows(eventNIDs);
    return rows.length === 0 ? 0 : Math.max(...rows.map((r) => r.depth)) + 1;
  }

  async bulkSelectEventIDsAndRooms(_tx: Tx, eventNIDs: readonly EventNID[]): Promise<Map<EventNID, { eventID: string; roomNID: RoomNID }>> {
    return new Map((await this.rows(eventNIDs)).map((r) => [r.nid, { eventID: r.eventID, roomNID: r.room }]));
  }

  /** A cross-partition query (events live in partitions of their own): a rare path, such as loading server ACLs. */
  async selectRoomsWithEventTypeNID(_tx: Tx, eventTypeNID: EventTypeNID): Promise<RoomNID[]> {
    const rows = await this.conn.requests.crossPartitionQuery<{ room: RoomNID }>('events.roomsWithType', this.conn.tenantPrefix,
      "SELECT c.room FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'event' AND c.type = @type", [{ name: '@type', value: eventTypeNID }]);
    return [...new Set(rows.map((r) => r.room))].sort((a, b) => a - b);
  }

  async selectRoomNIDsForEventNIDs(_tx: Tx, eventNIDs: readonly EventNID[]): Promise<Map<EventNID, RoomNID>> {
    return new Map((await this.rows(eventNIDs)).map((r) => [r.nid, r.room]));
  }
}

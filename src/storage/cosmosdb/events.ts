import { inject, injectable } from 'inversify';
import type { PatchOperation } from '@azure/cosmos';
import { ConcurrentUpdateError, CorruptionError } from '../../types/errors.js';
import type { EventNID, EventStateKeyNID, EventTypeNID, RoomNID, StateSnapshotNID } from '../../types/nids.js';
import { compareEntries, type StateAtEvent, type StateAtEventAndReference, type StateEntry, type StateKeyTuple } from '../../types/state.js';
import { checkStateAt, duplicate, missingOf, notFound, unique } from '../shared/contracts.js';
import type { EventRow, EventsTable, StoredEventInfo, StoredEventRow, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { CosmosRoomEvents, ROOM_EVENT_KIND, type RoomEventDoc } from './room-events.js';

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

/**
 * The event ID's locator, in partition `eid|<event ID>`: which room holds the event (and the NID its writer gave it).
 * Created before the room's commit, so it says nothing of whether the event is stored: the room's RoomEventDoc does.
 * (Locators of older layouts carry more fields, which are not read.)
 */
interface LocatorDoc {
  eventID: string;
  nid: EventNID;
  room: RoomNID;
}

const rowDoc = (row: StoredEventRow): RowDoc => ({
  nid: row.eventNID, room: row.roomNID, type: row.eventTypeNID, key: row.eventStateKeyNID, eventID: row.eventID,
  auth: [...row.authEventNIDs], depth: row.depth, rejected: row.isRejected, snapshot: row.stateSnapshotNID, sent: row.sentToOutput ?? false,
});

const entryOf = (d: { type: EventTypeNID; key: EventStateKeyNID; nid: EventNID }): StateEntry =>
  ({ eventTypeNID: d.type, eventStateKeyNID: d.key, eventNID: d.nid });

/** What a call wrote ahead of its plan (CosmosRoomCommit.writeAhead), by event NID: not to write again, or to replace. */
export interface WrittenAhead {
  readonly rows: ReadonlySet<number>;
  readonly locators: ReadonlySet<number>;
  readonly json: ReadonlySet<number>;
  readonly rewrite: ReadonlySet<number>;
}

/** What a room holds of a new event (see RoomEventDoc). */
export const roomEventOf = (row: StoredEventRow): RoomEventDoc => ({
  eventID: row.eventID, nid: row.eventNID, room: row.roomNID, type: row.eventTypeNID, key: row.eventStateKeyNID,
  rejected: row.isRejected, snapshot: row.stateSnapshotNID,
});

/**
 * events on Cosmos DB. Each event's row and JSON form their own logical partition (`ev|<NID>`), so a lookup by NID is
 * a point read and no room, however large, piles its events' bodies into one logical partition. Its event ID has a
 * locator (`eid|<ID>`) naming its room, and the room holds the event (RoomEventDoc, in `room|<NID>`): a lookup by ID
 * reads the locator (kept once found: it never changes) and then the room's document. The room's document is
 * written by the room's commit, so an event is found by its ID exactly when it is stored; its row, JSON and locator
 * are written before, where nobody finds them until then (NIDs are only learnt from what is stored).
 *
 * A stored event's rejected flag and state before change row first, then the room's document, each a patch of
 * those fields alone: a crash between leaves the room's document behind the row, and the retry writes both again.
 */
@injectable()
export class CosmosEventsTable implements EventsTable {
  constructor(
    @inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection,
    @inject(CosmosRoomEvents) private readonly roomEvents: CosmosRoomEvents,
  ) {}

  /** Forgets what is kept of these events: they were deleted (a purge, through the dump). */
  forgetEvents(eventIDs: readonly string[]): void {
    this.roomEvents.forgetEvents(eventIDs);
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

  async insertEvent(tx: Tx, row: EventRow): Promise<void> {
    await this.bulkInsertEvents(tx, [{ ...row, stateSnapshotNID: 0 as StateSnapshotNID }]);
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
   * Everything of new events but the rooms' documents, in bulk: rows and locators (nobody finds them yet). A row
   * found under its NID already must be this event's (a retried request whose answer was lost), else the NID is
   * taken and that is corruption. A locator naming another room is another writer's: if that room holds the event,
   * the event is stored there (a ConflictError); if not, it was never stored and the locator is taken over.
   */
  async prepareEvents(_tx: Tx, rows: readonly StoredEventRow[], ahead?: WrittenAhead): Promise<void> {
    const ids = new Set<string>();
    for (const row of rows) {
      if (ids.has(row.eventID)) throw duplicate('event', row.eventID);
      ids.add(row.eventID);
    }
    const rewrite = rows.filter((row) => ahead?.rewrite.has(row.eventNID));
    await Promise.all([
      this.createRows(rows.filter((row) => !ahead?.rows.has(row.eventNID) && !ahead?.rewrite.has(row.eventNID))),
      rewrite.length > 0 ? this.conn.requests.upsertMany('events.insert', rewrite.map((row) => ({ ...this.rowRef(row.eventNID), k: 'event', ...rowDoc(row) }))) : undefined,
      this.placeLocators(rows.filter((row) => !ahead?.locators.has(row.eventNID))),
    ]);
  }

  /**
   * A new event's row and locator, created ahead of its call's reads (see CosmosRoomCommit.writeAhead): whether each
   * was created. Nothing is decided on them here; the call's own writes settle what was not.
   */
  async writeAhead(row: StoredEventRow): Promise<{ row: boolean; locator: boolean }> {
    const r = this.conn.requests;
    const [[created], [placed]] = await Promise.all([
      r.createMany('events.insert', [{ ...this.rowRef(row.eventNID), k: 'event', ...rowDoc(row) }]),
      r.createMany('events.insert', [{ ...this.locatorRef(row.eventID), k: 'event_id', eventID: row.eventID, nid: row.eventNID, room: row.roomNID }]),
    ]);
    return { row: created!, locator: placed! };
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

  private async placeLocators(rows: readonly StoredEventRow[]): Promise<void> {
    if (rows.length === 0) return;
    const r = this.conn.requests;
    const locators: LocatorDoc[] = rows.map((row) => ({ eventID: row.eventID, nid: row.eventNID, room: row.roomNID }));
    const placed = await r.createMany('events.insert', locators.map((l) => ({ ...this.locatorRef(l.eventID), k: 'event_id', ...l })));
    const contested = locators.filter((_, i) => !placed[i]);
    if (contested.length === 0) return;
    const winners = await r.readMany<LocatorDoc>('events.readLocator', contested.map((l) => this.locatorRef(l.eventID)));
    for (const [i, l] of contested.entries()) {
      const winner = winners[i];
      if (winner?.room === l.room) continue; // ours, or a writer's of the same room: the room's commit decides
      if (winner) {
        const [held] = await this.roomEvents.read([{ room: winner.room, eventID: l.eventID }]);
        if (held) throw duplicate('event', l.eventID);
      }
      const doc = { ...this.locatorRef(l.eventID), k: 'event_id', ...l };
      const taken = winner ? await r.replaceIfMatch('events.insert', doc, winner._etag) : await r.create('events.insert', doc);
      if (!taken) throw new ConcurrentUpdateError(`event ${l.eventID} is being stored by another writer`);
    }
  }

  /**
   * Stores events outside the input path (insertEvent, a dump's load): rows and locators (prepareEvents), then each
   * room's document of its event, created: one that exists already under another NID means the event was stored
   * meanwhile (a ConflictError); under this NID, a retry of this call.
   */
  async bulkInsertEvents(tx: Tx, rows: readonly StoredEventRow[]): Promise<void> {
    if (rows.length === 0) return;
    const stored = await this.stored(rows.map((r) => r.eventID));
    const taken = rows.find((r) => stored.has(r.eventID));
    if (taken) throw duplicate('event', taken.eventID);
    await this.prepareEvents(tx, rows);
    const docs = rows.map(roomEventOf);
    const created = await this.conn.requests.createMany('events.insert', docs.map((d) => this.roomEvents.eventDoc(d)));
    const contested = docs.filter((_, i) => !created[i]);
    const held = contested.length > 0
      ? await this.conn.requests.readMany<RoomEventDoc>('roomEvents.read', contested.map((d) => this.roomEvents.eventRef(d.room, d.eventID)))
      : [];
    const lost = contested.filter((d, i) => held[i]?.nid !== d.nid);
    for (const d of docs) if (!lost.includes(d)) this.roomEvents.remember(d);
    if (lost.length > 0) {
      // Stored by another writer meanwhile: its events stand; ours were never found, so remove their rows.
      await this.conn.requests.deleteMany('events.insert', lost.map((d) => this.rowRef(d.nid)));
      throw duplicate('event', lost[0]!.eventID);
    }
  }

  /** What the rooms hold of these events, by event ID: only stored events (see the class). */
  private async stored(eventIDs: readonly string[]): Promise<Map<string, RoomEventDoc>> {
    const docs = await this.roomEvents.locateStoredDocs(unique(eventIDs));
    return new Map(docs.filter((d) => d !== undefined).map((d) => [d.eventID, d]));
  }

  async bulkSelectEventsByID(_tx: Tx, eventIDs: readonly string[]) {
    const out = new Map<string, StoredEventInfo>();
    for (const [id, d] of await this.stored(eventIDs)) {
      out.set(id, {
        eventNID: d.nid, roomNID: d.room, stateSnapshotNID: d.snapshot, eventTypeNID: d.type, eventStateKeyNID: d.key, isRejected: d.rejected,
      });
    }
    return out;
  }

  /** The row first, then the room's document (see the class). */
  async clearEventRejected(_tx: Tx, eventNID: EventNID, eventID: string): Promise<void> {
    const row = this.rowRef(eventNID);
    const updated = await this.conn.requests.patch<RowDoc>('events.clearRejected', row.id, row.pk, [{ op: 'set', path: '/rejected', value: false }]);
    if (updated) await this.patchRoomEvent('events.clearRejected', updated, [{ op: 'set', path: '/rejected', value: false }]);
    else this.roomEvents.forgetEvents([eventID]);
  }

  /** Patches the room's document of the row's event, if the room holds this event under the row's NID. */
  private async patchRoomEvent(operation: string, row: Pick<RowDoc, 'room' | 'eventID' | 'nid'>, ops: PatchOperation[]): Promise<void> {
    const ref = this.roomEvents.eventRef(row.room, row.eventID);
    this.roomEvents.forget(row.room, [row.eventID]);
    await this.conn.requests.patchWhen<RoomEventDoc>(operation, ref.id, ref.pk, (doc) => doc.nid === row.nid, () => ops);
  }

  private async row(nid: number): Promise<RowDoc | undefined> {
    const { id, pk } = this.rowRef(nid);
    return this.conn.requests.read<RowDoc>('events.readRow', id, pk);
  }

  private async rows(nids: readonly number[]): Promise<RowDoc[]> {
    const docs = await this.conn.requests.readMany<RowDoc>('events.readRow', unique(nids).map((n) => this.rowRef(n)));
    return docs.filter((d) => d !== undefined);
  }

  async selectEvent(_tx: Tx, eventID: string) {
    const doc = (await this.stored([eventID])).get(eventID);
    if (!doc) throw notFound('event', eventID);
    return { eventNID: doc.nid, roomNID: doc.room, stateSnapshotNID: doc.snapshot };
  }

  async bulkSelectStateEventByID(_tx: Tx, eventIDs: readonly string[], excludeRejected = false): Promise<StateEntry[]> {
    const found = await this.stored(eventIDs);
    const err = missingOf('event', 'state events by ID', eventIDs, (id) => found.has(id));
    if (err) throw err;
    return [...found.values()].filter((d) => !excludeRejected || !d.rejected).map(entryOf).sort(compareEntries);
  }

  async bulkSelectStateEventByNID(_tx: Tx, eventNIDs: readonly EventNID[], tuples: readonly StateKeyTuple[]): Promise<StateEntry[]> {
    const types = new Set(tuples.map((t) => t.eventTypeNID as number));
    const keys = new Set(tuples.map((t) => t.eventStateKeyNID as number));
    return (await this.rows(eventNIDs))
      .filter((r) => tuples.length === 0 || (types.has(r.type) && keys.has(r.key)))
      .map(entryOf).sort(compareEntries);
  }

  async bulkSelectStateAtEventByID(_tx: Tx, eventIDs: readonly string[]): Promise<StateAtEvent[]> {
    const found = [...(await this.stored(eventIDs)).values()];
    const checked = checkStateAt(eventIDs, found.map((d) => ({ ...d, eventTypeNID: d.type, eventStateKeyNID: d.key, beforeStateSnapshotNID: d.snapshot })));
    return checked.map((d) => ({ ...entryOf(d), beforeStateSnapshotNID: d.snapshot, isRejected: d.rejected }));
  }

  /** The row, then the room's document of its event (see the class). */
  async updateEventState(_tx: Tx, eventNID: EventNID, stateSnapshotNID: StateSnapshotNID): Promise<void> {
    const { id, pk } = this.rowRef(eventNID);
    const row = await this.conn.requests.patch<RowDoc>('events.updateState', id, pk, [{ op: 'set', path: '/snapshot', value: stateSnapshotNID }]);
    if (!row) return;
    await this.patchRoomEvent('events.updateState', row, [{ op: 'set', path: '/snapshot', value: stateSnapshotNID }]);
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
    return new Map([...(await this.stored(eventIDs))].map(([id, d]) => [id, d.nid]));
  }

  async selectMaxEventDepth(_tx: Tx, eventNIDs: readonly EventNID[]): Promise<number> {
    const rows = await this.rows(eventNIDs);
    return rows.length === 0 ? 0 : Math.max(...rows.map((r) => r.depth)) + 1;
  }

  async bulkSelectEventIDsAndRooms(_tx: Tx, eventNIDs: readonly EventNID[]): Promise<Map<EventNID, { eventID: string; roomNID: RoomNID }>> {
    return new Map((await this.rows(eventNIDs)).map((r) => [r.nid, { eventID: r.eventID, roomNID: r.room }]));
  }

  /** A cross-partition query over the rooms' stored events: a rare path, such as loading server ACLs. */
  async selectRoomsWithEventTypeNID(_tx: Tx, eventTypeNID: EventTypeNID): Promise<RoomNID[]> {
    const rows = await this.conn.requests.crossPartitionQuery<{ room: RoomNID }>('events.roomsWithType', this.conn.tenantPrefix,
      `SELECT c.room FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = '${ROOM_EVENT_KIND}' AND c.type = @type`, [{ name: '@type', value: eventTypeNID }]);
    return [...new Set(rows.map((r) => r.room))].sort((a, b) => a - b);
  }

  async selectRoomNIDsForEventNIDs(_tx: Tx, eventNIDs: readonly EventNID[]): Promise<Map<EventNID, RoomNID>> {
    return new Map((await this.rows(eventNIDs)).map((r) => [r.nid, r.room]));
  }
}

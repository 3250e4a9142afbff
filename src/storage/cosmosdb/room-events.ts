import { inject, injectable } from 'inversify';
import type { EventNID, EventStateKeyNID, EventTypeNID, RoomNID, StateSnapshotNID } from '../../types/nids.js';
import { unique } from '../shared/contracts.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { docId } from './ids.js';
import { Lru } from './lru.js';
import type { Doc } from './requests.js';

/**
 * An event as its room holds it: `e|<event ID>` in the room's partition `room|<room NID>`, written by the room's
 * commit (a transactional batch with the room document), so an event is stored, and found by its ID, exactly when
 * its room committed it. Its fields are what a lookup by ID answers.
 */
export interface RoomEventDoc {
  eventID: string;
  nid: EventNID;
  room: RoomNID;
  type: EventTypeNID;
  key: EventStateKeyNID;
  rejected: boolean;
  /** The state before the event (0 when unknown). */
  snapshot: StateSnapshotNID;
  /**
   * The prev events it names that were stored when it was (its references to them; those to events not stored then
   * are PrevReferenceDocs). Absent in documents of older layouts, whose references are all in set documents.
   */
  prev?: string[];
}

/**
 * The stored events that name an event not stored when they were (a backward extremity, or a stored event's
 * references made when it is accepted late): `r|<event ID>` in the room's partition. Written by the same commits.
 * The same shape (kind `pe`: the ID as `key`, the NIDs as `values`) as the set documents that keep references made
 * outside the input path (see CosmosPreviousEventsTable), so that a dump reads both as one table.
 */
export interface PrevReferenceDoc {
  key: string;
  room: RoomNID;
  values: EventNID[];
}

export const ROOM_EVENT_KIND = 'room_event';
export const PREV_REFERENCE_KIND = 'pe';

/**
 * The per-room documents of events (see RoomEventDoc, PrevReferenceDoc): their ids, and what this process last read
 * or committed of them. A kept RoomEventDoc may be behind another process's change of its rejected flag or state
 * (as any cached row is); the writer never relies on a kept document without its commit being conditional on the
 * room document it read, which every change to these documents passes through.
 */
@injectable()
export class CosmosRoomEvents {
  private readonly events = new Lru<string, RoomEventDoc>(100_000);
  private readonly references = new Lru<string, EventNID[]>(20_000);
  /** The rooms of stored events, by ID (from their locators, which never change once their event is stored). */
  private readonly rooms = new Lru<string, RoomNID>(100_000);

  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  eventRef(room: number, eventID: string) {
    return { id: `e|${docId(eventID)}`, pk: this.conn.pk('room', room) };
  }

  referenceRef(room: number, prevEventID: string) {
    return { id: `r|${docId(prevEventID)}`, pk: this.conn.pk('room', room) };
  }

  eventDoc(d: RoomEventDoc): Doc {
    return {
      ...this.eventRef(d.room, d.eventID), k: ROOM_EVENT_KIND,
      eventID: d.eventID, nid: d.nid, room: d.room, type: d.type, key: d.key, rejected: d.rejected, snapshot: d.snapshot, prev: [...(d.prev ?? [])],
    };
  }

  /** Whether this process knows the event to be stored in the room (it read or committed its document). */
  knownStored(room: RoomNID, eventID: string): boolean {
    return this.events.get(`${room}|${eventID}`) !== undefined;
  }

  /** The stored events of the room naming these stored events in their own documents (see RoomEventDoc.prev). */
  async namingEvents(room: RoomNID, eventIDs: readonly string[]): Promise<Map<string, EventNID[]>> {
    const out = new Map<string, EventNID[]>();
    for (const id of unique(eventIDs)) {
      const rows = await this.conn.requests.query<{ nid: EventNID }>('previousEvents.references', this.conn.pk('room', room),
        `SELECT c.nid FROM c WHERE c.pk = @pk AND c.k = '${ROOM_EVENT_KIND}' AND ARRAY_CONTAINS(c.prev, @id)`, [{ name: '@id', value: id }]);
      if (rows.length > 0) out.set(id, rows.map((r) => r.nid));
    }
    return out;
  }

  referenceDoc(room: RoomNID, prev: string, nids: readonly EventNID[]): Doc {
    return { ...this.referenceRef(room, prev), k: PREV_REFERENCE_KIND, key: prev, room, values: [...nids] };
  }

  /** The stored events among these (room, event ID) pairs: kept ones first, the others read in bulk. */
  async read(pairs: readonly { room: RoomNID; eventID: string }[]): Promise<(RoomEventDoc | undefined)[]> {
    const out: (RoomEventDoc | undefined)[] = pairs.map((p) => this.events.get(`${p.room}|${p.eventID}`));
    const missing = pairs.flatMap((p, i) => (out[i] ? [] : [i]));
    if (missing.length > 0) {
      const docs = await this.conn.requests.readMany<RoomEventDoc>('roomEvents.read', missing.map((i) => this.eventRef(pairs[i]!.room, pairs[i]!.eventID)));
      missing.forEach((i, j) => {
        const doc = docs[j];
        if (doc) this.remember(doc);
        out[i] = doc;
      });
    }
    return out;
  }

  /** The events naming each of these (room, event ID) pairs, always read (the commit merges into what was read last). */
  async readReferences(pairs: readonly { room: RoomNID; eventID: string }[]): Promise<EventNID[][]> {
    if (pairs.length === 0) return [];
    const docs = await this.conn.requests.readMany<PrevReferenceDoc>('previousEvents.references', pairs.map((p) => this.referenceRef(p.room, p.eventID)));
    return pairs.map((p, i) => {
      const nids = docs[i]?.values ?? [];
      this.references.set(`${p.room}|${p.eventID}`, nids);
      return nids;
    });
  }

  /** The references to `prev` as last read or committed here; undefined if not read. */
  knownReferences(room: RoomNID, prev: string): EventNID[] | undefined {
    return this.references.get(`${room}|${prev}`);
  }

  remember(doc: RoomEventDoc): void {
    this.rooms.set(doc.eventID, doc.room);
    this.events.set(`${doc.room}|${doc.eventID}`, {
      eventID: doc.eventID, nid: doc.nid, room: doc.room, type: doc.type, key: doc.key, rejected: doc.rejected, snapshot: doc.snapshot,
      ...(doc.prev ? { prev: [...doc.prev] } : {}),
    });
  }

  rememberReferences(room: RoomNID, prev: string, nids: readonly EventNID[]): void {
    this.references.set(`${room}|${prev}`, [...nids]);
  }

  /**
   * The stored events among these IDs, in whichever room, in the order asked (undefined where not stored): through
   * their locators (kept once their event is found: a stored event's never changes), then their rooms' documents.
   */
  async locateStoredDocs(eventIDs: readonly string[]): Promise<(RoomEventDoc | undefined)[]> {
    const rooms = await this.roomsOf(eventIDs);
    const asked = eventIDs.flatMap((id) => (rooms.has(id) ? [{ room: rooms.get(id)!, eventID: id }] : []));
    const docs = new Map((await this.read(asked)).filter((d) => d !== undefined).map((d) => [d.eventID, d]));
    return eventIDs.map((id) => docs.get(id));
  }

  /**
   * The rooms these event IDs' locators name (those with none omitted): kept ones first (of stored events), the
   * others read in bulk. A locator names the room an event is or was being stored in, stored or not.
   */
  async roomsOf(eventIDs: readonly string[]): Promise<Map<string, RoomNID>> {
    const out = new Map<string, RoomNID>();
    const unknown: string[] = [];
    for (const id of eventIDs) {
      const room = this.rooms.get(id);
      if (room === undefined) unknown.push(id);
      else out.set(id, room);
    }
    if (unknown.length > 0) {
      const locators = await this.conn.requests.readMany<{ eventID: string; room: RoomNID }>('events.readLocator',
        unknown.map((id) => ({ id: 'eid', pk: this.conn.pk('eid', id) })));
      for (const l of locators) if (l) out.set(l.eventID, l.room);
    }
    return out;
  }

  /** Which of these event IDs are stored, in whichever room (see locateStoredDocs). */
  async locateStored(eventIDs: readonly string[]): Promise<Set<string>> {
    return new Set((await this.locateStoredDocs(eventIDs)).filter((d) => d !== undefined).map((d) => d.eventID));
  }

  /** Forgets what is kept of these events, in whichever room (they were deleted: a purge, through the dump). */
  forgetEvents(eventIDs: readonly string[]): void {
    for (const id of eventIDs) {
      const room = this.rooms.get(id);
      if (room !== undefined) this.forget(room, [id]);
    }
  }

  /** Forgets what is kept of these events (a change this process could not confirm, or a purge). */
  forget(room: RoomNID, eventIDs: readonly string[]): void {
    for (const id of eventIDs) {
      this.rooms.delete(id);
      this.events.delete(`${room}|${id}`);
      this.references.delete(`${room}|${id}`);
    }
  }
}

import { ConcurrentUpdateError, ConflictError, InvalidInputError, StorageError } from '../../types/errors.js';
import type { RoomEvent } from '../../types/event.js';
import { preview } from '../../types/input.js';
import { MembershipState } from '../../types/membership.js';
import { asEventStateKeyNID, asStateSnapshotNID, type EventNID, type StateSnapshotNID, type EventStateKeyNID, type EventTypeNID, type RoomNID } from '../../types/nids.js';
import type { StateEntry } from '../../types/state.js';
import type {
  InviteWrite, LatestEvents, MembershipRow, MembershipWrite, RedactionInfo, RoomserverTables, StoredEventRow, TransactionKey, Tx, UnitOfWork,
} from '../tables/index.js';
import { BoundedMap, type NidMaps } from './nid-assigner.js';
import { redactEventJSON } from './redaction.js';
import type { AppendEventResult, StoredEvent, StoreEventOptions, StoreEventResult } from './roomserver-database.js';
import type { StatePlan, StateRef, StateStorage } from './state-storage.js';

/** One event of an `appendEvents` call, with what `appendEvent` takes beside it. */
export interface AppendInput {
  readonly event: RoomEvent;
  readonly options?: StoreEventOptions;
}

/**
 * How long a claim on a room lasts (engines without atomic transactions): far longer than a batch takes, so that
 * only a writer that crashed holding it makes the others wait, at most this long.
 */
export const ROOM_CLAIM_MS = 10_000;

/** The room is claimed by another writer: wait a little, then start again (ConcurrentUpdateError's retry). */
export class RoomBusyError extends ConcurrentUpdateError {
  constructor(message: string, readonly until: number) {
    super(message);
  }
}

/** The most events one `appendEvents` call takes (a federation transaction carries 50 PDUs, backfill 100). */
export const MAX_APPEND_BATCH = 1000;

/** An event's row as the write path needs it. */
interface EventRowRef {
  readonly eventNID: EventNID;
  readonly roomNID: RoomNID;
  /** The state before the event: stored (0 when unknown) or planned by this batch. */
  stateBefore: StateRef;
}

/** What one call reads before it plans: everything that can refuse an event, and what planning starts from. */
interface Reads {
  readonly rooms: Map<string, RoomNID>;
  readonly versions: Map<RoomNID, string>;
  readonly stored: Map<string, { eventNID: EventNID; roomNID: RoomNID; stateSnapshotNID: StateSnapshotNID }>;
  readonly references: Map<string, EventNID[]>;
  /** By redacted event ID: the first redaction stored for it. */
  readonly redactions: Map<string, RedactionInfo>;
  /** By transaction key: the event it sent, if any. */
  readonly transactions: Map<string, string>;
  /** The call's invite events that are stored as invites already (active or not). */
  readonly storedInvites: Set<string>;
}

/** One room while a call plans it: held (locked) for the call, changed in memory, written at the end. */
interface RoomPlan {
  readonly roomNID: RoomNID;
  readonly roomVersion: string;
  readonly state: StatePlan;
  latest: { eventNID: EventNID; eventID: string }[];
  current: StateRef;
  readonly lastEventSentNID: EventNID;
  /** What the room's final write is conditional on (an ETag on Cosmos DB). */
  version: string;
  moved: boolean;
  /** See LatestEvents.appending: stored by an interrupted batch, not applied; their references do not count. */
  readonly appending: ReadonlySet<EventNID>;
  /** Memberships as the events so far left them (undefined: no row yet). */
  readonly memberships: Map<EventStateKeyNID, MembershipRow | undefined>;
  /** What to write per user: the last change wins. */
  readonly membershipWrites: Map<EventStateKeyNID, MembershipWrite>;
  /** The active invites of the users the call's member events concern, in insertion order, as the events so far left them. */
  readonly invites: Map<EventStateKeyNID, string[]>;
}

/** A new invite of the call, retired if a later event of the call retires it. */
type NewInvite = { -readonly [K in keyof InviteWrite]: InviteWrite[K] };

/** Everything a call writes, collected while it plans. */
class Writes {
  readonly transactions: { key: TransactionKey; eventID: string }[] = [];
  /** By event NID, the JSON to store (a redaction's overwrite replaces a new event's own JSON). */
  readonly json = new Map<EventNID, string>();
  readonly rows: { row: Omit<StoredEventRow, 'stateSnapshotNID'>; ref: EventRowRef }[] = [];
  /** Stored events whose unknown state before this call sets. */
  readonly stateUpdates: EventRowRef[] = [];
  readonly edges = new Map<string, { previousEventID: string; eventNID: EventNID }>();
  readonly redactions: RedactionInfo[] = [];
  readonly validated: string[] = [];
  /** New invites in event order (their insertion order), by ID too. */
  readonly newInvites: NewInvite[] = [];
  readonly newInviteByID = new Map<string, NewInvite>();
  /** Invites stored before the call that the call retires. */
  readonly retiredInvites: { roomNID: RoomNID; targetUserNID: EventStateKeyNID; inviteEventID: string }[] = [];
  /** Each event's retired invites, by result index. */
  readonly retiredBy = new Map<number, string[]>();
  /** By room, the NIDs of the call's events, stored before or now. */
  readonly eventNIDs = new Map<RoomNID, Set<EventNID>>();
}

/** A planned result: snapshot NIDs are filled in once the plan's states are written. */
interface PlannedResult {
  readonly room: RoomPlan;
  readonly stateAtEvent: Omit<StoreEventResult['stateAtEvent'], 'beforeStateSnapshotNID'>;
  readonly before: StateRef;
  readonly after: StateRef;
  readonly duplicate: boolean;
  readonly applied: boolean;
  readonly redaction?: StoreEventResult['redaction'];
}

const storedInAnotherRoom = (eventID: string) =>
  new ConflictError(`event ${eventID} is already stored in another room; event IDs are unique across rooms`);

/**
 * Marks promises that are started early and awaited after other awaits: a rejection meanwhile is not "unhandled"
 * (which would end the process); it still rejects where the promise is awaited.
 */
function awaitedLater(...promises: Promise<unknown>[]): void {
  for (const p of promises) p.catch(() => {});
}

const transactionKeyOf = (k: TransactionKey) => JSON.stringify([k.userID, k.sessionID, k.transactionID]);

/** The event a redaction event redacts, when it is one that can apply: undefined otherwise. */
function redactedBy(event: RoomEvent): string | undefined {
  if (event.type !== 'm.room.redaction' || event.stateKey !== undefined) return undefined;
  return event.redacts === event.eventID ? undefined : event.redacts;
}

/** The membership a member event sets, if its content names one (undefined: not a membership change). */
function membershipOf(event: RoomEvent, isRejected: boolean): string | undefined {
  if (event.type !== 'm.room.member' || event.stateKey === undefined || isRejected) return undefined;
  const m = event.content.membership;
  return typeof m === 'string' ? m : undefined;
}

/**
 * The linear input path, set-based: a batch of events (of one room or several) in one transaction, each room
 * locked once. Everything the batch's events can be refused for, and everything planning starts from, is read
 * first and together (one existence query for all the batch's IDs, their prev_events references and redactions,
 * the rooms' latest events, type and state key NIDs, the memberships the batch changes, a range of event NIDs);
 * then each event is applied in memory, in order, exactly as `appendEvent` applies it (state chained from event to
 * event); then the rows are written with multi-row statements, the state blocks and snapshots first, the rooms'
 * latest events last. Each event's result is what `appendEvent` would have returned for it.
 *
 * A refused event (stored in another room, a reused client transaction, a new room without a version) refuses
 * the whole call before anything is written; the error's `eventIndex` says which event it was.
 *
 * On an engine without atomic transactions (Cosmos DB) the refusal check runs before anything is written, NIDs
 * included, and the writes go in crash-safe order, each step in bulk (see `write`); a batch whose events name each
 * other is recorded in its room as appending first, so that a retry after a crash mid-batch applies them as if
 * the crash had not happened.
 */
export class EventAppender {
  /** Event NID -> ID of events known to be stored: a room's latest events need no read to be named. */
  private readonly eventIDs = new BoundedMap<EventNID, string>(100_000);

  constructor(
    private readonly uow: UnitOfWork,
    private readonly tables: RoomserverTables,
    private readonly stateStorage: StateStorage,
    private readonly nids: NidMaps,
    private readonly isLocalUser: (userID: string) => boolean,
    private readonly loadEvents: (tx: Tx, eventIDs: readonly string[]) => Promise<StoredEvent[]>,
  ) {}

  /**
   * Appends the batch as one sequence in `tx`: reads (with the rooms' locks, the NIDs it needs and a range of
   * event NIDs, all issued together), the refusal check, the plan in memory, the writes. Where the engine has no
   * atomic transactions the caller passes one event at a time (see the class).
   */
  async append(tx: Tx, inputs: readonly AppendInput[]): Promise<AppendEventResult[]> {
    const atomic = this.uow.atomicTransactions;
    const userIDs = new Set<string>();
    inputs.forEach(({ event, options }) => {
      if (event.stateKey !== undefined) userIDs.add(event.stateKey);
      if (membershipOf(event, options?.isRejected ?? false) !== undefined) userIDs.add(event.sender);
    });
    const assign = () => {
      const nids = [this.nids.eventTypes(tx, [...new Set(inputs.map((i) => i.event.type))]), this.nids.stateKeys(tx, [...userIDs])] as const;
      awaitedLater(...nids);
      return nids;
    };
    // Where a refused call rolls back (SQL), NIDs are assigned at once, before the check; elsewhere only after it.
    let assigned = atomic ? assign() : undefined;
    const known = await this.knownRooms(tx, inputs);
    // The rooms' locks before every read: statements run in the order issued (SQL), so the reads run once the rooms
    // are held and see what their previous writer committed; all of it goes out at once where the driver pipelines.
    // Without that ordering (Cosmos DB) the reads wait for the rooms' versions, which the final write is conditional on.
    const locking = this.lockRooms(tx, inputs, known.rooms);
    awaitedLater(locking);
    if (!atomic) {
      const held = await locking;
      const now = Date.now();
      for (const [roomNID, l] of held) {
        if ((l.held.claimedUntil ?? 0) > now) throw new RoomBusyError(`room NID ${roomNID} is being written by another writer`, l.held.claimedUntil!);
      }
    }
    const reading = this.read(tx, inputs, known);
    let newRooms: Map<string, string> | undefined;
    if (!atomic) {
      newRooms = this.admit(inputs, await reading);
      assigned = assign();
    }
    const [typesP, stateKeysP] = assigned!;
    const [locked, reads, types, stateKeys, reserved, memberships] = await Promise.all([
      locking,
      reading,
      typesP,
      stateKeysP,
      // Reserved once the rooms are held: within a room, NID order is the order in which events were applied.
      // Where the reads came first (no atomic transactions), they say how many are new.
      atomic || !this.tables.events.reserveEventNIDs
        ? this.tables.events.reserveEventNIDsFor(tx, inputs.map((i) => i.event.eventID))
        : reading.then((r) => this.tables.events.reserveEventNIDs!(tx, new Set(inputs.map((i) => i.event.eventID).filter((id) => !r.stored.has(id))).size)),
      stateKeysP.then((keys) => this.readMemberships(tx, inputs, known.rooms, keys)),
    ]);
    newRooms ??= this.admit(inputs, reads);
    const roomNIDs = new Map(reads.rooms);
    const versions = new Map(reads.versions);
    if (newRooms.size > 0) {
      const created = new Map(await Promise.all([...newRooms].map(async ([id, version]) => [id, await this.nids.room(tx, id, version)] as const)));
      for (const [id, nid] of created) {
        roomNIDs.set(id, nid);
        versions.set(nid, newRooms.get(id)!);
      }
      const [lockedNew, membershipsNew] = await Promise.all([
        this.lockRooms(tx, inputs, created), this.readMemberships(tx, inputs, created, stateKeys),
      ]);
      for (const [nid, l] of lockedNew) locked.set(nid, l);
      for (const [nid, m] of membershipsNew) memberships.set(nid, m);
    }
    const rooms = new Map([...locked].map(([roomNID, l]): [RoomNID, RoomPlan] => [roomNID, {
      roomNID,
      roomVersion: versions.get(roomNID) ?? '',
      state: this.stateStorage.plan(tx, roomNID),
      latest: l.latest,
      current: l.held.stateSnapshotNID,
      lastEventSentNID: l.held.lastEventSentNID,
      version: l.held.version,
      appending: new Set(l.held.appending ?? []),
      moved: false,
      memberships: memberships.get(roomNID)!.memberships,
      membershipWrites: new Map(),
      invites: memberships.get(roomNID)!.invites,
    }]));
    return this.applyAndWrite(tx, inputs, reads, { roomNIDs, rooms, types, stateKeys, reserved });
  }

  // ---- Reading ----

  private async knownRooms(tx: Tx, inputs: readonly AppendInput[]): Promise<{ rooms: Map<string, RoomNID>; versions: Map<RoomNID, string> }> {
    const rooms = await this.nids.knownRooms(tx, [...new Set(inputs.map((i) => i.event.roomID))]);
    return { rooms, versions: await this.nids.roomVersions(tx, [...rooms.values()]) };
  }

  private async read(tx: Tx, inputs: readonly AppendInput[], rooms: { rooms: Map<string, RoomNID>; versions: Map<RoomNID, string> }): Promise<Reads> {
    const ids = new Set<string>();
    const lookups = new Set<string>();
    for (const { event, options } of inputs) {
      ids.add(event.eventID);
      lookups.add(event.eventID);
      const target = options?.isRejected ? undefined : redactedBy(event);
      if (target !== undefined) lookups.add(target);
    }
    const keys = inputs.flatMap(({ options }) => (options?.transaction ? [options.transaction] : []));
    const invites = inputs.filter(({ event, options }) => membershipOf(event, options?.isRejected ?? false) === 'invite').map((i) => i.event.eventID);
    const [stored, references, redactions, transactions, storedInvites] = await Promise.all([
      this.tables.events.bulkSelectEventsByID(tx, [...lookups]),
      this.tables.previousEvents.bulkSelectPreviousEventReferences(tx, [...ids]),
      this.tables.redactions.bulkSelectRedactionInfoByEventsBeingRedacted(tx, [...lookups]),
      Promise.all(keys.map(async (k) => [transactionKeyOf(k), await this.transactionEventID(tx, k)] as const)),
      invites.length > 0 ? this.tables.invites.bulkSelectStoredInviteIDs(tx, invites) : new Set<string>(),
    ]);
    const sent = new Map<string, string>();
    for (const [k, id] of transactions) if (id !== undefined) sent.set(k, id);
    return { rooms: rooms.rooms, versions: rooms.versions, stored, references, redactions, transactions: sent, storedInvites };
  }

  private async transactionEventID(tx: Tx, key: TransactionKey): Promise<string | undefined> {
    return (await this.tables.transactions.selectTransactionEventIDIfAny(tx, key)) ?? undefined;
  }

  /**
   * Checks every event as `appendEvent` would, in order, from what was read and the events before it in the call.
   * Returns the rooms the call creates, with their versions. Throws the first refusal, with its `eventIndex`.
   */
  private admit(inputs: readonly AppendInput[], reads: Reads): Map<string, string> {
    const newRooms = new Map<string, string>();
    const roomOfEvent = new Map<string, string>();
    const sentBy = new Map(reads.transactions);
    inputs.forEach(({ event, options }, index) => {
      try {
        const known = reads.rooms.get(event.roomID);
        const stored = reads.stored.get(event.eventID);
        const earlier = roomOfEvent.get(event.eventID);
        if ((stored && stored.roomNID !== known) || (earlier !== undefined && earlier !== event.roomID)) throw storedInAnotherRoom(event.eventID);
        const isNew = !stored && earlier === undefined;
        if (options?.transaction) {
          const key = transactionKeyOf(options.transaction);
          const sent = sentBy.get(key);
          if (sent !== undefined && sent !== event.eventID) {
            throw new ConflictError(`client transaction ${preview(options.transaction.transactionID)} already sent event ${sent}`);
          }
          // Only a new event records its transaction (as appendEvent does).
          if (isNew) sentBy.set(key, event.eventID);
        }
        const version = known !== undefined ? reads.versions.get(known) ?? '' : newRooms.get(event.roomID);
        if (version === undefined) {
          // A new room takes the version the event was read by: a create event's own, or the one its caller gave.
          if (event.roomVersion === undefined) {
            throw new InvalidInputError(`room ${event.roomID} is not stored yet and the event does not say its room version: store the room's ` +
              'create event first, or read the event with its room version (parseEvent(json, { roomVersion }), parsePDU)');
          }
          newRooms.set(event.roomID, event.roomVersion);
        } else if (event.roomVersion !== undefined && version !== '' && event.roomVersion !== version) {
          // "" is a room a build before versions were required stored without one: it takes whatever comes.
          throw new ConflictError(`event ${event.eventID} was read as room version ${event.roomVersion}, but room ${event.roomID} is version ${version}`);
        }
        roomOfEvent.set(event.eventID, event.roomID);
      } catch (e) {
        if (e instanceof StorageError) e.eventIndex = index;
        throw e;
      }
    });
    return newRooms;
  }

  // ---- Applying in memory ----

  private async applyAndWrite(tx: Tx, inputs: readonly AppendInput[], reads: Reads, ready: {
    roomNIDs: Map<string, RoomNID>; rooms: Map<RoomNID, RoomPlan>; types: Map<string, EventTypeNID>;
    stateKeys: Map<string, EventStateKeyNID>; reserved: readonly EventNID[];
  }): Promise<AppendEventResult[]> {
    const { roomNIDs, rooms, types, stateKeys, reserved } = ready;
    const redactionEvents = await this.redactionEventsNeeded(tx, inputs, reads);
    const writes = new Writes();
    const rows = new Map<string, EventRowRef>();
    for (const [id, s] of reads.stored) rows.set(id, { eventNID: s.eventNID, roomNID: s.roomNID, stateBefore: s.stateSnapshotNID });
    const newEvents = new Map<string, { event: RoomEvent; eventNID: EventNID }>();
    // References from the stored events, then from each event of the batch as it is applied.
    // An event named by an event an interrupted batch stored without applying it (an appending one) is not referenced.
    const appending = new Set([...rooms.values()].flatMap((r) => [...r.appending]));
    const referenced = new Set([...reads.references].filter(([, nids]) => nids.some((n) => !appending.has(n))).map(([id]) => id));
    const redactionOf = new Map(reads.redactions);
    const inCall = new Map<string, RoomEvent>();
    for (const { event } of inputs) if (!inCall.has(event.eventID)) inCall.set(event.eventID, event);
    let nextNID = 0;

    const results: PlannedResult[] = [];
    for (let i = 0; i < inputs.length; i++) {
      const { event, options = {} } = inputs[i]!;
      const room = rooms.get(roomNIDs.get(event.roomID)!)!;
      const isRejected = options.isRejected ?? false;
      const eventTypeNID: EventTypeNID = types.get(event.type)!;
      const eventStateKeyNID = event.stateKey === undefined ? asEventStateKeyNID(0) : stateKeys.get(event.stateKey)!;
      // Asked before this event's own prev_events count, so that an event naming itself is not referenced.
      const isReferenced = referenced.has(event.eventID);
      let row = rows.get(event.eventID);
      const duplicate = row !== undefined;
      if (!row) {
        const eventNID = reserved[nextNID++];
        // The reservation counted one stored event more than the existence check saw: another writer's (storeEvent
        // holds no room lock) landed between the two. The call starts again and finds it stored.
        if (eventNID === undefined) throw new ConcurrentUpdateError(`event ${event.eventID} was stored by another writer meanwhile`);
        row = { eventNID, roomNID: room.roomNID, stateBefore: asStateSnapshotNID(0) };
        rows.set(event.eventID, row);
        newEvents.set(event.eventID, { event, eventNID: row.eventNID });
        if (options.transaction) writes.transactions.push({ key: options.transaction, eventID: event.eventID });
        writes.json.set(row.eventNID, event.json);
        writes.rows.push({
          row: {
            eventNID: row.eventNID, roomNID: room.roomNID, eventTypeNID, eventStateKeyNID, eventID: event.eventID,
            authEventNIDs: options.authEventNIDs ?? [], depth: event.depth, isRejected,
          },
          ref: row,
        });
      }
      if (!writes.eventNIDs.has(room.roomNID)) writes.eventNIDs.set(room.roomNID, new Set());
      writes.eventNIDs.get(room.roomNID)!.add(row.eventNID);
      for (const prev of event.prevEventIDs) {
        writes.edges.set(`${prev}\u0000${row.eventNID}`, { previousEventID: prev, eventNID: row.eventNID });
        referenced.add(prev);
      }
      const redaction = isRejected ? undefined
        : this.applyRedaction(event, room, writes, rows, newEvents, redactionOf, redactionEvents, inCall);
      const own: StateEntry = { eventTypeNID, eventStateKeyNID, eventNID: row.eventNID };
      const stateAtEvent = { ...own, isRejected };
      const isState = eventStateKeyNID !== 0 && !isRejected;
      const storedBefore = row.stateBefore;
      if (room.latest.some((l) => l.eventNID === row.eventNID) || isReferenced) {
        const after = isState && storedBefore !== 0 ? await room.state.derive(storedBefore, [own]) : storedBefore;
        results.push({ room, stateAtEvent, before: storedBefore, after, duplicate, applied: false, ...(redaction ? { redaction } : {}) });
        continue;
      }
      let before = storedBefore;
      if (before === 0) {
        before = room.current !== 0 ? room.current : await room.state.derive([], []);
        if (duplicate) writes.stateUpdates.push(row);
        row.stateBefore = before;
      }
      const after = isState ? await room.state.derive(before, [own]) : before;
      const membership = membershipOf(event, isRejected);
      if (membership !== undefined) {
        this.applyMembership(room, event, membership, eventStateKeyNID, row.eventNID, stateKeys.get(event.sender)!, writes, results.length, reads.storedInvites);
      }
      const prevIDs = new Set(event.prevEventIDs);
      room.latest = [...room.latest.filter((l) => !prevIDs.has(l.eventID)), { eventNID: row.eventNID, eventID: event.eventID }];
      room.current = after;
      room.moved = true;
      results.push({ room, stateAtEvent, before, after, duplicate, applied: true, ...(redaction ? { redaction } : {}) });
    }

    await this.write(tx, rooms, writes);
    const learned = [...newEvents.values()];
    this.uow.afterCommit(tx, () => { for (const { event, eventNID } of learned) this.eventIDs.set(eventNID, event.eventID); });
    return results.map((r, i) => ({
      roomNID: r.room.roomNID,
      duplicate: r.duplicate,
      stateAtEvent: { ...r.stateAtEvent, beforeStateSnapshotNID: r.room.state.nid(r.before) },
      stateAfterSnapshotNID: r.room.state.nid(r.after),
      applied: r.applied,
      retiredInviteIDs: writes.retiredBy.get(i) ?? [],
      ...(r.redaction ? { redaction: r.redaction } : {}),
    }));
  }

  /**
   * Locks the call's rooms among `roomNIDs` (in room NID order, so that two calls over the same rooms cannot
   * deadlock) and reads their latest events, named from the cache where it can.
   */
  private async lockRooms(
    tx: Tx, inputs: readonly AppendInput[], roomNIDs: ReadonlyMap<string, RoomNID>,
  ): Promise<Map<RoomNID, { held: LatestEvents; latest: { eventNID: EventNID; eventID: string }[] }>> {
    const order = [...new Set(inputs.flatMap(({ event }) => roomNIDs.get(event.roomID) ?? []))].sort((a, b) => a - b);
    const held = await Promise.all(order.map((nid) => this.tables.rooms.selectLatestEventsNIDsForUpdate(tx, nid)));
    const unnamed = held.flatMap((h) => h.latestEventNIDs).filter((nid) => !this.eventIDs.has(nid));
    const named = unnamed.length > 0 ? await this.tables.events.bulkSelectEventID(tx, unnamed) : new Map<EventNID, string>();
    this.uow.afterCommit(tx, () => { for (const [nid, id] of named) this.eventIDs.set(nid, id); });
    return new Map(order.map((roomNID, i) => {
      const h = held[i]!;
      return [roomNID, { held: h, latest: h.latestEventNIDs.map((eventNID) => ({ eventNID, eventID: named.get(eventNID) ?? this.eventIDs.get(eventNID)! })) }];
    }));
  }

  /**
   * The memberships the call's member events change, in the rooms among `roomNIDs` (undefined: no row yet), and
   * those users' active invites.
   */
  private async readMemberships(
    tx: Tx, inputs: readonly AppendInput[], roomNIDs: ReadonlyMap<string, RoomNID>, stateKeys: ReadonlyMap<string, EventStateKeyNID>,
  ): Promise<Map<RoomNID, { memberships: Map<EventStateKeyNID, MembershipRow | undefined>; invites: Map<EventStateKeyNID, string[]> }>> {
    const targets = new Map<RoomNID, Set<EventStateKeyNID>>();
    for (const { event, options } of inputs) {
      const nid = roomNIDs.get(event.roomID);
      if (nid === undefined) continue;
      if (!targets.has(nid)) targets.set(nid, new Set());
      if (membershipOf(event, options?.isRejected ?? false) !== undefined) targets.get(nid)!.add(stateKeys.get(event.stateKey!)!);
    }
    return new Map(await Promise.all([...targets].map(async ([nid, users]) => {
      const list = [...users];
      const [read, invites] = list.length === 0 ? [new Map<EventStateKeyNID, MembershipRow>(), new Map<EventStateKeyNID, string[]>()] : await Promise.all([
        this.tables.membership.bulkSelectMembershipsForUpdate(tx, nid, list),
        this.tables.invites.bulkSelectActiveInvites(tx, nid, list),
      ]);
      return [nid, { memberships: new Map(list.map((u) => [u, read.get(u)])), invites }] as const;
    })));
  }

  /**
   * The stored events (outside the call) that applying the call's redactions needs: the targets of its redaction
   * events, and the redactions already stored against its events. Read only when there are any.
   */
  private async redactionEventsNeeded(tx: Tx, inputs: readonly AppendInput[], reads: Reads): Promise<Map<string, RoomEvent>> {
    const inCall = new Set(inputs.map((i) => i.event.eventID));
    const wanted = new Set<string>();
    for (const { event, options } of inputs) {
      if (options?.isRejected) continue;
      const target = redactedBy(event);
      if (target !== undefined && !inCall.has(target) && reads.stored.has(target)) wanted.add(target);
      for (const info of [reads.redactions.get(event.eventID), target === undefined ? undefined : reads.redactions.get(target)]) {
        if (info && !info.validated && !inCall.has(info.redactionEventID)) wanted.add(info.redactionEventID);
      }
    }
    if (wanted.size === 0) return new Map();
    return new Map((await this.loadEvents(tx, [...wanted])).map((s) => [s.event.eventID, s.event]));
  }

  /**
   * Applies a redaction once both it and its target are stored, in the same room, as appendEvent does: the target's
   * JSON is overwritten with its redacted form and the redaction marked validated.
   */
  private applyRedaction(
    event: RoomEvent, room: RoomPlan, writes: Writes, rows: Map<string, EventRowRef>, newEvents: Map<string, { event: RoomEvent; eventNID: EventNID }>,
    redactionOf: Map<string, RedactionInfo>, storedEvents: Map<string, RoomEvent>, inCall: Map<string, RoomEvent>,
  ): StoreEventResult['redaction'] {
    let info: RedactionInfo | undefined;
    if (event.type === 'm.room.redaction' && event.stateKey === undefined) {
      const target = redactedBy(event);
      if (target === undefined) return undefined;
      const inserted = { redactionEventID: event.eventID, redactsEventID: target, validated: false };
      if (!writes.redactions.some((r) => r.redactionEventID === event.eventID)) writes.redactions.push(inserted);
      // The first redaction stored for an event is the one that counts.
      if (!redactionOf.has(target)) redactionOf.set(target, inserted);
      info = redactionOf.get(target);
    } else {
      info = redactionOf.get(event.eventID);
    }
    if (!info || info.validated) return undefined;
    // An event counts once it is stored: before the call, or earlier in it.
    const eventOf = (id: string) => newEvents.get(id)?.event ?? (rows.has(id) ? inCall.get(id) : undefined) ?? storedEvents.get(id);
    const redactionEvent = eventOf(info.redactionEventID);
    const target = eventOf(info.redactsEventID);
    const targetRow = rows.get(info.redactsEventID);
    if (!redactionEvent || !target || !targetRow || redactionEvent.roomID !== target.roomID) return undefined;
    const json = writes.json.get(targetRow.eventNID) ?? target.json;
    // A room stored without a version (by an older build) is redacted by the rules of version 1, the default.
    writes.json.set(targetRow.eventNID, redactEventJSON(json, redactionEvent.json, room.roomVersion || '1'));
    writes.validated.push(info.redactionEventID);
    redactionOf.set(info.redactsEventID, { ...info, validated: true });
    return { redactionEvent, redactedEventID: target.eventID };
  }

  /** Moves the target's membership as MembershipUpdater would, recording the writes and invite changes. */
  private applyMembership(
    room: RoomPlan, event: RoomEvent, membership: string, targetUserNID: EventStateKeyNID, eventNID: EventNID,
    senderUserNID: EventStateKeyNID, writes: Writes, resultIndex: number, storedInvites: Set<string>,
  ): void {
    let current = room.memberships.get(targetUserNID);
    const set = (state: MembershipState, nid: EventNID) => {
      current = { membership: state, eventNID: nid };
      room.memberships.set(targetUserNID, current);
      room.membershipWrites.set(targetUserNID, { targetUserNID, targetLocal: this.isLocalUser(event.stateKey!), senderUserNID, membership: state, eventNID: nid });
    };
    if (!current) {
      // A first membership event creates the row (leave, no event) before anything else, whatever it says.
      current = { membership: MembershipState.leaveOrBan, eventNID: 0 as EventNID };
      room.memberships.set(targetUserNID, current);
      room.membershipWrites.set(targetUserNID, {
        targetUserNID, targetLocal: this.isLocalUser(event.stateKey!), senderUserNID: asEventStateKeyNID(0), membership: MembershipState.leaveOrBan, eventNID: current.eventNID,
      });
    }
    const active = room.invites.get(targetUserNID) ?? [];
    const retire = () => {
      for (const id of active) {
        const fresh = writes.newInviteByID.get(id);
        if (fresh) fresh.retired = true;
        else writes.retiredInvites.push({ roomNID: room.roomNID, targetUserNID, inviteEventID: id });
      }
      writes.retiredBy.set(resultIndex, [...active]);
      room.invites.set(targetUserNID, []);
    };
    switch (membership) {
      case 'invite':
        // An invite ID stored already (by an earlier call, or earlier in this one) is left as it is.
        if (!storedInvites.has(event.eventID)) {
          const invite: NewInvite = { inviteEventID: event.eventID, roomNID: room.roomNID, targetUserNID, senderUserNID, inviteEventJSON: event.json, retired: false };
          storedInvites.add(event.eventID);
          writes.newInvites.push(invite);
          writes.newInviteByID.set(invite.inviteEventID, invite);
          room.invites.set(targetUserNID, [...active, invite.inviteEventID]);
        }
        if (current.membership !== MembershipState.invite) set(MembershipState.invite, current.eventNID);
        return;
      case 'join':
        // A join over a join is a profile change: it retires no invite.
        if (current.membership !== MembershipState.join) retire();
        set(MembershipState.join, eventNID);
        return;
      case 'leave':
      case 'ban':
        retire();
        if (current.membership !== MembershipState.leaveOrBan) set(MembershipState.leaveOrBan, eventNID);
        return;
      case 'knock':
        if (current.membership !== MembershipState.knock) set(MembershipState.knock, eventNID);
        return;
      default:
    }
  }

  // ---- Writing ----

  /**
   * Writes what the call planned. With atomic transactions every independent write is issued at once, and the
   * rows that name planned snapshots right after those are written (on PostgreSQL: one round trip for the lot, two
   * more when the batch adds state). Without, in crash-safe order: immutable data first, each room's latest events
   * last.
   */
  private async write(tx: Tx, rooms: Map<RoomNID, RoomPlan>, w: Writes): Promise<void> {
    const t = this.tables;
    const rows = async () => {
      try {
        await t.events.bulkInsertEvents(tx, w.rows.map(({ row, ref }) => ({ ...row, stateSnapshotNID: stateNID(ref) })));
      } catch (e) {
        // Another writer stored one of them first (after this call read): the call starts again and finds it stored.
        if (e instanceof ConflictError) throw new ConcurrentUpdateError(`${e.message}: stored by another writer meanwhile`);
        throw e;
      }
    };
    const stateNID = (ref: EventRowRef) => rooms.get(ref.roomNID)!.state.nid(ref.stateBefore);
    const memberships = () => [...rooms.values()].map((r) => r.membershipWrites.size > 0 ? t.membership.bulkUpsertMemberships(tx, r.roomNID, [...r.membershipWrites.values()]) : undefined);
    const pointers = () => [...rooms.values()].filter((r) => r.moved).map((r) => t.rooms.updateLatestEventNIDs(
      tx, r.roomNID, r.latest.map((l) => l.eventNID), r.lastEventSentNID, r.state.nid(r.current), r.version));
    const json = [...w.json].map(([eventNID, eventJSON]) => ({ eventNID, eventJSON }));
    const edges = [...w.edges.values()];

    if (this.uow.atomicTransactions) {
      // Everything that depends on nothing, issued at once; then the state's blocks and snapshots (a round trip each,
      // as snapshots name blocks); then the rows naming them and the rooms' latest events, handed to the transaction
      // as its last writes: on PostgreSQL COMMIT travels right behind them.
      const independent = Promise.all([
        ...w.transactions.map((x) => t.transactions.insertTransaction(tx, x.key, x.eventID)),
        json.length > 0 ? t.eventJSON.bulkInsertEventJSON(tx, json) : undefined,
        edges.length > 0 ? t.previousEvents.bulkInsertPreviousEvents(tx, edges) : undefined,
        ...w.redactions.map((r) => t.redactions.insertRedaction(tx, r)),
        ...w.validated.map((id) => t.redactions.markRedactionValidated(tx, id, true)),
        w.newInvites.length > 0 ? t.invites.bulkInsertInvites(tx, w.newInvites) : undefined,
        w.retiredInvites.length > 0 ? t.invites.bulkRetireInvites(tx, w.retiredInvites) : undefined,
        ...memberships(),
      ]);
      awaitedLater(independent);
      try {
        await Promise.all([...rooms.values()].map((r) => r.state.write()));
      } catch (e) {
        // A failure among the writes before fails these too (an aborted transaction): report the first.
        await independent;
        throw e;
      }
      this.uow.lastWrites(tx, Promise.all([
        independent,
        w.rows.length > 0 ? rows() : undefined,
        ...w.stateUpdates.map((ref) => t.events.updateEventState(tx, ref.eventNID, stateNID(ref))),
        ...pointers(),
      ]));
      return;
    }
    // Without atomic transactions (Cosmos DB): each room is claimed first (its conditional write acts as the SQL
    // drivers' row lock: another writer that read the room before fails, one that reads it now waits for the claim),
    // recording the new events as appending (an interrupted call leaves them stored but not applied, and their
    // prev_events references must not count as an applied event's: the retry applies them as if nothing had
    // happened). Then, in crash-safe order and each step in bulk: immutable data (JSON under fresh NIDs,
    // content-addressed state), the event rows (which make the events visible), what refers to them, and the rooms'
    // latest events last, which releases the claim and clears the call's events from appending.
    const newRows = new Set(w.rows.map((r) => r.row.eventNID));
    const claimed: RoomPlan[] = [];
    try {
      for (const room of rooms.values()) {
        if (!t.rooms.claimRoom) break;
        const rows = w.rows.filter((r) => r.row.roomNID === room.roomNID).map((r) => r.row.eventNID);
        room.version = await t.rooms.claimRoom(tx, room.roomNID, [...new Set([...room.appending, ...rows])], Date.now() + ROOM_CLAIM_MS, room.version);
        claimed.push(room);
      }
      for (const x of w.transactions) {
        try {
          await t.transactions.insertTransaction(tx, x.key, x.eventID);
        } catch (e) {
          // Ours already (a retried write whose answer was lost), or another writer's since this call read: look again.
          if (!(e instanceof ConflictError)) throw e;
          if ((await t.transactions.selectTransactionEventIDIfAny(tx, x.key)) !== x.eventID) {
            throw new ConcurrentUpdateError(`client transaction ${preview(x.key.transactionID)} was used by another writer meanwhile`);
          }
        }
      }
      await Promise.all([
        newRows.size > 0 ? t.eventJSON.bulkInsertEventJSON(tx, json.filter((j) => newRows.has(j.eventNID))) : undefined,
        ...[...rooms.values()].map((r) => r.state.write()),
      ]);
      if (w.rows.length > 0) await rows();
      await Promise.all(w.stateUpdates.map((ref) => t.events.updateEventState(tx, ref.eventNID, stateNID(ref))));
      if (edges.length > 0) await t.previousEvents.bulkInsertPreviousEvents(tx, edges);
      for (const r of w.redactions) await t.redactions.insertRedaction(tx, r);
      // A redacted JSON before the mark that says it was applied, so that a retry applies it again.
      const overwrites = json.filter((j) => !newRows.has(j.eventNID));
      if (overwrites.length > 0) await t.eventJSON.bulkInsertEventJSON(tx, overwrites);
      for (const id of w.validated) await t.redactions.markRedactionValidated(tx, id, true);
      if (w.newInvites.length > 0) await t.invites.bulkInsertInvites(tx, w.newInvites);
      if (w.retiredInvites.length > 0) await t.invites.bulkRetireInvites(tx, w.retiredInvites);
      await Promise.all(memberships());
      await Promise.all([...rooms.values()].map((room) => {
        const done = w.eventNIDs.get(room.roomNID) ?? new Set<EventNID>();
        const left = [...room.appending].filter((n) => !done.has(n));
        if (!room.moved && !claimed.includes(room)) return undefined;
        const blocks = room.state.blockNIDsOf(room.current);
        return t.rooms.updateLatestEventNIDs(tx, room.roomNID, room.latest.map((l) => l.eventNID), room.lastEventSentNID,
          room.state.nid(room.current), room.version, claimed.includes(room) ? left : undefined, blocks);
      }));
    } catch (e) {
      // Best effort: let the next writer in at once rather than when the claim runs out.
      await Promise.all(claimed.map((room) => t.rooms.releaseRoom?.(tx, room.roomNID, room.version).catch(() => {})));
      throw e;
    }
  }
}

import { ConcurrentUpdateError, ConflictError, InvalidInputError, NotFoundError, StorageError } from '../../types/errors.js';
import type { RoomEvent } from '../../types/event.js';
import { preview } from '../../types/input.js';
import { asEventStateKeyNID, type EventNID, type EventStateKeyNID, type RoomNID } from '../../types/nids.js';
import type { LatestEvents, MembershipRow, RedactionInfo, RoomserverTables, TransactionKey, Tx, UnitOfWork } from '../tables/index.js';
import { membershipOf } from './append-memberships.js';
import type { PlanCommitter, Reads } from './append-plan.js';
import { redactedBy } from './append-redactions.js';
import { awaitedLater } from './append-writer.js';
import type { AppendInput } from './event-appender.js';
import type { BoundedMap, NidMaps } from './nid-assigner.js';
import type { StoredEvent } from './roomserver-database.js';

const storedInAnotherRoom = (eventID: string) =>
  new ConflictError(`event ${eventID} is already stored in another room; event IDs are unique across rooms`);

export const transactionKeyOf = (k: TransactionKey) => JSON.stringify([k.userID, k.sessionID, k.transactionID]);

/** Whether the events named are exactly these (as sets). */
export function sameEvents(ids: readonly string[], events: readonly { eventID: string }[]): boolean {
  const a = new Set(ids);
  return a.size === events.length && events.every((e) => a.has(e.eventID));
}

/**
 * What the input path (EventAppender) reads before it plans, and the refusal check on it: the rooms and their locks,
 * the stored events a call names, their references and redactions, client transactions, the memberships and
 * invites the call changes, the events its redactions need; and, where the engine writes ahead, what it may write
 * before those reads come back.
 */
export class AppendReader {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly tables: RoomserverTables,
    private readonly nids: NidMaps,
    private readonly loadEvents: (tx: Tx, eventIDs: readonly string[]) => Promise<StoredEvent[]>,
    private readonly committer: PlanCommitter | undefined,
    /** Event NID -> ID of events known to be stored (the appender's). */
    private readonly eventIDs: BoundedMap<EventNID, string>,
  ) {}

  /**
   * Where the engine writes ahead (PlanCommitter.writeAhead): a lone event that names exactly its room's forward
   * extremities, of a type and state key whose NIDs are known, is accepted and sent to output if it is new, with the
   * room's current state as its state before; so its row is known before the reads, and goes out with them.
   */
  writeAhead(tx: Tx, inputs: readonly AppendInput[], rooms: ReadonlyMap<string, RoomNID>,
    locking: Promise<Map<RoomNID, { held: LatestEvents; latest: { eventNID: EventNID; eventID: string }[] }>>): Promise<EventNID | undefined> | undefined {
    const write = this.committer?.writeAhead;
    if (!write || inputs.length !== 1) return undefined;
    const { event, options = {} } = inputs[0]!;
    if (options.isRejected || options.isSoftFailed || options.stateBefore !== undefined) return undefined;
    const roomNID = rooms.get(event.roomID);
    const eventTypeNID = this.nids.knownEventType(event.type);
    const eventStateKeyNID = event.stateKey === undefined ? asEventStateKeyNID(0) : this.nids.knownStateKey(event.stateKey);
    if (roomNID === undefined || eventTypeNID === undefined || eventStateKeyNID === undefined) return undefined;
    return locking.then((held) => {
      const room = held.get(roomNID);
      if (!room || room.held.stateSnapshotNID === 0 || !sameEvents(event.prevEventIDs, room.latest)) return undefined;
      return write.call(this.committer, tx, {
        roomNID, eventTypeNID, eventStateKeyNID, eventID: event.eventID, authEventNIDs: options.authEventNIDs ?? [], depth: event.depth,
        isRejected: false, sentToOutput: true, stateSnapshotNID: room.held.stateSnapshotNID,
      }, event.json);
    });
  }

  /** These state keys' NIDs if this process knows every one already; else undefined. */
  knownStateKeys(keys: readonly string[]): Map<string, EventStateKeyNID> | undefined {
    const out = new Map<string, EventStateKeyNID>();
    for (const key of keys) {
      const nid = this.nids.knownStateKey(key);
      if (nid === undefined) return undefined;
      out.set(key, nid);
    }
    return out;
  }

  // ---- Reading ----

  async knownRooms(tx: Tx, inputs: readonly AppendInput[]): Promise<{ rooms: Map<string, RoomNID>; versions: Map<RoomNID, string> }> {
    const rooms = await this.nids.knownRooms(tx, [...new Set(inputs.map((i) => i.event.roomID))]);
    return { rooms, versions: await this.nids.roomVersions(tx, [...rooms.values()]) };
  }

  async read(tx: Tx, inputs: readonly AppendInput[], rooms: { rooms: Map<string, RoomNID>; versions: Map<RoomNID, string> }): Promise<Reads> {
    const ids = new Set<string>();
    const lookups = new Set<string>();
    for (const { event, options } of inputs) {
      ids.add(event.eventID);
      lookups.add(event.eventID);
      const target = options?.isRejected ? undefined : redactedBy(event);
      if (target !== undefined) lookups.add(target);
      // What the state before each event is made from (read with the rest: one existence query).
      for (const prev of event.prevEventIDs) lookups.add(prev);
      for (const id of options?.stateBefore ?? []) lookups.add(id);
    }
    // The room of each event of the call, for an engine that keeps references by room (see the table).
    const roomOf = new Map<string, RoomNID>();
    for (const { event } of inputs) {
      const room = rooms.rooms.get(event.roomID);
      if (room !== undefined) roomOf.set(event.eventID, room);
    }
    const keys = inputs.flatMap(({ options }) => (options?.transaction ? [options.transaction] : []));
    const invites = inputs.filter(({ event, options }) => membershipOf(event, options?.isRejected ?? false) === 'invite').map((i) => i.event.eventID);
    const [stored, references, redactions, transactions, storedInvites] = await Promise.all([
      this.tables.events.bulkSelectEventsByID(tx, [...lookups]),
      this.tables.previousEvents.bulkSelectPreviousEventReferences(tx, [...ids], roomOf),
      this.tables.redactions.bulkSelectRedactionInfoByEventsBeingRedacted(tx, [...lookups]),
      Promise.all(keys.map(async (k) => [transactionKeyOf(k), await this.transactionEventID(tx, k)] as const)),
      invites.length > 0 ? this.tables.invites.bulkSelectStoredInviteIDs(tx, invites) : new Set<string>(),
    ]);
    const sent = new Map<string, string>();
    for (const [k, id] of transactions) if (id !== undefined) sent.set(k, id);
    await this.dropUncommittedRedactions(tx, stored, redactions);
    return { rooms: rooms.rooms, versions: rooms.versions, stored, references, redactions, transactions: sent, storedInvites };
  }

  /**
   * Without atomic transactions, a call records redactions (and applies them) before its rooms' commits; a call that
   * then lost its commit to another writer leaves records whose redaction events are not stored. Those count for
   * nothing: the retry, or whichever call stores the redaction, records and applies it again.
   */
  async dropUncommittedRedactions(tx: Tx, stored: ReadonlyMap<string, unknown>, redactions: Map<string, RedactionInfo>): Promise<void> {
    if (this.uow.atomicTransactions) return;
    const unknown = [...new Set([...redactions.values()].map((r) => r.redactionEventID).filter((id) => !stored.has(id)))];
    if (unknown.length === 0) return;
    const found = await this.tables.events.bulkSelectEventsByID(tx, unknown);
    for (const [target, info] of redactions) if (!stored.has(info.redactionEventID) && !found.has(info.redactionEventID)) redactions.delete(target);
  }

  async transactionEventID(tx: Tx, key: TransactionKey): Promise<string | undefined> {
    return (await this.tables.transactions.selectTransactionEventIDIfAny(tx, key)) ?? undefined;
  }

  /**
   * Checks every event as `appendEvent` would, in order, from what was read and the events before it in the call.
   * Returns the rooms the call creates, with their versions. Throws the first refusal, with its `eventIndex`.
   */
  admit(inputs: readonly AppendInput[], reads: Reads): Map<string, string> {
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

  /**
   * Locks the call's rooms among `roomNIDs` (in room NID order, so that two calls over the same rooms cannot
   * deadlock) and reads their latest events, named from the cache where it can.
   */
  async lockRooms(
    tx: Tx, inputs: readonly AppendInput[], roomNIDs: ReadonlyMap<string, RoomNID>,
  ): Promise<Map<RoomNID, { held: LatestEvents; latest: { eventNID: EventNID; eventID: string }[] }>> {
    const order = [...new Set(inputs.flatMap(({ event }) => roomNIDs.get(event.roomID) ?? []))].sort((a, b) => a - b);
    const held = await Promise.all(order.map((nid) => this.tables.rooms.selectLatestEventsNIDsForUpdate(tx, nid).catch((e: unknown) => {
      if (!(e instanceof NotFoundError)) throw e;
      // Purged since this call found it (RoomserverDatabase.purgeRoom): forgotten here, and the call starts again.
      for (const [roomID, roomNID] of roomNIDs) if (roomNID === nid) this.nids.evictRoom(roomID, roomNID);
      throw new ConcurrentUpdateError(`room NID ${nid} was purged while this call was appending to it`);
    })));
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
  async readMemberships(
    tx: Tx, inputs: readonly AppendInput[], roomNIDs: ReadonlyMap<string, RoomNID>, stateKeys: ReadonlyMap<string, EventStateKeyNID>,
    created: ReadonlySet<EventStateKeyNID> = new Set(),
  ): Promise<Map<RoomNID, { memberships: Map<EventStateKeyNID, MembershipRow | undefined>; invites: Map<EventStateKeyNID, string[]> }>> {
    const targets = new Map<RoomNID, Set<EventStateKeyNID>>();
    for (const { event, options } of inputs) {
      const nid = roomNIDs.get(event.roomID);
      if (nid === undefined) continue;
      if (!targets.has(nid)) targets.set(nid, new Set());
      if (membershipOf(event, options?.isRejected ?? false) !== undefined) targets.get(nid)!.add(stateKeys.get(event.stateKey!)!);
    }
    return new Map(await Promise.all([...targets].map(async ([nid, users]) => {
      const list = [...users].filter((u) => !created.has(u));
      const [read, invites] = list.length === 0 ? [new Map<EventStateKeyNID, MembershipRow>(), new Map<EventStateKeyNID, string[]>()] : await Promise.all([
        this.tables.membership.bulkSelectMembershipsForUpdate(tx, nid, list),
        this.tables.invites.bulkSelectActiveInvites(tx, nid, list),
      ]);
      return [nid, { memberships: new Map([...users].map((u) => [u, read.get(u)])), invites }] as const;
    })));
  }

  /**
   * The stored events (outside the call) that applying the call's redactions needs: the targets of its redaction
   * events, and the redactions already stored against its events. Read only when there are any.
   */
  /** The stored events the call's redaction events redact, read ahead (see redactionEventsNeeded); none missing counts. */
  redactedEventsAhead(tx: Tx, inputs: readonly AppendInput[]): Promise<StoredEvent[]> | undefined {
    const inCall = new Set(inputs.map((i) => i.event.eventID));
    const targets = inputs.flatMap(({ event, options }) => {
      const target = options?.isRejected ? undefined : redactedBy(event);
      return target !== undefined && !inCall.has(target) ? [target] : [];
    });
    if (targets.length === 0) return undefined;
    const read = this.loadEvents(tx, targets);
    awaitedLater(read);
    return read;
  }

  async redactionEventsNeeded(tx: Tx, inputs: readonly AppendInput[], reads: Reads, prefetched?: Promise<StoredEvent[]>): Promise<Map<string, RoomEvent>> {
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
    const out = new Map((prefetched ? await prefetched : []).filter((s) => wanted.has(s.event.eventID)).map((s) => [s.event.eventID, s.event]));
    const rest = [...wanted].filter((id) => !out.has(id));
    if (rest.length > 0) for (const s of await this.loadEvents(tx, rest)) out.set(s.event.eventID, s.event);
    return out;
  }
}

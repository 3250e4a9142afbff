import { ConcurrentUpdateError, ConfigError, MissingPrevEventsError, StateConflictError, StorageError } from '../../types/errors.js';
import type { RoomEvent } from '../../types/event.js';
import { asEventStateKeyNID, asStateSnapshotNID, type EventNID, type EventStateKeyNID, type EventTypeNID, type RoomNID } from '../../types/nids.js';
import type { StateEntry } from '../../types/state.js';
import type { RoomserverTables, Tx, UnitOfWork } from '../tables/index.js';
import { checkAgainstState } from './append-auth.js';
import { applyMembership, membershipOf } from './append-memberships.js';
import { NO_CHANGE, Writes, type EventRowRef, type PlanCommitter, type PlannedResult, type Reads, type RoomPlan, type StateDelta } from './append-plan.js';
import { RedactionPlanner } from './append-redactions.js';
import { awaitedLater, ROOM_CLAIM_MS, writePlan } from './append-writer.js';
import { AppendReader, sameEvents } from './append-reads.js';
import { BoundedMap, type NidMaps } from './nid-assigner.js';

export { ROOM_CLAIM_MS };
import { diffStates, RoomGraph, sameState, type ResolutionCaches } from './room-graph.js';
import type { AppendEventResult, StoredEvent, StoreEventOptions } from './roomserver-database.js';
import type { StateResolver } from './state-resolver.js';
import type { StateRef, StateStorage } from './state-storage.js';

/** One event of an `appendEvents` call, with what `appendEvent` takes beside it. */
export interface AppendInput {
  readonly event: RoomEvent;
  readonly options?: StoreEventOptions;
}

/** The room is claimed by another writer: wait a little, then start again (ConcurrentUpdateError's retry). */
export class RoomBusyError extends ConcurrentUpdateError {
  constructor(message: string, readonly until: number) {
    super(message);
  }
}

/** The most events one `appendEvents` call takes (a federation transaction carries 50 PDUs, backfill 100). */
export const MAX_APPEND_BATCH = 1000;

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
 * included, and the engine writes the plan itself (a PlanCommitter: each room's part committed at once, which such
 * an engine must provide). Rooms whose documents list appending events (left by a batch an earlier layout of the
 * Cosmos DB driver interrupted, or by a purge's claim) are read as if those events were not stored.
 */
export class EventAppender {
  /** Event NID -> ID of events known to be stored: a room's latest events need no read to be named. */
  private readonly eventIDs = new BoundedMap<EventNID, string>(100_000);
  /** Kept across calls for state resolution (see ResolutionCaches); the event IDs are the map above. */
  private readonly resolution: ResolutionCaches = {
    events: new BoundedMap<string, RoomEvent>(50_000), eventIDs: this.eventIDs,
    typeNames: new BoundedMap(10_000), stateKeyNames: new BoundedMap(200_000),
  };

  constructor(
    private readonly uow: UnitOfWork,
    private readonly tables: RoomserverTables,
    private readonly stateStorage: StateStorage,
    private readonly nids: NidMaps,
    private readonly isLocalUser: (userID: string) => boolean,
    private readonly loadEvents: (tx: Tx, eventIDs: readonly string[]) => Promise<StoredEvent[]>,
    private readonly resolver: StateResolver | undefined,
    private readonly committer?: PlanCommitter,
  ) {
    // Without atomic transactions only the engine knows an order of writes that is crash-safe for it.
    if (!uow.atomicTransactions && !committer) throw new ConfigError('an engine without atomic transactions must bind a PlanCommitter (TOKENS.PlanCommitter) to write the input path\'s plans');
    this.reader = new AppendReader(uow, tables, nids, loadEvents, committer, this.eventIDs);
  }

  /** Everything the input path reads before it plans (see AppendReader). */
  private readonly reader: AppendReader;

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
    // Without atomic transactions, the users' NIDs are looked up with the reads and created after the check.
    const lookingUp = atomic ? undefined : this.nids.lookUpStateKeys(tx, [...userIDs]);
    if (lookingUp) awaitedLater(lookingUp);
    const assign = () => {
      const keys = [...userIDs];
      const nids = [
        this.nids.eventTypes(tx, [...new Set(inputs.map((i) => i.event.type))]),
        lookingUp ? lookingUp.then((lookup) => this.nids.stateKeysCreating(tx, keys, lookup)) : this.nids.stateKeys(tx, keys),
      ] as const;
      awaitedLater(...nids);
      return nids;
    };
    // Where a refused call rolls back (SQL), NIDs are assigned at once, before the check; elsewhere only after it.
    let assigned = atomic ? assign() : undefined;
    const known = await this.reader.knownRooms(tx, inputs);
    // The rooms' locks before every read: statements run in the order issued (SQL), so the reads run once the rooms
    // are held and see what their previous writer committed; all of it goes out at once where the driver pipelines.
    // Without that ordering (Cosmos DB) the reads wait for the rooms' versions, which the final write is conditional on.
    const locking = this.reader.lockRooms(tx, inputs, known.rooms);
    awaitedLater(locking);
    if (!atomic) {
      const held = await locking;
      const now = Date.now();
      for (const [roomNID, l] of held) {
        if ((l.held.claimedUntil ?? 0) > now) throw new RoomBusyError(`room NID ${roomNID} is being written by another writer`, l.held.claimedUntil!);
      }
    }
    const ahead = this.reader.writeAhead(tx, inputs, known.rooms, locking);
    if (ahead) awaitedLater(ahead);
    // Without atomic transactions, the events the call's redactions redact are read with the rest, not after.
    const prefetched = atomic ? undefined : this.reader.redactedEventsAhead(tx, inputs);
    const reading = this.reader.read(tx, inputs, known);
    // Where NIDs wait for the check (no atomic transactions), the memberships to change are read with the rest all
    // the same when their users' NIDs are known already.
    const knownKeys = atomic ? undefined : this.reader.knownStateKeys([...userIDs]);
    const readingMemberships = knownKeys && this.reader.readMemberships(tx, inputs, known.rooms, knownKeys);
    if (readingMemberships) awaitedLater(readingMemberships);
    let newRooms: Map<string, string> | undefined;
    if (!atomic) {
      newRooms = this.reader.admit(inputs, await reading);
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
        : reading.then(async (r) => {
          const fresh = new Set(inputs.map((i) => i.event.eventID).filter((id) => !r.stored.has(id))).size;
          // The NID the event's row was written ahead under (see writeAhead), if it is new.
          const early = fresh === 1 ? await ahead?.catch(() => undefined) : undefined;
          return early !== undefined ? [early] : this.tables.events.reserveEventNIDs!(tx, fresh);
        }),
      readingMemberships ?? stateKeysP.then(async (keys) => {
        // A user whose NID this call created has no membership or invite anywhere yet: nothing to read.
        const absent = (await lookingUp)?.absent ?? [];
        return this.reader.readMemberships(tx, inputs, known.rooms, keys, new Set([...absent].map((k) => keys.get(k)!)));
      }),
    ]);
    newRooms ??= this.reader.admit(inputs, reads);
    const roomNIDs = new Map(reads.rooms);
    const versions = new Map(reads.versions);
    if (newRooms.size > 0) {
      const created = new Map(await Promise.all([...newRooms].map(async ([id, version]) => [id, await this.nids.room(tx, id, version)] as const)));
      for (const [id, nid] of created) {
        roomNIDs.set(id, nid);
        versions.set(nid, newRooms.get(id)!);
      }
      const [lockedNew, membershipsNew] = await Promise.all([
        this.reader.lockRooms(tx, inputs, created), this.reader.readMemberships(tx, inputs, created, stateKeys),
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
    return this.applyAndWrite(tx, inputs, reads, { roomNIDs, rooms, types, stateKeys, reserved, prefetched });
  }

  /**
   * Refuses the call as `append` would, without writing anything: what a caller that appends a call in parts (see
   * PlanCommitter) asks first, so that a refused event still refuses the whole call.
   */
  async check(tx: Tx, inputs: readonly AppendInput[]): Promise<void> {
    this.reader.admit(inputs, await this.reader.read(tx, inputs, await this.reader.knownRooms(tx, inputs)));
  }

  // ---- Applying in memory ----

  private async applyAndWrite(tx: Tx, inputs: readonly AppendInput[], reads: Reads, ready: {
    roomNIDs: Map<string, RoomNID>; rooms: Map<RoomNID, RoomPlan>; types: Map<string, EventTypeNID>;
    stateKeys: Map<string, EventStateKeyNID>; reserved: readonly EventNID[]; prefetched?: Promise<StoredEvent[]>;
  }): Promise<AppendEventResult[]> {
    const { roomNIDs, rooms, types, stateKeys, reserved } = ready;
    const inCall = new Map<string, RoomEvent>();
    for (const { event } of inputs) if (!inCall.has(event.eventID)) inCall.set(event.eventID, event);
    const graph = new RoomGraph(tx, this.tables, this.resolver, this.loadEvents, inCall, this.resolution);
    graph.addStored(reads.stored);
    const redactions = new RedactionPlanner(tx, this.nids, graph, reads.redactions, await this.reader.redactionEventsNeeded(tx, inputs, reads, ready.prefetched));
    const writes = new Writes();
    const rows = new Map<string, EventRowRef>();
    for (const [id, s] of reads.stored) rows.set(id, { eventNID: s.eventNID, roomNID: s.roomNID, stateBefore: s.stateSnapshotNID });
    /** The rows the call inserts, by their reference. */
    const newRows = new Map<EventRowRef, Writes['rows'][number]>();
    const newEvents = new Map<string, { event: RoomEvent; eventNID: EventNID }>();
    // References from the stored events, then from each event of the batch as it is applied.
    // An event named by an event an interrupted batch stored without applying it (an appending one) is not referenced.
    const appending = new Set([...rooms.values()].flatMap((r) => [...r.appending]));
    const referenced = new Set([...reads.references].filter(([, nids]) => nids.some((n) => !appending.has(n))).map(([id]) => id));
    const eventOf = (id: string) => (rows.has(id) ? inCall.get(id) : undefined);
    let nextNID = 0;

    const results: PlannedResult[] = [];
    for (let i = 0; i < inputs.length; i++) {
      try {
        const { event, options = {} } = inputs[i]!;
        const room = rooms.get(roomNIDs.get(event.roomID)!)!;
        const isRejected = options.isRejected ?? false;
        const softFailed = !isRejected && (options.isSoftFailed ?? false);
        const eventTypeNID: EventTypeNID = types.get(event.type)!;
        const eventStateKeyNID = event.stateKey === undefined ? asEventStateKeyNID(0) : stateKeys.get(event.stateKey)!;
        // Asked before this event's own prev_events count, so that an event naming itself is not referenced.
        const isReferenced = referenced.has(event.eventID);
        let node = graph.nodes.get(event.eventID);
        let row = rows.get(event.eventID);
        const duplicate = node !== undefined && row !== undefined;
        if (node && row) {
          // Stored already: done, unless it is stored without state (an outlier), stored rejected and now accepted, or
          // stored by an interrupted batch that did not apply it.
          const accepts = node.isRejected && !isRejected;
          const pending = room.appending.has(node.eventNID) && !room.latest.some((l) => l.eventNID === node!.eventNID) && !isReferenced;
          if (!accepts && !pending && (node.before !== 0 || isRejected)) {
            const after = node.before === 0 ? node.before : (await graph.after(room.state, event.eventID))!;
            results.push({
              room, stateAtEvent: { ...node.own, isRejected: node.isRejected }, before: node.before, after, duplicate, applied: false, delta: NO_CHANGE,
            });
            continue;
          }
          if (accepts) {
            node.isRejected = false;
            node.after = undefined;
            writes.accepted.push({ eventNID: node.eventNID, eventID: event.eventID });
          }
        } else {
          const eventNID = reserved[nextNID++];
          // The reservation counted one stored event more than the existence check saw: another writer's (storeEvent
          // holds no room lock) landed between the two. The call starts again and finds it stored.
          if (eventNID === undefined) throw new ConcurrentUpdateError(`event ${event.eventID} was stored by another writer meanwhile`);
          row = { eventNID, roomNID: room.roomNID, stateBefore: asStateSnapshotNID(0) };
          rows.set(event.eventID, row);
          node = graph.add({ eventID: event.eventID, eventNID, roomNID: room.roomNID, before: 0 as StateRef, isRejected, own: { eventTypeNID, eventStateKeyNID, eventNID } });
          newEvents.set(event.eventID, { event, eventNID });
          if (options.transaction) writes.transactions.push({ key: options.transaction, eventID: event.eventID });
          writes.json.set(eventNID, event.json);
          const inserted = {
            row: {
              eventNID, roomNID: room.roomNID, eventTypeNID, eventStateKeyNID, eventID: event.eventID,
              authEventNIDs: options.authEventNIDs ?? [], depth: event.depth, isRejected,
            },
            ref: row,
          };
          writes.rows.push(inserted);
          newRows.set(row, inserted);
        }
        if (!writes.eventNIDs.has(room.roomNID)) writes.eventNIDs.set(room.roomNID, new Set());
        writes.eventNIDs.get(room.roomNID)!.add(row.eventNID);

        // The state before the event: supplied, else from its prev events (the room's current state when they are
        // exactly its forward extremities). A rejected event keeps whatever can be known, and nothing else.
        let before: StateRef = node.before;
        if (before === 0 || !duplicate) {
          if (options.stateBefore !== undefined) before = await graph.suppliedState(room.state, options.stateBefore);
          else if (room.current !== 0 && sameEvents(event.prevEventIDs, room.latest)) before = room.current;
          else if (!isRejected) before = await graph.stateFromPrevEvents(room.state, room.roomVersion, event);
          else before = await graph.stateFromPrevEvents(room.state, room.roomVersion, event).catch((e: unknown) => {
            if (e instanceof MissingPrevEventsError || e instanceof StateConflictError) return 0 as StateRef;
            throw e;
          });
          node.before = before;
          node.after = undefined;
          row.stateBefore = before;
          if (!newRows.has(row)) writes.stateUpdates.push(row);
        }
        const auth = options.checkAuth ? await checkAgainstState(tx, this.nids, graph, room.state, room.roomVersion || '1', event, before) : undefined;
        const checked = auth ? { auth } : {};
        const own: StateEntry = { eventTypeNID, eventStateKeyNID, eventNID: row.eventNID };
        const stateAtEvent = { ...own, isRejected };
        const after = before === 0 ? before : (await graph.after(room.state, event.eventID))!;
        if (isRejected || softFailed) {
          // Rejected: in no state, never an extremity. Soft-failed: its state is kept, but it moves nothing.
          results.push({ room, stateAtEvent, before, after, duplicate, applied: false, delta: NO_CHANGE, ...checked });
          continue;
        }
        for (const prev of event.prevEventIDs) {
          writes.edges.set(`${prev}\u0000${row.eventNID}`, { previousEventID: prev, eventNID: row.eventNID });
          referenced.add(prev);
        }
        const redaction = await redactions.handle(event, room, writes, eventOf, (id) => rows.get(id));

        // Forward extremities as Dendrite's calculateLatest: those the event names go; the event joins them unless a
        // stored event names it already (and some extremity is left). Supplied state that rewrites the room replaces them.
        const rewritten = options.stateBefore !== undefined && (options.rewritesState ?? false);
        const prevIDs = new Set(event.prevEventIDs);
        const kept = rewritten ? [] : room.latest.filter((l) => !prevIDs.has(l.eventID));
        const latest = isReferenced && kept.length > 0 ? kept : [...kept, { eventNID: row.eventNID, eventID: event.eventID }];
        const oldCurrent = room.current;
        let current = oldCurrent;
        if (latest.length === 1 && latest[0]!.eventNID === row.eventNID) current = after;
        else if (!sameEvents(latest.map((l) => l.eventID), room.latest)) current = await this.stateAcross(graph, room, latest);
        const delta = await this.applyCurrentState(tx, graph, room, { event, own, before, after, oldCurrent, current, rewritten }, writes, results.length, reads.storedInvites, stateKeys);
        room.latest = latest;
        room.current = current;
        room.moved = true;
        // Sent to output as the room moves (Dendrite's last_event_sent and sent_to_output): the result is that output.
        room.lastEventSentNID = row.eventNID;
        const newRow = newRows.get(row);
        if (newRow) newRow.row = { ...newRow.row, sentToOutput: true };
        else writes.sent.push(row.eventNID);
        results.push({ room, stateAtEvent, before, after, duplicate, applied: true, delta, ...checked, ...(redaction ? { redaction } : {}) });
      } catch (e) {
        // A refusal while planning (no state for the event, a conflict no resolver settles) names the event's index.
        if (e instanceof StorageError && e.eventIndex === undefined) e.eventIndex = i;
        throw e;
      }
    }
    await (this.committer ? this.committer.writePlan(tx, rooms, writes) : writePlan(tx, this.uow, this.tables, rooms, writes));
    const learned = [...newEvents.values()];
    this.uow.afterCommit(tx, () => {
      for (const { event, eventNID } of learned) this.eventIDs.set(eventNID, event.eventID);
      graph.learn();
    });
    return results.map((r, i) => ({
      roomNID: r.room.roomNID,
      duplicate: r.duplicate,
      stateAtEvent: { ...r.stateAtEvent, beforeStateSnapshotNID: r.room.state.nid(r.before) },
      stateAfterSnapshotNID: r.room.state.nid(r.after),
      applied: r.applied,
      retiredInviteIDs: writes.retiredBy.get(i) ?? [],
      stateDelta: r.delta,
      ...(r.auth ? { auth: r.auth } : {}),
      ...(r.redaction ? { redaction: r.redaction } : {}),
    }));
  }

  /** The current state across several forward extremities: the states after each, combined. */
  private async stateAcross(graph: RoomGraph, room: RoomPlan, latest: readonly { eventID: string }[]): Promise<StateRef> {
    await graph.ensure(latest.map((l) => l.eventID));
    const states: StateRef[] = [];
    for (const l of latest) {
      const after = await graph.after(room.state, l.eventID);
      // An extremity stored without state (written by a build that allowed it) has nothing to add.
      if (after !== undefined) states.push(after);
    }
    return states.length === 0 ? room.current : graph.combine(room.state, room.roomVersion, states);
  }

  /**
   * What the event did to the room's current state, and the memberships that follow it. Linear (the event's state
   * before was the current state, and the state after it is the new one): the event's own entry, and its own
   * membership. Otherwise (a fork, a merge, a resolution, supplied state): the two states compared, and every member
   * event added or removed applied, local or remote.
   */
  private async applyCurrentState(tx: Tx, graph: RoomGraph, room: RoomPlan, at: {
    event: RoomEvent; own: StateEntry; before: StateRef; after: StateRef; oldCurrent: StateRef; current: StateRef; rewritten: boolean;
  }, writes: Writes, resultIndex: number, storedInvites: Set<string>, stateKeys: Map<string, EventStateKeyNID>): Promise<StateDelta> {
    const { event, own, oldCurrent, current, rewritten } = at;
    if (sameState(oldCurrent, current)) return NO_CHANGE;
    if (!rewritten && sameState(at.before, oldCurrent) && sameState(at.after, current)) {
      if (own.eventStateKeyNID === 0) return NO_CHANGE;
      const replaced = oldCurrent === 0 ? 0 : await room.state.lookup(oldCurrent, own);
      const membership = membershipOf(event, false);
      if (membership !== undefined) {
        await this.ensureMemberships(tx, room, [own.eventStateKeyNID]);
        applyMembership(room, own.eventStateKeyNID, this.isLocalUser(event.stateKey!), {
          event, eventNID: own.eventNID, targetUserNID: own.eventStateKeyNID, senderUserNID: stateKeys.get(event.sender)!,
        }, writes, resultIndex, storedInvites);
      }
      return { added: [own], removed: replaced === 0 || replaced === own.eventNID ? [] : [{ ...own, eventNID: replaced as EventNID }], rewritten };
    }
    const [was, now] = await Promise.all([oldCurrent === 0 ? new Float64Array(0) : room.state.packed(oldCurrent), room.state.packed(current)]);
    const { added, removed } = diffStates(was, now);
    const memberType = (await this.nids.eventTypes(tx, ['m.room.member'])).get('m.room.member')!;
    const addedMembers = added.filter((e) => e.eventTypeNID === memberType);
    const removedMembers = removed.filter((e) => e.eventTypeNID === memberType && !addedMembers.some((a) => a.eventStateKeyNID === e.eventStateKeyNID));
    if (addedMembers.length + removedMembers.length > 0) {
      const events = await graph.eventsByNID([...addedMembers, ...removedMembers].map((e) => e.eventNID));
      const senders = await this.nids.stateKeys(tx, [...new Set([...events.values()].map((e) => e.sender))]);
      await this.ensureMemberships(tx, room, [...addedMembers, ...removedMembers].map((e) => e.eventStateKeyNID));
      for (const e of addedMembers) {
        const member = events.get(e.eventNID)!;
        applyMembership(room, e.eventStateKeyNID, this.isLocalUser(member.stateKey!), {
          event: member, eventNID: e.eventNID, targetUserNID: e.eventStateKeyNID, senderUserNID: senders.get(member.sender)!,
        }, writes, resultIndex, storedInvites);
      }
      for (const e of removedMembers) {
        const member = events.get(e.eventNID);
        applyMembership(room, e.eventStateKeyNID, member ? this.isLocalUser(member.stateKey!) : false, undefined, writes, resultIndex, storedInvites);
      }
    }
    return { added, removed, rewritten };
  }

  /** Reads the membership rows and active invites of users the room's plan has not read yet. */
  private async ensureMemberships(tx: Tx, room: RoomPlan, users: readonly EventStateKeyNID[]): Promise<void> {
    const missing = [...new Set(users)].filter((u) => !room.memberships.has(u));
    if (missing.length === 0) return;
    const [read, invites] = await Promise.all([
      this.tables.membership.bulkSelectMembershipsForUpdate(tx, room.roomNID, missing),
      this.tables.invites.bulkSelectActiveInvites(tx, room.roomNID, missing),
    ]);
    for (const u of missing) {
      room.memberships.set(u, read.get(u));
      room.invites.set(u, invites.get(u) ?? []);
    }
  }

}

import { AsyncLocalStorage } from 'node:async_hooks';
import { inject, injectable } from 'inversify';
import { TOKENS } from '../../di/tokens.js';
import {
  ConcurrentUpdateError, ConflictError, InvalidInputError, MissingEventError, MissingStateError, NotFoundError, StorageError,
} from '../../types/errors.js';
import { checkRoomEvent, parseEvent, type RoomEvent } from '../../types/event.js';
import {
  checkAlias, checkBoolean, checkCount, checkEventID, checkFunction, checkIdentifier, checkList, checkNID, checkNIDList, checkRoomID,
  checkStateKey, checkString, checkUserID, serverNameOf,
} from '../../types/input.js';
import { membershipStateFromString, MembershipState } from '../../types/membership.js';
import { preview } from '../../types/input.js';
import {
  asEventNID, asEventStateKeyNID, asStateSnapshotNID, type EventNID, type EventStateKeyNID, type EventTypeNID, type RoomNID,
  type StateBlockNID, type StateSnapshotNID,
} from '../../types/nids.js';
import type { StateAtEvent, StateBlockNIDList, StateEntry, StateEntryList, StateKeyTuple } from '../../types/state.js';
import type { RoomInfo, RoomserverTables, TransactionKey, Tx, UnitOfWork } from '../tables/index.js';
import { extractContentValue } from './content-value.js';
import { EventAppender, MAX_APPEND_BATCH, ROOM_CLAIM_MS, RoomBusyError, type AppendInput } from './event-appender.js';
import { LatestEventsUpdater } from './latest-events-updater.js';
import { MembershipUpdater } from './membership-updater.js';
import { NidMaps } from './nid-assigner.js';
import { redactEventJSON } from './redaction.js';
import { compareCodePoints } from '../../matrix/canonical-json.js';
import { StateStorage } from './state-storage.js';
import type { StateDelta } from './append-plan.js';
import type { StorageOptions } from './storage-options.js';

export interface StoredEvent {
  readonly eventNID: EventNID;
  readonly event: RoomEvent;
}

export interface StoreEventOptions {
  /** The client transaction that sent the event; a second event under the same key is a ConflictError. */
  readonly transaction?: TransactionKey;
  readonly authEventNIDs?: readonly EventNID[];
  /**
   * The event failed its auth checks: it is stored and flagged, but is in no state, never a forward extremity, and
   * moves no membership and applies no redaction. Storing it again without the flag accepts it.
   */
  readonly isRejected?: boolean;
  /**
   * appendEvent: the event passed its auth checks against its own state but not against the room's current state
   * (soft failure): its state before is stored, but it is not a forward extremity and changes nothing current.
   */
  readonly isSoftFailed?: boolean;
  /**
   * appendEvent: the state before the event, as the IDs of its state events (each stored already, as outliers
   * perhaps, or earlier in the same call): from /state_ids, send_join, backfill, or the caller's own resolution. It
   * wins over the state the store would compute from the event's prev events, and is stored as given (rejected
   * events among it are left out). Needed when the prev events are not stored or stateless.
   */
  readonly stateBefore?: readonly string[];
  /**
   * appendEvent, with `stateBefore`: the event replaces the room's forward extremities and current state (a join or
   * rejoin with state from send_join), as Dendrite's rewritesState.
   */
  readonly rewritesState?: boolean;
}

export interface StoreEventResult {
  readonly roomNID: RoomNID;
  readonly stateAtEvent: StateAtEvent;
  /** True when the event was already stored: nothing new was written but what an interrupted call left undone. */
  readonly duplicate: boolean;
  /** Set when storing this event applied a redaction: the redaction event and the ID of the event it redacted. */
  readonly redaction?: { readonly redactionEvent: RoomEvent; readonly redactedEventID: string };
}

export interface AppendEventResult extends StoreEventResult {
  /** The state after the event (before it, plus the event itself if it is an accepted state event). */
  readonly stateAfterSnapshotNID: StateSnapshotNID;
  /**
   * True when this call input the event into the room: its forward extremities recalculated and its current state
   * moved. False for a duplicate (an earlier call did it), a rejected and a soft-failed event.
   */
  readonly applied: boolean;
  readonly retiredInviteIDs: readonly string[];
  /** How the room's current state changed: what a sync or federation-sender consumer needs. */
  readonly stateDelta: StateDelta;
}

export interface StateContent {
  readonly roomID: string;
  readonly eventType: string;
  readonly stateKey: string;
  readonly contentValue: string;
}

/** How many times an updater is re-run when another writer changed the room first (Cosmos DB only). */
const MAX_UPDATE_ATTEMPTS = 20;

/** An event's row as the write path needs it, and that it was found already stored. */
type FoundEvent = { eventNID: EventNID; roomNID: RoomNID; stateSnapshotNID: StateSnapshotNID; duplicate: boolean };

const storedInAnotherRoom = (eventID: string) =>
  new ConflictError(`event ${eventID} is already stored in another room; event IDs are unique across rooms`);

// Input checks of the room server's API (the string rule itself is in types/input.ts).
const checkEventIDs = (what: string, ids: unknown) => checkList<string>(what, ids, checkEventID);

function checkStateKeyTuple(what: string, t: unknown): StateKeyTuple {
  if (typeof t !== 'object' || t === null) throw new InvalidInputError(`${what} must be a (type NID, state key NID) tuple, got ${preview(t)}`);
  const tuple = t as StateKeyTuple;
  checkNID(`${what}.eventTypeNID`, tuple.eventTypeNID);
  checkNID(`${what}.eventStateKeyNID`, tuple.eventStateKeyNID);
  return tuple;
}

/** A state entry; its event NID may be 0 (a tombstone) where `tombstoneAllowed`. */
function checkStateEntry(what: string, e: unknown, tombstoneAllowed: boolean): StateEntry {
  const entry = checkStateKeyTuple(what, e) as StateEntry;
  checkNID(`${what}.eventNID`, entry.eventNID, tombstoneAllowed);
  return entry;
}

function checkTypeAndKey(what: string, t: unknown): void {
  if (typeof t !== 'object' || t === null) throw new InvalidInputError(`${what} must be { eventType, stateKey }, got ${preview(t)}`);
  const { eventType, stateKey } = t as { eventType: unknown; stateKey: unknown };
  checkIdentifier(`${what}.eventType`, eventType);
  checkStateKey(stateKey, `${what}.stateKey`);
}

function checkTransactionKey(what: string, key: unknown): TransactionKey {
  if (typeof key !== 'object' || key === null) throw new InvalidInputError(`${what} must be { transactionID, sessionID, userID }, got ${preview(key)}`);
  const k = key as TransactionKey;
  checkIdentifier(`${what}.transactionID`, k.transactionID);
  checkCount(`${what}.sessionID`, k.sessionID);
  checkUserID(`${what}.userID`, k.userID);
  return k;
}

function checkStoreEventOptions(options: unknown): StoreEventOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidInputError(`options must be an object, got ${preview(options)}`);
  const o = options as StoreEventOptions;
  if (o.transaction !== undefined) checkTransactionKey('options.transaction', o.transaction);
  if (o.authEventNIDs !== undefined) checkNIDList('options.authEventNIDs', o.authEventNIDs);
  if (o.isRejected !== undefined) checkBoolean('options.isRejected', o.isRejected);
  if (o.isSoftFailed !== undefined) checkBoolean('options.isSoftFailed', o.isSoftFailed);
  if (o.stateBefore !== undefined) checkEventIDs('options.stateBefore', o.stateBefore);
  if (o.rewritesState !== undefined) {
    checkBoolean('options.rewritesState', o.rewritesState);
    if (o.rewritesState && o.stateBefore === undefined) throw new InvalidInputError('options.rewritesState needs options.stateBefore: the state the event rewrites the room to');
  }
  return o;
}

/** An input of appendEvents that carries options: `{ event, options }` rather than a bare event. */
function isAppendInput(x: unknown): x is AppendInput {
  return typeof x === 'object' && x !== null && 'event' in x && !('eventID' in x);
}

/** The version a caller names for a room it creates: a room version string (issue of the registry: types/room-versions). */
const checkRoomVersion = (v: unknown) => checkString('room version', v);

/**
 * The room server's storage operations, written once over the tables for every driver.
 *
 * Every write is ordered to be crash-safe without a transaction (see DESIGN.md): NID mappings, event JSON, state
 * blocks and snapshots are written first (immutable or idempotent), and one last write makes the result visible
 * (the event row; the room's latest-events pointer). A retry of an interrupted call finishes the job. The SQL
 * drivers wrap each sequence in a real transaction as well.
 */
@injectable()
export class RoomserverDatabase {
  private readonly nids: NidMaps;
  private readonly appender: EventAppender;
  private readonly enclosing = new AsyncLocalStorage<Tx>();

  constructor(
    @inject(TOKENS.UnitOfWork) readonly uow: UnitOfWork,
    @inject(TOKENS.RoomserverTables) readonly tables: RoomserverTables,
    @inject(TOKENS.StateStorage) readonly state: StateStorage,
    @inject(TOKENS.StorageOptions) private readonly options: StorageOptions,
  ) {
    this.nids = new NidMaps(tables, uow);
    this.appender = new EventAppender(uow, tables, state, this.nids, (id) => this.isLocalUser(id), (tx, ids) => this.eventsByID(tx, ids), options.stateResolver);
  }

  /**
   * The transaction a call runs in: the one an enclosing updater's callback holds, so that Database calls made
   * inside `updateLatestEvents` or `updateMembership` join it (same transaction, same room lock: on SQLite's single
   * writer a second transaction would wait for the first forever), else a new one.
   */
  private transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const open = this.enclosing.getStore();
    if (open) return fn(open);
    return this.uow.transaction((tx) => this.enclosing.run(tx, () => fn(tx)));
  }

  /** Reads see the enclosing updater's writes. */
  private get auto(): Tx {
    return this.enclosing.getStore() ?? this.uow.autocommit;
  }

  /**
   * Runs `attempt` again while it fails with ConcurrentUpdateError: another writer moved the room between our
   * read and our conditional write (Cosmos DB only; the SQL drivers lock instead).
   */
  private async retryOnConcurrentUpdate<T>(attempt: () => Promise<T>): Promise<T> {
    const started = Date.now();
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (e) {
        if (e instanceof RoomBusyError && Date.now() - started < 2 * ROOM_CLAIM_MS) {
          // Another writer holds the room: wait for it a little (not counted as an attempt), then look again.
          n--;
          await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
          continue;
        }
        if (!(e instanceof ConcurrentUpdateError) || n >= MAX_UPDATE_ATTEMPTS) throw e;
        // Writers that lost to each other do not all come back at the same moment.
        await new Promise((r) => setTimeout(r, Math.random() * 5 * n));
      }
    }
  }

  private readonly resolveUser = (tx: Tx, userID: string) => this.nids.stateKey(tx, userID);

  // ---- Storing events ----

  /**
   * Stores an event (idempotent: a duplicate returns the stored NID and state, and finishes whatever an interrupted
   * call left undone). The state before a new event is unknown (0) until `setState` or `appendEvent` sets it.
   */
  async storeEvent(event: RoomEvent, options: StoreEventOptions = {}): Promise<StoreEventResult> {
    checkRoomEvent(event);
    checkStoreEventOptions(options);
    return this.transaction(async (tx) => {
      const { roomNID, found } = await this.admitEvent(tx, event, options);
      return this.storeEventIn(tx, roomNID, event, options, found);
    });
  }

  /**
   * Looks up everything that can refuse an event before anything is written, then creates its room if it is new:
   * a refused event leaves nothing behind, not even a room, on an engine with no transaction to roll back (Cosmos
   * DB). Returns the room and the event's row if it is stored already.
   */
  private async admitEvent(tx: Tx, event: RoomEvent, options: StoreEventOptions): Promise<{ roomNID: RoomNID; found: FoundEvent | undefined; roomVersion: string }> {
    const [knownRoomNID, found, transactionEventID] = await Promise.all([
      this.nids.knownRoom(tx, event.roomID),
      this.findEvent(tx, event.eventID),
      options.transaction ? this.transactionEventID(tx, options.transaction) : null,
    ]);
    if (found && found.roomNID !== knownRoomNID) throw storedInAnotherRoom(event.eventID);
    if (transactionEventID !== null && transactionEventID !== event.eventID) {
      throw new ConflictError(`client transaction ${preview(options.transaction!.transactionID)} already sent event ${transactionEventID}`);
    }
    if (knownRoomNID === undefined) {
      // A new room takes the version the event was read by: a create event's own, or the one its caller gave.
      if (event.roomVersion === undefined) {
        throw new InvalidInputError(`room ${event.roomID} is not stored yet and the event does not say its room version: store the room's ` +
          'create event first, or read the event with its room version (parseEvent(json, { roomVersion }), parsePDU)');
      }
      const roomNID = await this.nids.room(tx, event.roomID, event.roomVersion);
      return { roomNID, found, roomVersion: event.roomVersion };
    }
    const roomVersion = await this.nids.roomVersion(tx, knownRoomNID);
    // "" is a room a build before versions were required stored without one: it takes whatever comes.
    if (event.roomVersion !== undefined && roomVersion !== '' && event.roomVersion !== roomVersion) {
      throw new ConflictError(`event ${event.eventID} was read as room version ${event.roomVersion}, but room ${event.roomID} is version ${roomVersion}`);
    }
    return { roomNID: knownRoomNID, found, roomVersion };
  }

  private async storeEventIn(
    tx: Tx, roomNID: RoomNID, event: RoomEvent, options: StoreEventOptions, found: FoundEvent | undefined,
  ): Promise<StoreEventResult> {
    const t = this.tables;
    const isRejected = options.isRejected ?? false;
    // NIDs of the type, the state key and a fresh event NID do not depend on each other: asked together (one round
    // trip where the driver pipelines). The event NID is reserved only for an event not stored yet; one that loses a
    // race to another writer is simply never used (NIDs need not be dense).
    const [eventTypeNID, eventStateKeyNID, reservedNID] = await Promise.all([
      this.nids.eventType(tx, event.type),
      event.stateKey === undefined ? asEventStateKeyNID(0) : this.nids.stateKey(tx, event.stateKey),
      found ? undefined : t.events.reserveEventNID(tx),
    ]);
    let existing = found;
    if (!existing) {
      const eventNID = reservedNID!;
      if (options.transaction) await t.transactions.insertTransaction(tx, options.transaction, event.eventID);
      // The JSON first, under a NID nobody knows yet; the event row last: it is what makes the event visible.
      await t.eventJSON.insertEventJSON(tx, eventNID, event.json);
      try {
        await t.events.insertEvent(tx, {
          eventNID, roomNID, eventTypeNID, eventStateKeyNID, eventID: event.eventID,
          authEventNIDs: options.authEventNIDs ?? [], depth: event.depth, isRejected,
        });
        existing = { eventNID, roomNID, stateSnapshotNID: asStateSnapshotNID(0), duplicate: false };
      } catch (e) {
        // Another writer stored the same event first; its row wins and our JSON row is never referenced.
        if (!(e instanceof ConflictError)) throw e;
        existing = await this.findEvent(tx, event.eventID);
        if (!existing) throw e;
      }
    }
    if (existing.roomNID !== roomNID) throw storedInAnotherRoom(event.eventID);
    // Written after the event row, and again on a duplicate, so that a retry finishes an interrupted call.
    // The prev_events records and the redaction check do not depend on each other: issued together, so that a
    // driver that pipelines (PostgreSQL) answers them in one round trip.
    const stored = existing;
    const [, redaction] = await Promise.all([
      Promise.all(event.prevEventIDs.map((id) => t.previousEvents.insertPreviousEvent(tx, id, stored.eventNID))),
      isRejected ? undefined : this.handleRedactions(tx, event, roomNID),
    ]);
    return {
      roomNID,
      duplicate: existing.duplicate,
      stateAtEvent: {
        eventTypeNID, eventStateKeyNID, eventNID: existing.eventNID, beforeStateSnapshotNID: existing.stateSnapshotNID, isRejected,
      },
      ...(redaction ? { redaction } : {}),
    };
  }

  private async transactionEventID(tx: Tx, key: TransactionKey): Promise<string | null> {
    try {
      return await this.tables.transactions.selectTransactionEventID(tx, key);
    } catch (e) {
      if (e instanceof NotFoundError) return null;
      throw e;
    }
  }

  private async findEvent(tx: Tx, eventID: string): Promise<FoundEvent | undefined> {
    try {
      return { ...(await this.tables.events.selectEvent(tx, eventID)), duplicate: true };
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  }

  /**
   * Applies a redaction once both it and its target are stored, in the same room: overwrites the target's JSON
   * with its redacted form, then marks the redaction validated (in that order, so a retry re-applies it).
   */
  private async handleRedactions(tx: Tx, event: RoomEvent, roomNID: RoomNID): Promise<StoreEventResult['redaction']> {
    const t = this.tables;
    let info;
    if (event.type === 'm.room.redaction' && event.stateKey === undefined) {
      if (event.redacts === undefined || event.redacts === event.eventID) return undefined;
      await t.redactions.insertRedaction(tx, { redactionEventID: event.eventID, redactsEventID: event.redacts, validated: false });
      info = await t.redactions.selectRedactionInfoByEventBeingRedacted(tx, event.redacts);
    } else {
      info = await t.redactions.selectRedactionInfoByEventBeingRedacted(tx, event.eventID);
    }
    if (!info || info.validated) return undefined;
    const [redactionEvent] = await this.eventsByID(tx, [info.redactionEventID]);
    const [targetEvent] = await this.eventsByID(tx, [info.redactsEventID]);
    if (!redactionEvent || !targetEvent || redactionEvent.event.roomID !== targetEvent.event.roomID) return undefined;
    // A room stored without a version (by an older build) is redacted by the rules of version 1, the default.
    const redacted = redactEventJSON(targetEvent.event.json, redactionEvent.event.json, (await this.nids.roomVersion(tx, roomNID)) || '1');
    await t.eventJSON.insertEventJSON(tx, targetEvent.eventNID, redacted);
    await t.redactions.markRedactionValidated(tx, info.redactionEventID, true);
    return { redactionEvent: redactionEvent.event, redactedEventID: targetEvent.event.eventID };
  }

  /**
   * The linear input path for one event: `appendEvents` with a batch of one. Holds the room's latest events, stores
   * the event, takes the room's current state as the state before it (state resolution across forks is out of
   * scope), stores the state after it, applies a membership change, and finally moves the room's latest events and
   * current state to it: that last write is the commit point. Idempotent: calling it again for the same event
   * finishes an interrupted call and otherwise changes nothing.
   */
  async appendEvent(event: RoomEvent, options: StoreEventOptions = {}): Promise<AppendEventResult> {
    checkRoomEvent(event);
    checkStoreEventOptions(options);
    try {
      const [result] = await this.appendChecked([{ event, options }]);
      return result!;
    } catch (e) {
      // A single event is not a batch: no index to report.
      if (e instanceof StorageError) delete e.eventIndex;
      throw e;
    }
  }

  /**
   * The linear input path for a batch: each event applied in order exactly as `appendEvent` would apply it, and
   * each result what `appendEvent` would have returned, but in one transaction with each room locked once, set-based
   * (see EventAppender). Events of several rooms are grouped by room. An input is an event, or an event with the
   * options `appendEvent` takes. A refused event refuses the whole call, which then writes nothing; the error's
   * `eventIndex` says which input it was. At most MAX_APPEND_BATCH (1,000) events per call.
   */
  async appendEvents(inputs: readonly (RoomEvent | AppendInput)[]): Promise<AppendEventResult[]> {
    checkList('events', inputs);
    const batch = inputs.map((x, index): AppendInput => {
      try {
        const input = isAppendInput(x) ? x : { event: x };
        checkRoomEvent(input.event);
        if (input.options !== undefined) checkStoreEventOptions(input.options);
        return input;
      } catch (e) {
        if (e instanceof StorageError) e.eventIndex = index;
        throw e;
      }
    });
    if (batch.length > MAX_APPEND_BATCH) {
      throw new InvalidInputError(`appendEvents takes at most ${MAX_APPEND_BATCH} events per call, got ${batch.length}`);
    }
    if (batch.length === 0) return [];
    return this.appendChecked(batch);
  }

  private appendChecked(batch: readonly AppendInput[]): Promise<AppendEventResult[]> {
    return this.retryOnConcurrentUpdate(() => this.transaction((tx) => this.appender.append(tx, batch)));
  }

  private isLocalUser(userID: string): boolean {
    try {
      return serverNameOf(userID) === this.options.serverName;
    } catch {
      return false;
    }
  }

  // ---- Updaters ----

  /**
   * Runs `fn` with exclusive access to the room's latest events, in one transaction. On Cosmos DB, where the
   * exclusivity is an ETag condition, `fn` runs again if another writer moved the room first, so it must only
   * write through the updater and idempotent calls.
   */
  async updateLatestEvents<T>(roomNID: RoomNID, fn: (u: LatestEventsUpdater) => Promise<T>): Promise<T> {
    checkNID('room NID', roomNID);
    checkFunction('fn', fn);
    return this.retryOnConcurrentUpdate(() => this.transaction(async (tx) =>
      fn(await LatestEventsUpdater.open(tx, this.tables, this.resolveUser, roomNID, await this.nids.roomVersion(tx, roomNID)))));
  }

  /**
   * Runs `fn` with a membership updater for (room, user), in one transaction. Creates the room (with
   * `roomVersion`) and the user's state key NID if needed.
   */
  async updateMembership<T>(roomID: string, userID: string, local: boolean, roomVersion: string, fn: (m: MembershipUpdater) => Promise<T>): Promise<T> {
    checkRoomID('room ID', roomID);
    checkUserID('user ID', userID);
    checkBoolean('local', local);
    checkRoomVersion(roomVersion);
    checkFunction('fn', fn);
    return this.transaction(async (tx) => {
      const roomNID = await this.nids.room(tx, roomID, roomVersion);
      const userNID = await this.nids.stateKey(tx, userID);
      return fn(await MembershipUpdater.open(tx, this.tables, this.resolveUser, roomNID, userNID, local));
    });
  }

  // ---- State ----

  /** See StateStorage.addState; runs in one transaction. */
  async addState(roomNID: RoomNID, baseBlockNIDs: readonly StateBlockNID[], delta: readonly StateEntry[]): Promise<StateSnapshotNID> {
    checkNID('room NID', roomNID);
    checkNIDList('base block NIDs', baseBlockNIDs);
    checkList('delta', delta, (w, e) => checkStateEntry(w, e, true));
    return this.transaction((tx) => this.state.addState(tx, roomNID, baseBlockNIDs, delta));
  }

  /** Sets the state before an event. */
  async setState(eventNID: EventNID, stateSnapshotNID: StateSnapshotNID): Promise<void> {
    checkNID('event NID', eventNID);
    checkNID('state snapshot NID', stateSnapshotNID);
    return this.transaction((tx) => this.tables.events.updateEventState(tx, eventNID, stateSnapshotNID));
  }

  /** Same length as the input, or MissingEventError / MissingStateError. */
  async stateAtEventIDs(eventIDs: readonly string[]): Promise<StateAtEvent[]> {
    checkEventIDs('event IDs', eventIDs);
    return this.tables.events.bulkSelectStateAtEventByID(this.auto, eventIDs);
  }

  async stateEntriesForEventIDs(eventIDs: readonly string[], excludeRejected = false): Promise<StateEntry[]> {
    checkEventIDs('event IDs', eventIDs);
    checkBoolean('excludeRejected', excludeRejected);
    return this.tables.events.bulkSelectStateEventByID(this.auto, eventIDs, excludeRejected);
  }

  async stateBlockNIDs(snapshotNIDs: readonly StateSnapshotNID[]): Promise<StateBlockNIDList[]> {
    checkNIDList('state snapshot NIDs', snapshotNIDs);
    return this.tables.stateSnapshots.bulkSelectStateBlockNIDs(this.auto, snapshotNIDs);
  }

  async stateEntries(blockNIDs: readonly StateBlockNID[]): Promise<StateEntryList[]> {
    checkNIDList('state block NIDs', blockNIDs);
    return this.state.stateEntriesForTuples(this.auto, blockNIDs, []);
  }

  async stateEntriesForTuples(blockNIDs: readonly StateBlockNID[], tuples: readonly StateKeyTuple[]): Promise<StateEntryList[]> {
    checkNIDList('state block NIDs', blockNIDs);
    checkList('tuples', tuples, checkStateKeyTuple);
    return this.state.stateEntriesForTuples(this.auto, blockNIDs, tuples);
  }

  async loadStateAtSnapshot(snapshotNID: StateSnapshotNID): Promise<StateEntry[]> {
    checkNID('state snapshot NID', snapshotNID);
    return this.state.loadStateAtSnapshot(this.auto, snapshotNID);
  }

  /**
   * The state before an event: the event's snapshot and block list in one read, then the blocks (two round trips
   * on SQL at most, one with the block cache warm). NotFoundError if the event is unknown, MissingStateError if
   * its state is.
   */
  async loadStateAtEvent(eventID: string): Promise<StateEntry[]> {
    checkEventID('event ID', eventID);
    const at = await this.tables.stateSnapshots.selectStateBlockNIDsAtEvent(this.auto, eventID);
    if (at.stateSnapshotNID === 0) throw new MissingStateError(`the state before event ${eventID} is not known (was it input through appendEvent?)`);
    return this.state.loadState(this.auto, at);
  }

  /** The state after an event: before it, plus the event itself if it is an accepted state event. */
  async loadStateAfterEvent(eventID: string): Promise<StateEntry[]> {
    checkEventID('event ID', eventID);
    const [at] = await this.stateAtEventIDs([eventID]);
    const state = await this.loadStateAtSnapshot(at!.beforeStateSnapshotNID);
    if (at!.eventStateKeyNID === 0 || at!.isRejected) return state;
    const others = state.filter((e) => e.eventTypeNID !== at!.eventTypeNID || e.eventStateKeyNID !== at!.eventStateKeyNID);
    return [...others, at!].map(({ eventTypeNID, eventStateKeyNID, eventNID }) => ({ eventTypeNID, eventStateKeyNID, eventNID }))
      .sort((a, b) => a.eventTypeNID - b.eventTypeNID || a.eventStateKeyNID - b.eventStateKeyNID);
  }

  /** The room's current state (read as loadStateAtEvent reads); empty for an unknown room or a stub. */
  async currentState(roomID: string): Promise<StateEntry[]> {
    checkRoomID('room ID', roomID);
    let at;
    try {
      at = await this.tables.stateSnapshots.selectCurrentStateBlockNIDs(this.auto, roomID);
    } catch (e) {
      if (e instanceof NotFoundError) return [];
      throw e;
    }
    return at.stateSnapshotNID === 0 ? [] : this.state.loadState(this.auto, at);
  }

  async snapshotNIDFromEventID(eventID: string): Promise<StateSnapshotNID> {
    checkEventID('event ID', eventID);
    return (await this.tables.events.selectEvent(this.auto, eventID)).stateSnapshotNID;
  }

  // ---- Lookups ----

  async roomInfo(roomID: string): Promise<RoomInfo | null> {
    checkRoomID('room ID', roomID);
    return this.tables.rooms.selectRoomInfo(this.auto, roomID);
  }

  async eventTypeNIDsFor(eventTypes: readonly string[]): Promise<Map<string, EventTypeNID>> {
    checkList('event types', eventTypes, checkIdentifier);
    return this.tables.eventTypes.bulkSelectEventTypeNID(this.auto, eventTypes);
  }

  async eventStateKeyNIDs(stateKeys: readonly string[]): Promise<Map<string, EventStateKeyNID>> {
    checkList('state keys', stateKeys, (w, k) => checkStateKey(k, w));
    return this.tables.eventStateKeys.bulkSelectEventStateKeyNID(this.auto, stateKeys);
  }

  async eventStateKeys(nids: readonly EventStateKeyNID[]): Promise<Map<EventStateKeyNID, string>> {
    checkNIDList('state key NIDs', nids);
    return this.tables.eventStateKeys.bulkSelectEventStateKey(this.auto, nids);
  }

  /**
   * Whether the event is stored rejected (Dendrite's IsEventRejected). NotFoundError if the room does not hold it.
   */
  async isEventRejected(roomNID: RoomNID, eventID: string): Promise<boolean> {
    checkNID('room NID', roomNID);
    checkEventID('event ID', eventID);
    const found = (await this.tables.events.bulkSelectEventsByID(this.auto, [eventID])).get(eventID);
    if (!found || found.roomNID !== roomNID) throw new NotFoundError(`room NID ${roomNID} holds no event ${eventID}`);
    return found.isRejected;
  }

  /**
   * The redaction stored against an event, and whether it was applied (false: pending, because it was not
   * authorised, or its target or its state is not known yet). null when no redaction names the event.
   */
  async redactionOf(eventID: string): Promise<{ redactionEventID: string; applied: boolean } | null> {
    checkEventID('event ID', eventID);
    const info = await this.tables.redactions.selectRedactionInfoByEventBeingRedacted(this.auto, eventID);
    return info ? { redactionEventID: info.redactionEventID, applied: info.validated } : null;
  }

  /** Missing IDs are omitted. */
  async eventNIDs(eventIDs: readonly string[]): Promise<Map<string, EventNID>> {
    checkEventIDs('event IDs', eventIDs);
    return this.tables.events.bulkSelectEventNID(this.auto, eventIDs);
  }

  /** MissingEventError if any NID is missing. */
  async eventIDs(eventNIDs: readonly EventNID[]): Promise<Map<EventNID, string>> {
    checkNIDList('event NIDs', eventNIDs);
    return this.tables.events.bulkSelectEventID(this.auto, eventNIDs);
  }

  /** Events by NID, ascending; missing NIDs skipped. */
  async events(eventNIDs: readonly EventNID[]): Promise<StoredEvent[]> {
    checkNIDList('event NIDs', eventNIDs);
    return this.eventsByNID(this.auto, eventNIDs);
  }

  /** Events by ID, in NID order; unknown IDs skipped. */
  async eventsFromIDs(eventIDs: readonly string[]): Promise<StoredEvent[]> {
    checkEventIDs('event IDs', eventIDs);
    return this.eventsByID(this.auto, eventIDs);
  }

  private async eventsByNID(tx: Tx, eventNIDs: readonly EventNID[]): Promise<StoredEvent[]> {
    // A PDU of room version 3 or later does not carry its ID: the ID (and the room, whose version says where
    // `redacts` lives) come from the event's row, read alongside (one round trip where the driver pipelines).
    const [pairs, rows] = await Promise.all([
      this.tables.eventJSON.bulkSelectEventJSON(tx, eventNIDs),
      this.tables.events.bulkSelectEventIDsAndRooms(tx, eventNIDs),
    ]);
    const versions = await this.nids.roomVersions(tx, [...rows.values()].map((r) => r.roomNID));
    const out: StoredEvent[] = [];
    for (const p of pairs) {
      const row = rows.get(p.eventNID);
      if (!row) continue; // JSON without a row: an event whose storing never committed
      const roomVersion = versions.get(row.roomNID) || undefined;
      // Stored JSON was validated on the way in; a redacted event may exceed 64 KiB with its redacted_because.
      out.push({ eventNID: p.eventNID, event: parseEvent(p.eventJSON, { maxBytes: Infinity, eventID: row.eventID, ...(roomVersion ? { roomVersion } : {}) }) });
    }
    return out;
  }

  private async eventsByID(tx: Tx, eventIDs: readonly string[]): Promise<StoredEvent[]> {
    const nids = await this.tables.events.bulkSelectEventNID(tx, eventIDs);
    return this.eventsByNID(tx, [...nids.values()]);
  }

  /** null if there is no such transaction. */
  async getTransactionEventID(key: TransactionKey): Promise<string | null> {
    checkTransactionKey('transaction', key);
    return this.transactionEventID(this.auto, key);
  }


  /** The room's forward extremities, its current state and the depth for a new event (max depth + 1, or 0). */
  async latestEventIDs(roomNID: RoomNID): Promise<{ eventIDs: string[]; stateSnapshotNID: StateSnapshotNID; depth: number }> {
    checkNID('room NID', roomNID);
    const { eventNIDs, stateSnapshotNID } = await this.tables.rooms.selectLatestEventNIDs(this.auto, roomNID);
    const [ids, depth] = await Promise.all([
      this.tables.events.bulkSelectEventID(this.auto, eventNIDs),
      this.tables.events.selectMaxEventDepth(this.auto, eventNIDs),
    ]);
    return { eventIDs: eventNIDs.map((n) => ids.get(n)!), stateSnapshotNID, depth };
  }

  async getInvitesForUser(roomNID: RoomNID, targetUserNID: EventStateKeyNID) {
    checkNID('room NID', roomNID);
    checkNID('target user NID', targetUserNID);
    return this.tables.invites.selectInviteActiveForUserInRoom(this.auto, targetUserNID, roomNID);
  }

  // ---- Aliases and the room directory ----

  async setRoomAlias(alias: string, roomID: string, creatorUserID: string): Promise<void> {
    checkAlias('alias', alias);
    checkRoomID('room ID', roomID);
    checkUserID('creator user ID', creatorUserID);
    return this.transaction((tx) => this.tables.roomAliases.insertRoomAlias(tx, alias, roomID, creatorUserID));
  }

  async getRoomIDForAlias(alias: string): Promise<string | null> {
    checkAlias('alias', alias);
    return this.tables.roomAliases.selectRoomIDFromAlias(this.auto, alias);
  }

  async getAliasesForRoomID(roomID: string): Promise<string[]> {
    checkRoomID('room ID', roomID);
    return this.tables.roomAliases.selectAliasesFromRoomID(this.auto, roomID);
  }

  async getCreatorIDForAlias(alias: string): Promise<string | null> {
    checkAlias('alias', alias);
    return this.tables.roomAliases.selectCreatorIDFromAlias(this.auto, alias);
  }

  async removeRoomAlias(alias: string): Promise<void> {
    checkAlias('alias', alias);
    return this.transaction((tx) => this.tables.roomAliases.deleteRoomAlias(tx, alias));
  }

  async publishRoom(roomID: string, published: boolean): Promise<void> {
    checkRoomID('room ID', roomID);
    checkBoolean('published', published);
    return this.transaction((tx) => this.tables.published.upsertRoomPublished(tx, roomID, published));
  }

  /** Published room IDs, sorted. */
  getPublishedRooms(): Promise<string[]> {
    return this.tables.published.selectAllPublishedRooms(this.auto, true);
  }

  // ---- Memberships ----

  /**
   * (membership event NID, whether the user is joined, forgotten). Creates the user's state key NID if needed, as
   * the reference does; a user with no membership row gives (0, false, false).
   */
  async getMembership(roomNID: RoomNID, userID: string): Promise<{ membershipEventNID: EventNID; stillInRoom: boolean; forgotten: boolean }> {
    checkNID('room NID', roomNID);
    checkUserID('user ID', userID);
    const userNID = await this.nids.stateKey(this.auto, userID);
    try {
      const m = await this.tables.membership.selectMembershipFromRoomAndTarget(this.auto, roomNID, userNID);
      return { membershipEventNID: m.eventNID, stillInRoom: m.membership === MembershipState.join, forgotten: m.forgotten };
    } catch (e) {
      if (e instanceof NotFoundError) return { membershipEventNID: asEventNID(0), stillInRoom: false, forgotten: false };
      throw e;
    }
  }

  /** Membership event NIDs: joins only, or every membership not forgotten. */
  async getMembershipEventNIDsForRoom(roomNID: RoomNID, joinOnly: boolean, localOnly: boolean): Promise<EventNID[]> {
    checkNID('room NID', roomNID);
    checkBoolean('joinOnly', joinOnly);
    checkBoolean('localOnly', localOnly);
    return joinOnly
      ? this.tables.membership.selectMembershipsFromRoomAndMembership(this.auto, roomNID, MembershipState.join, localOnly)
      : this.tables.membership.selectMembershipsFromRoom(this.auto, roomNID, localOnly);
  }

  /** Room IDs where the user is "join", "invite", "leave" or "ban" (leave and ban are one state). */
  async getRoomsByMembership(userID: string, membership: string): Promise<string[]> {
    checkUserID('user ID', userID);
    checkString('membership', membership);
    const state = membershipStateFromString(membership);
    if (state === undefined) throw new InvalidInputError(`unknown membership ${JSON.stringify(membership)}: expected join, invite, leave or ban`);
    const userNID = (await this.eventStateKeyNIDs([userID])).get(userID);
    if (userNID === undefined) return [];
    const roomNIDs = await this.tables.membership.selectRoomsWithMembership(this.auto, userNID, state);
    const ids = await this.tables.rooms.bulkSelectRoomIDs(this.auto, roomNIDs);
    return roomNIDs.map((nid) => {
      const id = ids.get(nid);
      if (id === undefined) throw new MissingEventError(`room NID ${nid} has memberships but no room row`);
      return id;
    });
  }

  /** user ID -> in how many of the rooms they are joined. */
  async joinedUsersSetInRooms(roomIDs: readonly string[]): Promise<Map<string, number>> {
    checkList('room IDs', roomIDs, checkRoomID);
    const roomNIDs = await this.tables.rooms.bulkSelectRoomNIDs(this.auto, roomIDs);
    const counts = await this.tables.membership.selectJoinedUsersSetForRooms(this.auto, [...roomNIDs.values()]);
    const names = await this.eventStateKeys([...counts.keys()]);
    const out = new Map<string, number>();
    for (const [nid, n] of counts) {
      const userID = names.get(nid);
      if (userID === undefined) throw new NotFoundError(`user NID ${nid} is joined to a room but has no state key`);
      out.set(userID, n);
    }
    return out;
  }

  async getLocalServerInRoom(roomNID: RoomNID): Promise<boolean> {
    checkNID('room NID', roomNID);
    return this.tables.membership.selectLocalServerInRoom(this.auto, roomNID);
  }

  async getServerInRoom(roomNID: RoomNID, serverName: string): Promise<boolean> {
    checkNID('room NID', roomNID);
    checkIdentifier('server name', serverName);
    return this.tables.membership.selectServerInRoom(this.auto, roomNID, serverName);
  }

  /** Users who share a room with the user, matching `search` literally. NotFoundError if the user is unknown. */
  async getKnownUsers(userID: string, search: string, limit: number): Promise<string[]> {
    checkUserID('user ID', userID);
    checkString('search', search);
    checkCount('limit', limit);
    const userNID = await this.tables.eventStateKeys.selectEventStateKeyNID(this.auto, userID);
    return this.tables.membership.selectKnownUsers(this.auto, userNID, search, limit);
  }

  /** The rooms with events (a stub room, created by an updater or an invite and holding no event yet, is left out), sorted. */
  getKnownRooms(): Promise<string[]> {
    return this.tables.rooms.selectRoomIDsWithEvents(this.auto);
  }

  /**
   * The rooms holding at least one event of the type (its history, not only its current state), sorted; what a
   * homeserver loads its server ACLs from. Dendrite's GetRoomsWithEventTypeNID.
   */
  async getRoomsWithEventType(eventType: string): Promise<string[]> {
    checkIdentifier('event type', eventType);
    const typeNID = (await this.tables.eventTypes.bulkSelectEventTypeNID(this.auto, [eventType])).get(eventType);
    if (typeNID === undefined) return [];
    const roomNIDs = await this.tables.events.selectRoomsWithEventTypeNID(this.auto, typeNID);
    const ids = await this.tables.rooms.bulkSelectRoomIDs(this.auto, roomNIDs);
    return [...ids.values()].sort(compareCodePoints);
  }

  /**
   * Forgets what this Database cached about the room (its NID and version), after a purge deleted its rows (through
   * `storage.dump`, which bypasses the Database): the room can then be created again, as a new room.
   */
  async evictRoom(roomID: string, roomNID?: RoomNID): Promise<void> {
    checkRoomID('room ID', roomID);
    if (roomNID !== undefined) checkNID('room NID', roomNID);
    this.nids.evictRoom(roomID, roomNID);
  }

  /** Sets or clears "forgotten". NotFoundError if the user or the room is unknown. */
  async forgetRoom(userID: string, roomID: string, forget: boolean): Promise<void> {
    checkUserID('user ID', userID);
    checkRoomID('room ID', roomID);
    checkBoolean('forget', forget);
    const roomNID = await this.tables.rooms.selectRoomNID(this.auto, roomID);
    const userNID = await this.tables.eventStateKeys.selectEventStateKeyNID(this.auto, userID);
    await this.tables.membership.selectMembershipFromRoomAndTarget(this.auto, roomNID, userNID);
    await this.transaction((tx) => this.tables.membership.updateForgetMembership(tx, roomNID, userNID, forget));
  }

  // ---- Current state queries ----

  /**
   * The current state event for (type, state key). NotFoundError if the room is unknown or a stub; null if the
   * type or key was never seen or the tuple is not in the current state.
   */
  async getStateEvent(roomID: string, eventType: string, stateKey: string): Promise<StoredEvent | null> {
    checkRoomID('room ID', roomID);
    checkIdentifier('event type', eventType);
    checkStateKey(stateKey);
    const info = await this.roomInfo(roomID);
    if (!info) throw new NotFoundError(`room ${roomID} is not known`);
    if (info.isStub) throw new NotFoundError(`room ${roomID} is a stub: it has no events yet`);
    const typeNID = (await this.eventTypeNIDsFor([eventType])).get(eventType);
    const keyNID = (await this.eventStateKeyNIDs([stateKey])).get(stateKey);
    if (typeNID === undefined || keyNID === undefined) return null;
    const state = await this.loadStateAtSnapshot(info.stateSnapshotNID);
    const entry = state.find((e) => e.eventTypeNID === typeNID && e.eventStateKeyNID === keyNID);
    if (!entry) return null;
    return (await this.events([entry.eventNID]))[0] ?? null;
  }

  /**
   * For every known room that is not a stub, the current state entries whose type is asked for and whose state key
   * is asked for (or is "*" when wildcards are allowed), with each event's summarising content value.
   */
  async getBulkStateContent(roomIDs: readonly string[], tuples: readonly { eventType: string; stateKey: string }[], allowWildcards: boolean): Promise<StateContent[]> {
    checkList('room IDs', roomIDs, checkRoomID);
    checkList('tuples', tuples, checkTypeAndKey);
    checkBoolean('allowWildcards', allowWildcards);
    const typeNIDs = await this.eventTypeNIDsFor([...new Set(tuples.map((t) => t.eventType))]);
    const wildcardTypes = new Set<number>();
    const wantedKeys = new Map<number, Set<string>>();
    for (const t of tuples) {
      const typeNID = typeNIDs.get(t.eventType);
      if (typeNID === undefined) continue;
      if (allowWildcards && t.stateKey === '*') wildcardTypes.add(typeNID);
      else wantedKeys.set(typeNID, (wantedKeys.get(typeNID) ?? new Set()).add(t.stateKey));
    }
    const out: StateContent[] = [];
    for (const roomID of roomIDs) {
      const info = await this.roomInfo(roomID);
      if (!info || info.isStub) continue;
      const candidates = (await this.loadStateAtSnapshot(info.stateSnapshotNID))
        .filter((e) => wildcardTypes.has(e.eventTypeNID) || wantedKeys.has(e.eventTypeNID));
      const keys = await this.eventStateKeys(candidates.map((e) => e.eventStateKeyNID));
      const matching = candidates.filter((e) => wildcardTypes.has(e.eventTypeNID) || wantedKeys.get(e.eventTypeNID)!.has(keys.get(e.eventStateKeyNID)!));
      for (const stored of await this.events(matching.map((e) => e.eventNID))) {
        out.push({
          roomID, eventType: stored.event.type, stateKey: stored.event.stateKey ?? '',
          contentValue: extractContentValue(stored.event.type, stored.event.content),
        });
      }
    }
    return out;
  }
}

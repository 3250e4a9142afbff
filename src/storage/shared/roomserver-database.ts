import { inject, injectable, optional } from 'inversify';
import { TOKENS } from '../../di/tokens.js';
import { ConcurrentUpdateError, ConflictError, InvalidInputError, NotFoundError, StorageError, StoreUnavailableError } from '../../types/errors.js';
import { checkRoomEvent, type RoomEvent } from '../../types/event.js';
import { checkBoolean, checkFunction, checkList, checkNID, checkNIDList, checkEventID, checkRoomID, checkUserID, preview, serverNameOf } from '../../types/input.js';
import { asEventStateKeyNID, asStateSnapshotNID, type EventNID, type RoomNID, type StateBlockNID, type StateSnapshotNID } from '../../types/nids.js';
import type { StateEntry } from '../../types/state.js';
import type { RoomScopeTable, RoomserverTables, Tx, UnitOfWork } from '../tables/index.js';
import type { PlanCommitter } from './append-plan.js';
import { EventAppender, MAX_APPEND_BATCH, ROOM_CLAIM_MS, RoomBusyError, type AppendInput } from './event-appender.js';
import { LatestEventsUpdater } from './latest-events-updater.js';
import { MembershipUpdater } from './membership-updater.js';
import { redactEventJSON } from './redaction.js';
import { RoomPurger, type HistoryCut, type RoomContents, type RoomPurgeOptions, type RoomPurgeResult } from './room-purge.js';
import { RoomserverReportsAndKeys } from './roomserver-reports-keys.js';
import {
  checkRoomVersion, checkStateEntry, checkStoreEventOptions, isAppendInput, MAX_UPDATE_ATTEMPTS, storedInAnotherRoom,
  type AppendEventResult, type FoundEvent, type StoreEventOptions, type StoreEventResult,
} from './roomserver-types.js';
import { StateStorage } from './state-storage.js';
import type { StorageOptions } from './storage-options.js';

export * from './roomserver-types.js';
export type { HistoryCut, RoomContents, RoomPurgeOptions, RoomPurgeResult } from './room-purge.js';

/**
 * The room server's storage operations, written once over the tables for every driver.
 *
 * Every write is ordered to be crash-safe without a transaction (README, "Architecture"): NID mappings, event JSON,
 * state blocks and snapshots are written first (immutable or idempotent), and one last write makes the result visible
 * (the event row; the room's latest-events pointer). A retry of an interrupted call finishes the job. The SQL
 * drivers wrap each sequence in a real transaction as well.
 */
@injectable()
export class RoomserverDatabase extends RoomserverReportsAndKeys {
  private readonly appender: EventAppender;
  private readonly purger: RoomPurger | undefined;

  constructor(
    @inject(TOKENS.UnitOfWork) uow: UnitOfWork,
    @inject(TOKENS.RoomserverTables) tables: RoomserverTables,
    @inject(TOKENS.StateStorage) state: StateStorage,
    @inject(TOKENS.StorageOptions) options: StorageOptions,
    @inject(TOKENS.RoomScopeTable) @optional() roomScope?: RoomScopeTable,
    @inject(TOKENS.PlanCommitter) @optional() private readonly committer?: PlanCommitter,
  ) {
    super(uow, tables, state, options);
    this.purger = roomScope && new RoomPurger(tables, roomScope, (fn) => this.transaction(fn), () => this.auto);
    this.appender = new EventAppender(uow, tables, state, this.nids, (id) => this.isLocalUser(id), (tx, ids) => this.eventsByID(tx, ids),
      options.stateResolver, committer);
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
        if (e instanceof RoomBusyError) {
          if (Date.now() - started < 2 * ROOM_CLAIM_MS) {
            // Another writer holds the room: wait for it a little (not counted as an attempt), then look again.
            n--;
            await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
            continue;
          }
          // Still held after twice a claim's length (a writer that keeps failing, or one whose release got lost): the
          // same call will go through once the claim runs out, so it is the caller's to retry, as an outage is.
          throw new StoreUnavailableError(`${e.message}, and still was after ${Math.round((Date.now() - started) / 1000)} s. ` +
            'It is safe to retry: nothing of this call was written.', true, { cause: e });
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

  /**
   * Where each room's part of a call commits at once (a PlanCommitter) and a commit holds a bounded number of
   * operations, a call that might need more is appended in parts, each committed before the next is read: the
   * whole call is checked for refusals first, so a refused event still writes nothing.
   */
  private async appendChecked(batch: readonly AppendInput[]): Promise<AppendEventResult[]> {
    const parts = this.committer ? splitForCommits(batch, this.committer) : [batch];
    if (parts.length > 1) await this.appender.check(this.auto, batch);
    const out: AppendEventResult[] = [];
    for (const part of parts) out.push(...await this.retryOnConcurrentUpdate(() => this.transaction((tx) => this.appender.append(tx, part))));
    return out;
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
   * write through the updater and idempotent calls. Database calls made inside `fn` join its transaction.
   */
  async updateLatestEvents<T>(roomNID: RoomNID, fn: (u: LatestEventsUpdater) => Promise<T>): Promise<T> {
    checkNID('room NID', roomNID);
    checkFunction('fn', fn);
    return this.retryOnConcurrentUpdate(() => this.enclosingTransaction(async (tx) =>
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
    return this.enclosingTransaction(async (tx) => {
      const roomNID = await this.nids.room(tx, roomID, roomVersion);
      const userNID = await this.nids.stateKey(tx, userID);
      return fn(await MembershipUpdater.open(tx, this.tables, this.resolveUser, roomNID, userNID, local));
    });
  }

  // ---- Room upgrades ----

  /**
   * Moves the old room's directory entries and aliases to the new room when a room is upgraded (Dendrite's
   * UpgradeRoom): each list the old room is published in publishes the new one instead, and every alias of the old
   * room names the new one, created by `eventSender` (who sent the tombstone). One transaction on SQL; on Cosmos DB
   * the steps are ordered (publish the new room, move the aliases, unpublish the old room) so that calling it again
   * after a failure part-way finishes the move.
   */
  async upgradeRoom(oldRoomID: string, newRoomID: string, eventSender: string): Promise<void> {
    checkRoomID('old room ID', oldRoomID);
    checkRoomID('new room ID', newRoomID);
    checkUserID('event sender', eventSender);
    if (oldRoomID === newRoomID) throw new InvalidInputError(`a room cannot be upgraded to itself (${oldRoomID})`);
    return this.transaction(async (tx) => {
      const t = this.tables.published;
      const listed = (await t.selectRoomPublications(tx, oldRoomID)).filter((p) => p.published);
      for (const p of listed) await t.upsertRoomPublished(tx, newRoomID, true, p.appserviceID, p.networkID);
      await this.tables.roomAliases.moveRoomAliases(tx, oldRoomID, newRoomID, eventSender);
      for (const p of listed) await t.upsertRoomPublished(tx, oldRoomID, false, p.appserviceID, p.networkID);
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

  // ---- Purges and room sizes (RoomPurger: the room's own rows, under its lock) ----

  /**
   * Deletes every trace of the room, holding it as the input path does (see RoomPurger); refuses with
   * RoomBeingWrittenError while another writer holds it (Cosmos DB), NotFoundError for a room not stored. The
   * space is not given back here: `matrix-storage purge-room` asks the engine afterwards (StoreDump.reclaimSpace).
   */
  async purgeRoom(roomID: string, options: RoomPurgeOptions = {}): Promise<RoomPurgeResult> {
    checkRoomID('room ID', roomID);
    if (options.onTable !== undefined) checkFunction('onTable', options.onTable);
    const result = await this.purgerOf().purgeRoom(roomID, options);
    // Cached by this process: the room's NID and version, now gone.
    this.nids.evictRoom(roomID, result.roomNID);
    return result;
  }

  /** Deletes the room's events before the cut, keeping what the room still needs (see RoomPurger.purgeHistory). */
  async purgeHistory(roomID: string, cut: HistoryCut, options: RoomPurgeOptions = {}): Promise<RoomPurgeResult> {
    checkRoomID('room ID', roomID);
    if (typeof cut !== 'object' || cut === null || !('beforeEventID' in cut || 'beforeTimestamp' in cut)) {
      throw new InvalidInputError('a history cut is { beforeEventID } or { beforeTimestamp }');
    }
    if ('beforeEventID' in cut) checkEventID('cut event ID', cut.beforeEventID);
    if (options.onTable !== undefined) checkFunction('onTable', options.onTable);
    return this.purgerOf().purgeHistory(roomID, cut, options);
  }

  /** What the room holds (events, JSON bytes, state, joined members), read from its own rows. NotFoundError if unknown. */
  async roomContents(roomID: string): Promise<RoomContents> {
    checkRoomID('room ID', roomID);
    return this.purgerOf().contents(roomID);
  }

  private purgerOf(): RoomPurger {
    if (!this.purger) throw new StoreUnavailableError(`the ${this.uow.engine} driver has no room-scoped reads (RoomScopeTable): purges and room sizes need them`, false);
    return this.purger;
  }
}

/** The call in runs of consecutive events whose commits fit (see PlanCommitter); one event always makes a run. */
function splitForCommits(batch: readonly AppendInput[], committer: PlanCommitter): AppendInput[][] {
  const parts: AppendInput[][] = [];
  let run: AppendInput[] = [];
  // The room document's own write, once per commit.
  let used = 1;
  for (const input of batch) {
    const ops = committer.commitOperations(input.event);
    if (run.length > 0 && used + ops > committer.maxCommitOperations) {
      parts.push(run);
      run = [];
      used = 1;
    }
    run.push(input);
    used += ops;
  }
  if (run.length > 0) parts.push(run);
  return parts;
}

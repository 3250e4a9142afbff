import { AsyncLocalStorage } from 'node:async_hooks';
import { compareCodePoints } from '../../matrix/canonical-json.js';
import { InvalidInputError, MissingEventError, MissingStateError, NotFoundError } from '../../types/errors.js';
import { parseEvent } from '../../types/event.js';
import { checkAlias, checkBoolean, checkCount, checkEventID, checkIdentifier, checkList, checkNID, checkNIDList, checkRoomID, checkStateKey, checkString, checkUserID } from '../../types/input.js';
import { membershipStateFromString, MembershipState } from '../../types/membership.js';
import { asEventNID, type EventNID, type EventStateKeyNID, type EventTypeNID, type RoomNID, type StateBlockNID, type StateSnapshotNID } from '../../types/nids.js';
import type { StateAtEvent, StateBlockNIDList, StateEntry, StateEntryList, StateKeyTuple } from '../../types/state.js';
import type { RoomInfo, RoomserverTables, TransactionKey, Tx, UnitOfWork } from '../tables/index.js';
import { extractContentValue } from './content-value.js';
import { NidMaps } from './nid-assigner.js';
import { checkEventIDs, checkStateKeyTuple, checkTransactionKey, checkTypeAndKey, type StateContent, type StoredEvent } from './roomserver-types.js';
import type { StateStorage } from './state-storage.js';
import type { StorageOptions } from './storage-options.js';

/**
 * The room server's reads (state, lookups, the directory, memberships, current state queries) and the transaction
 * handling every call shares; RoomserverDatabase adds the writes (storing and appending events, the updaters).
 */
export abstract class RoomserverQueries {
  protected readonly nids: NidMaps;
  private readonly enclosing = new AsyncLocalStorage<Tx>();

  constructor(
    readonly uow: UnitOfWork,
    readonly tables: RoomserverTables,
    readonly state: StateStorage,
    protected readonly options: StorageOptions,
  ) {
    this.nids = new NidMaps(tables, uow);
  }

  /**
   * The transaction a call runs in: the one an enclosing updater's callback holds (see `enclosingTransaction`), so
   * that Database calls made inside `updateLatestEvents` or `updateMembership` join it (same transaction, same room
   * lock: on SQLite's single writer a second transaction would wait for the first forever), else a new one.
   */
  protected transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const open = this.enclosing.getStore();
    return open ? fn(open) : this.uow.transaction(fn);
  }

  /**
   * A transaction whose callback's Database calls join it: the updaters' only. (Entered for them alone: once an
   * AsyncLocalStorage has been entered, Node tracks every promise of the process, about 8 µs per appended event.)
   */
  protected enclosingTransaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const open = this.enclosing.getStore();
    return open ? fn(open) : this.uow.transaction((tx) => this.enclosing.run(tx, () => fn(tx)));
  }

  /** Reads see the enclosing updater's writes. */
  protected get auto(): Tx {
    return this.enclosing.getStore() ?? this.uow.autocommit;
  }

  protected async transactionEventID(tx: Tx, key: TransactionKey): Promise<string | null> {
    try {
      return await this.tables.transactions.selectTransactionEventID(tx, key);
    } catch (e) {
      if (e instanceof NotFoundError) return null;
      throw e;
    }
  }

  // ---- State ----

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
   * The state before an event (the state it was checked against, without it): the event's snapshot and block list
   * in one read, then the blocks (two round trips on SQL at most, one with the block cache warm). NotFoundError if
   * the event is unknown, MissingStateError if its state is. `matrix-storage state ROOM --before EVENT_ID`.
   */
  async loadStateBeforeEvent(eventID: string): Promise<StateEntry[]> {
    checkEventID('event ID', eventID);
    const at = await this.tables.stateSnapshots.selectStateBlockNIDsAtEvent(this.auto, eventID);
    if (at.stateSnapshotNID === 0) throw new MissingStateError(`the state before event ${eventID} is not known (was it input through appendEvent?)`);
    return this.state.loadState(this.auto, at);
  }

  /**
   * The state before an event, under the name Dendrite gives it ("at" the event means before it here, as there):
   * the same as loadStateBeforeEvent.
   */
  async loadStateAtEvent(eventID: string): Promise<StateEntry[]> {
    return this.loadStateBeforeEvent(eventID);
  }

  /**
   * The state after an event: before it, plus the event itself if it is an accepted state event.
   * `matrix-storage state ROOM --after EVENT_ID`.
   */
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

  /**
   * The room's backward extremities: events its stored events name in prev_events that the store does not hold,
   * sorted; where a homeserver backfills from. Empty for an unknown room.
   */
  async backwardExtremities(roomID: string): Promise<string[]> {
    checkRoomID('room ID', roomID);
    const info = await this.tables.rooms.selectRoomInfo(this.auto, roomID);
    return info ? this.tables.previousEvents.selectMissingPreviousEvents(this.auto, info.roomNID) : [];
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

  protected async eventsByNID(tx: Tx, eventNIDs: readonly EventNID[]): Promise<StoredEvent[]> {
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

  protected async eventsByID(tx: Tx, eventIDs: readonly string[]): Promise<StoredEvent[]> {
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

  /** The user's active invites in the room: senders, event IDs and event JSON, in the order they arrived. */
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

  /**
   * Publishes or unpublishes the room in the server's room directory, or (with an appservice and a network) in an
   * application service's third-party network list, as Dendrite's PublishRoom(roomID, appserviceID, networkID,
   * publish).
   */
  publishRoom(roomID: string, published: boolean): Promise<void>;
  publishRoom(roomID: string, appserviceID: string, networkID: string, published: boolean): Promise<void>;
  async publishRoom(roomID: string, ...rest: unknown[]): Promise<void> {
    checkRoomID('room ID', roomID);
    const [appserviceID, networkID, published] = rest.length <= 1 ? ['', '', rest[0]] : rest;
    checkString('appservice ID', appserviceID);
    checkString('network ID', networkID);
    checkBoolean('published', published);
    return this.transaction((tx) => this.tables.published.upsertRoomPublished(tx, roomID, published as boolean, appserviceID as string, networkID as string));
  }

  /**
   * Published room IDs, each once, sorted. With no argument, those of every list; else Dendrite's
   * GetPublishedRooms(networkID, includeAllNetworks): a network's, or with "" the server's own list, or every list
   * with `includeAllNetworks`.
   */
  async getPublishedRooms(networkID?: string, includeAllNetworks = false): Promise<string[]> {
    if (networkID === undefined) return this.tables.published.selectAllPublishedRooms(this.auto, true);
    checkString('network ID', networkID);
    checkBoolean('includeAllNetworks', includeAllNetworks);
    return this.tables.published.selectAllPublishedRooms(this.auto, true, networkID, includeAllNetworks);
  }

  /** Whether the room is published in any list (Dendrite's GetPublishedRoom). */
  async getPublishedRoom(roomID: string): Promise<boolean> {
    checkRoomID('room ID', roomID);
    return this.tables.published.selectPublishedFromRoomID(this.auto, roomID);
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

  /**
   * user ID -> in how many of the rooms they are joined; only the users among `userIDs` when given (unknown ones
   * omitted), only local users with `localOnly` (Dendrite's JoinedUsersSetInRooms).
   */
  async joinedUsersSetInRooms(roomIDs: readonly string[], userIDs?: readonly string[], localOnly = false): Promise<Map<string, number>> {
    checkList('room IDs', roomIDs, checkRoomID);
    if (userIDs !== undefined) checkList('user IDs', userIDs, checkUserID);
    checkBoolean('localOnly', localOnly);
    const roomNIDs = await this.tables.rooms.bulkSelectRoomNIDs(this.auto, roomIDs);
    const userNIDs = userIDs === undefined ? undefined : [...(await this.eventStateKeyNIDs(userIDs)).values()];
    const counts = await this.tables.membership.selectJoinedUsersSetForRooms(this.auto, [...roomNIDs.values()], userNIDs, localOnly);
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

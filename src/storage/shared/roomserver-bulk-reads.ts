import { compareCodePoints } from '../../matrix/canonical-json.js';
import { InvalidInputError, NotFoundError } from '../../types/errors.js';
import { checkIdentifier, checkList, checkNID, checkRoomID, checkUserID, preview } from '../../types/input.js';
import { EMPTY_STATE_KEY_NID, EventTypes, type EventNID, type RoomNID, type StateBlockNID, type StateSnapshotNID } from '../../types/nids.js';
import type { RoomInfo, Tx } from '../tables/index.js';
import { RoomserverQueries } from './roomserver-queries.js';
import { checkEventIDs, type StoredEvent } from './roomserver-types.js';

/** What a homeserver needs to decide whether a user may see an event: the state before it, two tuples of it. */
export interface VisibilityState {
  /** The m.room.history_visibility event in the state before the event; null if there is none. */
  readonly historyVisibility: StoredEvent | null;
  /** The user's m.room.member event in the state before the event; null if there is none (the user never joined). */
  readonly membership: StoredEvent | null;
}

/** An event's auth and prev events, as an event names them. */
export interface EventReferences {
  readonly authEventIDs: readonly string[];
  readonly prevEventIDs: readonly string[];
}

const SERVER_ACL = 'm.room.server_acl';

/**
 * The room server's set-based reads: many events, rooms or users per call, each answered with a fixed number of
 * round trips whatever the count, and tuples looked up in state blocks rather than whole states resolved
 * (Dendrite's callers loop over these one at a time, or load a room's state per event).
 */
export abstract class RoomserverBulkReads extends RoomserverQueries {
  /**
   * The event's auth events the store lacks, and its prev events whose state the store lacks (not stored, or stored
   * as outliers without a state before them; a create event needs none), each in the event's order: Dendrite's
   * MissingAuthPrevEvents, in one read.
   */
  async missingAuthPrevEvents(event: EventReferences): Promise<{ missingAuth: string[]; missingPrev: string[] }> {
    if (typeof event !== 'object' || event === null) throw new InvalidInputError(`event must have authEventIDs and prevEventIDs, got ${preview(event)}`);
    checkEventIDs('event.authEventIDs', event.authEventIDs);
    checkEventIDs('event.prevEventIDs', event.prevEventIDs);
    const found = await this.tables.events.bulkSelectEventsByID(this.auto, [...new Set([...event.authEventIDs, ...event.prevEventIDs])]);
    const missingAuth = event.authEventIDs.filter((id) => !found.has(id));
    const missingPrev = event.prevEventIDs.filter((id) => {
      const e = found.get(id);
      if (!e) return true;
      const isCreate = e.eventTypeNID === EventTypes.create && e.eventStateKeyNID === EMPTY_STATE_KEY_NID;
      return e.stateSnapshotNID === 0 && !isCreate;
    });
    return { missingAuth, missingPrev };
  }

  /**
   * The stored events grouped by the snapshot of the state before them (0: outliers, whose state is not known),
   * each group in input order; unknown IDs omitted. Dendrite's BulkSelectSnapshotsFromEventIDs.
   */
  async snapshotsForEventIDs(eventIDs: readonly string[]): Promise<Map<StateSnapshotNID, string[]>> {
    checkEventIDs('event IDs', eventIDs);
    const found = await this.tables.events.bulkSelectEventsByID(this.auto, eventIDs);
    const out = new Map<StateSnapshotNID, string[]>();
    for (const id of new Set(eventIDs)) {
      const e = found.get(id);
      if (e) out.set(e.stateSnapshotNID, [...(out.get(e.stateSnapshotNID) ?? []), id]);
    }
    return out;
  }

  /** Each stored event's NID and room NID (Dendrite's EventNIDs with its EventMetadata); unknown IDs omitted. */
  async eventMetadata(eventIDs: readonly string[]): Promise<Map<string, { eventNID: EventNID; roomNID: RoomNID }>> {
    checkEventIDs('event IDs', eventIDs);
    const found = await this.tables.events.bulkSelectEventsByID(this.auto, eventIDs);
    return new Map([...found].map(([id, e]) => [id, { eventNID: e.eventNID, roomNID: e.roomNID }]));
  }

  /** Room information by room NID; null if there is no such room (Dendrite's RoomInfoByNID errors instead). */
  async roomInfoByNID(roomNID: RoomNID): Promise<RoomInfo | null> {
    checkNID('room NID', roomNID);
    const roomID = (await this.tables.rooms.bulkSelectRoomIDs(this.auto, [roomNID])).get(roomNID);
    return roomID === undefined ? null : this.tables.rooms.selectRoomInfo(this.auto, roomID);
  }

  /**
   * The room's current state events of one type (every state key), sorted by state key NID. NotFoundError if the
   * room is unknown; empty for a stub room or a type never seen. Dendrite's GetStateEventsWithEventType.
   */
  async getStateEventsWithEventType(roomID: string, eventType: string): Promise<StoredEvent[]> {
    checkRoomID('room ID', roomID);
    checkIdentifier('event type', eventType);
    const info = await this.roomInfo(roomID);
    if (!info) throw new NotFoundError(`room ${roomID} is not known`);
    const typeNID = (await this.eventTypeNIDsFor([eventType])).get(eventType);
    if (info.isStub || typeNID === undefined) return [];
    // The current state's blocks cut to the one type before they are merged: the rest of the state is never resolved.
    const blocks = await this.currentBlocks(this.auto, roomID);
    const [entries] = await this.state.entriesOfTypes(this.auto, [blocks ?? []], new Set([typeNID]));
    const nids = entries!.map((e) => e.eventNID);
    const byNID = new Map((await this.eventsByNID(this.auto, nids)).map((e) => [e.eventNID, e]));
    return nids.flatMap((n) => byNID.get(n) ?? []);
  }

  /**
   * For each stored event, what deciding whether the user may see it needs (see VisibilityState): read from the
   * state before each event, one lookup of two tuples per distinct state, all the blocks in one read, all the
   * events in one more. Unknown event IDs are omitted; an event whose state is not known (an outlier) gets nulls.
   * Dendrite's GetMembershipForHistoryVisibility and GetHistoryVisibilityState, for a user and many events.
   */
  async historyVisibilityForUser(userID: string, eventIDs: readonly string[]): Promise<Map<string, VisibilityState>> {
    checkUserID('user ID', userID);
    checkEventIDs('event IDs', eventIDs);
    const tx = this.auto;
    const [found, userNIDs] = await Promise.all([
      this.tables.events.bulkSelectEventsByID(tx, eventIDs),
      this.tables.eventStateKeys.bulkSelectEventStateKeyNID(tx, [userID]),
    ]);
    const userNID = userNIDs.get(userID);
    const snapshots = [...new Set([...found.values()].map((e) => e.stateSnapshotNID).filter((s) => s !== 0))];
    const tuples = [{ eventTypeNID: EventTypes.historyVisibility, eventStateKeyNID: EMPTY_STATE_KEY_NID }];
    if (userNID !== undefined) tuples.push({ eventTypeNID: EventTypes.member, eventStateKeyNID: userNID });
    const lists = await this.state.blockLists(tx, snapshots);
    const answers = await this.state.lookupTuples(tx, snapshots.map((s) => lists.get(s)!), tuples);
    const perSnapshot = new Map(snapshots.map((s, i) => [s, answers[i]!]));
    const events = new Map((await this.eventsByNID(tx, [...new Set(answers.flat().filter((n) => n !== 0))] as EventNID[]))
      .map((e) => [e.eventNID as number, e]));
    const out = new Map<string, VisibilityState>();
    for (const [id, e] of found) {
      const [visibility = 0, membership = 0] = perSnapshot.get(e.stateSnapshotNID) ?? [];
      out.set(id, { historyVisibility: events.get(visibility) ?? null, membership: events.get(membership) ?? null });
    }
    return out;
  }

  /**
   * For each stored event, the history visibility and the memberships of one server's users (their user IDs end in
   * ":" + serverName) in the state before it: what deciding which events a server may see needs (Dendrite's
   * GetHistoryVisibilityState, for many events). Each distinct state is read once, cut to the two types before its
   * blocks are merged; all the blocks in one read, all the events in one more. Unknown event IDs are omitted; an
   * event whose state is not known (an outlier) gets null and no memberships. Memberships sorted by user ID.
   */
  async historyVisibilityForServer(serverName: string, eventIDs: readonly string[]): Promise<Map<string, { historyVisibility: StoredEvent | null; memberships: StoredEvent[] }>> {
    checkIdentifier('server name', serverName);
    checkEventIDs('event IDs', eventIDs);
    const tx = this.auto;
    const found = await this.tables.events.bulkSelectEventsByID(tx, eventIDs);
    const snapshots = [...new Set([...found.values()].map((e) => e.stateSnapshotNID).filter((s) => s !== 0))];
    const lists = await this.state.blockLists(tx, snapshots);
    const states = await this.state.entriesOfTypes(tx, snapshots.map((s) => lists.get(s)!), new Set<number>([EventTypes.historyVisibility, EventTypes.member]));
    const users = await this.tables.eventStateKeys.bulkSelectEventStateKey(tx,
      [...new Set(states.flat().filter((e) => e.eventTypeNID === EventTypes.member).map((e) => e.eventStateKeyNID))]);
    const suffix = `:${serverName}`;
    const wanted = states.map((entries) => entries.filter((e) => (e.eventTypeNID === EventTypes.historyVisibility && e.eventStateKeyNID === EMPTY_STATE_KEY_NID)
      || (e.eventTypeNID === EventTypes.member && users.get(e.eventStateKeyNID)?.endsWith(suffix))));
    const events = new Map((await this.eventsByNID(tx, [...new Set(wanted.flat().map((e) => e.eventNID))])).map((e) => [e.eventNID as number, e]));
    const perSnapshot = new Map(snapshots.map((s, i) => [s, wanted[i]!]));
    const out = new Map<string, { historyVisibility: StoredEvent | null; memberships: StoredEvent[] }>();
    for (const [id, e] of found) {
      const entries = perSnapshot.get(e.stateSnapshotNID) ?? [];
      const visibility = entries.find((x) => x.eventTypeNID === EventTypes.historyVisibility);
      const memberships = entries.filter((x) => x.eventTypeNID === EventTypes.member).flatMap((x) => events.get(x.eventNID) ?? [])
        .sort((a, b) => compareCodePoints(a.event.stateKey ?? '', b.event.stateKey ?? ''));
      out.set(id, { historyVisibility: (visibility && events.get(visibility.eventNID)) ?? null, memberships });
    }
    return out;
  }

  /**
   * The users among `userIDs` the store knows who are no longer joined, invited or knocking in any room: whose
   * device lists a homeserver may stop tracking. Sorted. Dendrite's GetLeftUsers.
   */
  async getLeftUsers(userIDs: readonly string[]): Promise<string[]> {
    checkList('user IDs', userIDs, checkUserID);
    const nids = await this.tables.eventStateKeys.bulkSelectEventStateKeyNID(this.auto, userIDs);
    const stillIn = new Set<number>(await this.tables.membership.selectJoinedUsers(this.auto, [...nids.values()]));
    return [...nids].filter(([, nid]) => !stillIn.has(nid)).map(([id]) => id).sort(compareCodePoints);
  }

  /**
   * The rooms among `roomIDs` (by default every room with events) where no local user is joined: rooms this server
   * has left, which a homeserver may purge. Unknown rooms are omitted. Sorted.
   */
  async getEmptyRooms(roomIDs?: readonly string[]): Promise<string[]> {
    if (roomIDs !== undefined) checkList('room IDs', roomIDs, checkRoomID);
    const ids = roomIDs ?? await this.getKnownRooms();
    const nids = await this.tables.rooms.bulkSelectRoomNIDs(this.auto, ids);
    const occupied = await this.tables.membership.selectRoomsWithLocalJoins(this.auto, [...nids.values()]);
    return [...nids].filter(([, nid]) => !occupied.has(nid)).map(([id]) => id).sort(compareCodePoints);
  }

  /**
   * The current m.room.server_acl event of each of the rooms that has one (Dendrite's GetBulkStateACLs), by room
   * ID: one lookup of one tuple per room in its current state's blocks, no whole state loaded. Unknown and stub
   * rooms, and rooms without an ACL, are omitted.
   */
  async getBulkStateACLs(roomIDs: readonly string[]): Promise<Map<string, StoredEvent>> {
    checkList('room IDs', roomIDs, checkRoomID);
    const found = await this.currentStateEvents(this.auto, roomIDs, [SERVER_ACL]);
    return new Map([...found].map(([roomID, events]) => [roomID, events.get(SERVER_ACL)!]));
  }

  /**
   * The current state events of these types with state key "" in each room, by room and type: one lookup of the
   * tuples per room in its current state's blocks (every block in one read), no whole state loaded. Rooms holding
   * none of them (and unknown and stub rooms) are omitted.
   */
  protected async currentStateEvents(tx: Tx, roomIDs: readonly string[], eventTypes: readonly string[]): Promise<Map<string, Map<string, StoredEvent>>> {
    const out = new Map<string, Map<string, StoredEvent>>();
    const typeNIDs = await this.tables.eventTypes.bulkSelectEventTypeNID(tx, eventTypes);
    const types = eventTypes.filter((t) => typeNIDs.has(t));
    if (types.length === 0) return out;
    const rooms: { roomID: string; blocks: readonly StateBlockNID[] }[] = [];
    for (const roomID of new Set(roomIDs)) {
      const blocks = await this.currentBlocks(tx, roomID);
      if (blocks && blocks.length > 0) rooms.push({ roomID, blocks });
    }
    const tuples = types.map((t) => ({ eventTypeNID: typeNIDs.get(t)!, eventStateKeyNID: EMPTY_STATE_KEY_NID }));
    const answers = await this.state.lookupTuples(tx, rooms.map((r) => r.blocks), tuples);
    const events = new Map((await this.eventsByNID(tx, [...new Set(answers.flat().filter((n) => n !== 0))] as EventNID[]))
      .map((e) => [e.eventNID as number, e]));
    rooms.forEach((r, i) => {
      const byType = new Map<string, StoredEvent>();
      types.forEach((t, j) => {
        const e = events.get(answers[i]![j]!);
        if (e) byType.set(t, e);
      });
      if (byType.size > 0) out.set(r.roomID, byType);
    });
    return out;
  }

  /** The block list of a room's current state (one read: the room joined with its snapshot); undefined if unknown. */
  private async currentBlocks(tx: Tx, roomID: string): Promise<readonly StateBlockNID[] | undefined> {
    try {
      return (await this.tables.stateSnapshots.selectCurrentStateBlockNIDs(tx, roomID)).stateBlockNIDs;
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  }
}

import { NotFoundError } from '../../types/errors.js';
import { checkBoolean, checkEventID, checkList, checkNID, checkNIDList } from '../../types/input.js';
import type { EventNID, EventStateKeyNID, RoomNID, StateSnapshotNID } from '../../types/nids.js';
import type { StateAtEventAndReference } from '../../types/state.js';
import type { LatestEvents, RoomserverTables, Tx } from '../tables/index.js';
import { MembershipUpdater, type UserNIDResolver } from './membership-updater.js';

/**
 * Exclusive access to one room's forward extremities and current state for the length of a transaction.
 * The final `setLatestEvents` is the commit point of an event's input: everything it points at (the event row,
 * its state snapshot, memberships) is written first.
 */
export class LatestEventsUpdater {
  private constructor(
    readonly tx: Tx,
    private readonly tables: RoomserverTables,
    private readonly userNID: UserNIDResolver,
    readonly roomNID: RoomNID,
    readonly roomVersion: string,
    private readonly current: LatestEvents,
    readonly latestEvents: readonly StateAtEventAndReference[],
    readonly lastEventIDSent: string,
  ) {}

  /** Opens the updater for a room whose version the caller knows (it is cached; see NidMaps.roomVersions). */
  static async open(tx: Tx, tables: RoomserverTables, userNID: UserNIDResolver, roomNID: RoomNID, roomVersion: string): Promise<LatestEventsUpdater> {
    const current = await tables.rooms.selectLatestEventsNIDsForUpdate(tx, roomNID);
    const [latestEvents, lastEventIDSent] = await Promise.all([
      tables.events.bulkSelectStateAtEventAndReference(tx, current.latestEventNIDs),
      current.lastEventSentNID === 0 ? '' : tables.events.selectEventID(tx, current.lastEventSentNID),
    ]);
    return new LatestEventsUpdater(tx, tables, userNID, roomNID, roomVersion, current, latestEvents, lastEventIDSent);
  }

  get latestEventNIDs(): readonly EventNID[] { return this.current.latestEventNIDs; }
  get lastEventSentNID(): EventNID { return this.current.lastEventSentNID; }
  get currentStateSnapshotNID(): StateSnapshotNID { return this.current.stateSnapshotNID; }

  /** Records that eventNID names each of prevEventIDs (set semantics: repeating it changes nothing). */
  async storePreviousEvents(eventNID: EventNID, prevEventIDs: readonly string[]): Promise<void> {
    checkNID('event NID', eventNID);
    checkList('prev event IDs', prevEventIDs, checkEventID);
    for (const id of prevEventIDs) await this.tables.previousEvents.insertPreviousEvent(this.tx, id, eventNID);
  }

  /** Whether some stored event names eventID in its prev_events. */
  async isReferenced(eventID: string): Promise<boolean> {
    checkEventID('event ID', eventID);
    try {
      await this.tables.previousEvents.selectPreviousEventExists(this.tx, eventID);
      return true;
    } catch (e) {
      if (e instanceof NotFoundError) return false;
      throw e;
    }
  }

  /**
   * Overwrites latest events, last event sent and current state, on condition that nobody changed the room since
   * this updater read it (ConcurrentUpdateError otherwise, on Cosmos DB only).
   */
  async setLatestEvents(latest: readonly EventNID[], lastEventSentNID: EventNID, stateSnapshotNID: StateSnapshotNID): Promise<void> {
    checkNIDList('latest event NIDs', latest);
    checkNID('last event sent NID', lastEventSentNID, true);
    checkNID('state snapshot NID', stateSnapshotNID, true);
    await this.tables.rooms.updateLatestEventNIDs(this.tx, this.roomNID, latest, lastEventSentNID, stateSnapshotNID, this.current.version);
  }

  async hasEventBeenSent(eventNID: EventNID): Promise<boolean> {
    checkNID('event NID', eventNID);
    return this.tables.events.selectEventSentToOutput(this.tx, eventNID);
  }

  async markEventAsSent(eventNID: EventNID): Promise<void> {
    checkNID('event NID', eventNID);
    return this.tables.events.updateEventSentToOutput(this.tx, eventNID);
  }

  /** A membership updater for this room that shares this updater's transaction. */
  async membershipUpdater(targetUserNID: EventStateKeyNID, local: boolean): Promise<MembershipUpdater> {
    checkNID('target user NID', targetUserNID);
    checkBoolean('local', local);
    return MembershipUpdater.open(this.tx, this.tables, this.userNID, this.roomNID, targetUserNID, local);
  }
}

import { compareCodePoints } from '../../matrix/canonical-json.js';
import { InvalidInputError, NotFoundError } from '../../types/errors.js';
import { checkBoolean, checkCount, checkEventID, checkInteger, checkList, checkMap, checkNID, checkRoomID, checkString, checkUserID, preview } from '../../types/input.js';
import type { EventStateKeyNID, RoomNID } from '../../types/nids.js';
import type { StoredReport, Tx } from '../tables/index.js';
import { extractContentValue } from './content-value.js';
import { RoomserverBulkReads } from './roomserver-bulk-reads.js';

/** An event report as an admin reads it: the stored report with its IDs resolved and the room's name and alias. */
export interface EventReport {
  readonly reportID: number;
  readonly eventID: string;
  readonly roomID: string;
  readonly reportingUserID: string;
  readonly senderUserID: string;
  readonly reason: string;
  readonly score: number;
  /** When the report arrived, in ms since the epoch. */
  readonly receivedTS: number;
  /** The room's current m.room.name and m.room.canonical_alias, "" where it has none. */
  readonly roomName: string;
  readonly canonicalAlias: string;
}

export interface EventReportQuery {
  /** An offset into the matching reports (default 0). */
  readonly from?: number;
  /** At most this many (default 100). */
  readonly limit?: number;
  /** Newest first (default: oldest first). */
  readonly backwards?: boolean;
  /** Only the reports of this reporting user, of this room. */
  readonly userID?: string;
  readonly roomID?: string;
}

/** An ed25519 private key as Go and libsodium lay it out: the 32-byte seed, then the 32-byte public key. */
const PRIVATE_KEY_BYTES = 64;
const PUBLIC_KEY_BYTES = 32;

function checkKeyBytes(what: string, value: unknown, length: number): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new InvalidInputError(`${what} must be a Uint8Array of ${length} bytes, got ${value instanceof Uint8Array ? `${value.length} bytes` : preview(value)}`);
  }
  return value;
}

function checkReportQuery(q: unknown): Required<Omit<EventReportQuery, 'userID' | 'roomID'>> & EventReportQuery {
  if (typeof q !== 'object' || q === null) throw new InvalidInputError(`query must be an object, got ${preview(q)}`);
  const { from = 0, limit = 100, backwards = false, userID, roomID } = q as EventReportQuery;
  checkCount('query.from', from);
  checkCount('query.limit', limit);
  checkBoolean('query.backwards', backwards);
  if (userID !== undefined) checkUserID('query.userID', userID);
  if (roomID !== undefined) checkRoomID('query.roomID', roomID);
  return { from, limit, backwards, ...(userID !== undefined ? { userID } : {}), ...(roomID !== undefined ? { roomID } : {}) };
}

/**
 * Event reports for a server's admins (Dendrite's ReportedEvents and its admin queries) and the per-room keys behind
 * users' pseudo IDs (Dendrite's UserRoomKeys).
 */
export abstract class RoomserverReportsAndKeys extends RoomserverBulkReads {
  // ---- Event reports ----

  /**
   * Stores a user's report of an event and returns its ID. NotFoundError if the room is unknown or does not hold
   * the event.
   */
  async insertReportedEvent(roomID: string, eventID: string, reportingUserID: string, reason: string, score: number): Promise<number> {
    checkRoomID('room ID', roomID);
    checkEventID('event ID', eventID);
    checkUserID('reporting user ID', reportingUserID);
    checkString('reason', reason);
    checkInteger('score', score);
    return this.transaction(async (tx) => {
      const info = await this.tables.rooms.selectRoomInfo(tx, roomID);
      if (!info) throw new NotFoundError(`room ${roomID} is not known`);
      const [event] = await this.eventsByID(tx, [eventID]);
      if (!event || event.event.roomID !== roomID) throw new NotFoundError(`room ${roomID} holds no event ${eventID}`);
      const [reporter, sender] = [await this.nids.stateKey(tx, reportingUserID), await this.nids.stateKey(tx, event.event.sender)];
      return this.tables.reportedEvents.insertReportedEvent(tx, {
        roomNID: info.roomNID, eventNID: event.eventNID, reportingUserNID: reporter, eventSenderNID: sender, reason, score, receivedTS: Date.now(),
      });
    });
  }

  /**
   * A page of the reports in order of arrival (Dendrite's QueryAdminEventReports) and how many match in all; a user
   * or room the store does not know matches none.
   */
  async queryEventReports(query: EventReportQuery = {}): Promise<{ reports: EventReport[]; total: number }> {
    const q = checkReportQuery(query);
    const tx = this.auto;
    let roomNID: RoomNID | undefined;
    let userNID: EventStateKeyNID | undefined;
    if (q.roomID !== undefined) {
      roomNID = (await this.tables.rooms.bulkSelectRoomNIDs(tx, [q.roomID])).get(q.roomID);
      if (roomNID === undefined) return { reports: [], total: 0 };
    }
    if (q.userID !== undefined) {
      userNID = (await this.tables.eventStateKeys.bulkSelectEventStateKeyNID(tx, [q.userID])).get(q.userID);
      if (userNID === undefined) return { reports: [], total: 0 };
    }
    const page = await this.tables.reportedEvents.selectReportedEvents(tx, {
      from: q.from, limit: q.limit, backwards: q.backwards,
      ...(roomNID !== undefined ? { roomNID } : {}), ...(userNID !== undefined ? { reportingUserNID: userNID } : {}),
    });
    return { reports: await this.resolveReports(tx, page.reports), total: page.total };
  }

  /** One report with the reported event's JSON (Dendrite's QueryAdminEventReport); null if there is no such report. */
  async queryEventReport(reportID: number): Promise<(EventReport & { eventJSON: string }) | null> {
    checkNID('report ID', reportID);
    const tx = this.auto;
    const stored = await this.tables.reportedEvents.selectReportedEvent(tx, reportID);
    if (!stored) return null;
    const [[report], [event]] = await Promise.all([this.resolveReports(tx, [stored]), this.eventsByNID(tx, [stored.eventNID])]);
    return { ...report!, eventJSON: event?.event.json ?? '' };
  }

  /** Deletes a report (Dendrite's AdminDeleteEventReport); returns whether there was one. */
  async deleteEventReport(reportID: number): Promise<boolean> {
    checkNID('report ID', reportID);
    return this.transaction((tx) => this.tables.reportedEvents.deleteReportedEvent(tx, reportID));
  }

  /** Reports with their NIDs resolved, each room's name and canonical alias read once (tuple lookups, no whole state). */
  private async resolveReports(tx: Tx, reports: readonly StoredReport[]): Promise<EventReport[]> {
    if (reports.length === 0) return [];
    const [roomIDs, eventIDs, users] = await Promise.all([
      this.tables.rooms.bulkSelectRoomIDs(tx, [...new Set(reports.map((r) => r.roomNID))]),
      this.tables.events.bulkSelectEventIDsAndRooms(tx, reports.map((r) => r.eventNID)),
      this.tables.eventStateKeys.bulkSelectEventStateKey(tx, [...new Set(reports.flatMap((r) => [r.reportingUserNID, r.eventSenderNID]))]),
    ]);
    const names = await this.currentStateEvents(tx, [...roomIDs.values()], ['m.room.name', 'm.room.canonical_alias']);
    const valueOf = (roomID: string, type: string) => {
      const e = names.get(roomID)?.get(type);
      return e ? extractContentValue(type, e.event.content) : '';
    };
    return reports.map((r) => {
      const roomID = roomIDs.get(r.roomNID) ?? '';
      return {
        reportID: r.reportID, eventID: eventIDs.get(r.eventNID)?.eventID ?? '', roomID,
        reportingUserID: users.get(r.reportingUserNID) ?? '', senderUserID: users.get(r.eventSenderNID) ?? '',
        reason: r.reason, score: r.score, receivedTS: r.receivedTS,
        roomName: valueOf(roomID, 'm.room.name'), canonicalAlias: valueOf(roomID, 'm.room.canonical_alias'),
      };
    });
  }

  // ---- User room keys (pseudo IDs) ----

  /**
   * Runs a key write in a transaction with the room's NID and the user's (created if needed). NotFoundError if the
   * room is unknown: a key is stored only for a known room.
   */
  private storeKey(userID: string, roomID: string, store: (tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID) => Promise<Uint8Array>): Promise<Uint8Array> {
    return this.transaction(async (tx) => {
      const roomNID = (await this.tables.rooms.bulkSelectRoomNIDs(tx, [roomID])).get(roomID);
      if (roomNID === undefined) throw new NotFoundError(`room ${roomID} is not known`);
      return store(tx, await this.nids.stateKey(tx, userID), roomNID);
    });
  }

  /**
   * Stores a local user's private key for the room (64 bytes: the seed, then the public key, which is stored beside
   * it) unless the user has one there already; returns the private key in force. NotFoundError if the room is unknown.
   */
  async insertUserRoomPrivatePublicKey(userID: string, roomID: string, privateKey: Uint8Array): Promise<Uint8Array> {
    checkUserID('user ID', userID);
    checkRoomID('room ID', roomID);
    checkKeyBytes('private key', privateKey, PRIVATE_KEY_BYTES);
    return this.storeKey(userID, roomID, (tx, userNID, roomNID) =>
      this.tables.userRoomKeys.insertUserRoomPrivatePublicKey(tx, userNID, roomNID, privateKey, privateKey.subarray(PRIVATE_KEY_BYTES - PUBLIC_KEY_BYTES)));
  }

  /** Stores a (remote) user's public key for the room unless one is stored; returns the key in force. NotFoundError if the room is unknown. */
  async insertUserRoomPublicKey(userID: string, roomID: string, publicKey: Uint8Array): Promise<Uint8Array> {
    checkUserID('user ID', userID);
    checkRoomID('room ID', roomID);
    checkKeyBytes('public key', publicKey, PUBLIC_KEY_BYTES);
    return this.storeKey(userID, roomID, (tx, userNID, roomNID) => this.tables.userRoomKeys.insertUserRoomPublicKey(tx, userNID, roomNID, publicKey));
  }

  /** null if the user, the room or the key is unknown. */
  async selectUserRoomPrivateKey(userID: string, roomID: string): Promise<Uint8Array | null> {
    checkUserID('user ID', userID);
    checkRoomID('room ID', roomID);
    const at = await this.userAndRoom(userID, roomID);
    return at ? this.tables.userRoomKeys.selectUserRoomPrivateKey(this.auto, at.userNID, at.roomNID) : null;
  }

  /** null if the user, the room or the key is unknown. */
  async selectUserRoomPublicKey(userID: string, roomID: string): Promise<Uint8Array | null> {
    checkUserID('user ID', userID);
    checkRoomID('room ID', roomID);
    const at = await this.userAndRoom(userID, roomID);
    return at ? this.tables.userRoomKeys.selectUserRoomPublicKey(this.auto, at.userNID, at.roomNID) : null;
  }

  /**
   * For each room, the users behind the public keys given: room ID -> (key as unpadded base64 -> user ID). Keys
   * nobody holds there, and unknown rooms, are omitted. Dendrite's SelectUserIDsForPublicKeys.
   */
  async selectUserIDsForPublicKeys(keys: ReadonlyMap<string, readonly Uint8Array[]>): Promise<Map<string, Map<string, string>>> {
    checkMap('public keys', keys);
    for (const [roomID, list] of keys) {
      checkRoomID('public keys: room ID', roomID);
      checkList('public keys: key list', list, (w, k) => checkKeyBytes(w, k, PUBLIC_KEY_BYTES));
    }
    const tx = this.auto;
    const roomNIDs = await this.tables.rooms.bulkSelectRoomNIDs(tx, [...keys.keys()]);
    const byNID = new Map([...roomNIDs].map(([id, nid]) => [nid, keys.get(id)!]));
    const found = await this.tables.userRoomKeys.selectUserNIDsForPublicKeys(tx, byNID);
    const userIDs = await this.tables.eventStateKeys.bulkSelectEventStateKey(tx, [...new Set([...found.values()].flatMap((m) => [...m.values()]))]);
    const out = new Map<string, Map<string, string>>();
    for (const [roomID, nid] of [...roomNIDs].sort(([a], [b]) => compareCodePoints(a, b))) {
      const users = found.get(nid);
      if (!users) continue;
      out.set(roomID, new Map([...users].flatMap(([key, user]) => (userIDs.has(user) ? [[key, userIDs.get(user)!] as const] : []))));
    }
    return out;
  }

  private async userAndRoom(userID: string, roomID: string): Promise<{ userNID: EventStateKeyNID; roomNID: RoomNID } | undefined> {
    const [users, rooms] = await Promise.all([
      this.tables.eventStateKeys.bulkSelectEventStateKeyNID(this.auto, [userID]),
      this.tables.rooms.bulkSelectRoomNIDs(this.auto, [roomID]),
    ]);
    const userNID = users.get(userID);
    const roomNID = rooms.get(roomID);
    return userNID === undefined || roomNID === undefined ? undefined : { userNID, roomNID };
  }
}

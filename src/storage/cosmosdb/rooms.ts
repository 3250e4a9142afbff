import { inject, injectable } from 'inversify';
import { randomUUID } from 'node:crypto';
import { ConcurrentUpdateError, StoreUnavailableError } from '../../types/errors.js';
import type { EventNID, RoomNID, StateBlockNID, StateSnapshotNID } from '../../types/nids.js';
import { duplicate, notFound, unique } from '../shared/contracts.js';
import type { JSONObject, OperationInput, PatchOperation } from '@azure/cosmos';
import type { LatestEvents, RoomInfo, RoomsTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { Lru } from './lru.js';
import { codePointCompare } from './order.js';

interface RoomDoc {
  roomNID: RoomNID;
  roomID: string;
  version: string;
  latest: EventNID[];
  lastSent: EventNID;
  snapshot: StateSnapshotNID;
  /** See LatestEvents.appending. */
  appending?: EventNID[];
  /** See LatestEvents.claimedUntil (null once released). */
  claimedUntil?: number | null;
  /** The token of the claim's writer (see claimRoom; null once released). */
  claimedBy?: string | null;
  /** The token of the last commit's writer (see commitOperation): how a writer whose answer was lost knows it applied. */
  writtenBy?: string;
  /**
   * A snapshot's block list, as the last writer that knew it gave it: the current one's when `nid` is `snapshot`
   * (see selectCurrentStateBlockNIDs), else stale and ignored.
   */
  snapshotBlocks?: { nid: StateSnapshotNID; blocks: StateBlockNID[] };
}

const latestOf = (doc: RoomDoc & { _etag: string }): LatestEvents => ({
  latestEventNIDs: doc.latest, lastEventSentNID: doc.lastSent, stateSnapshotNID: doc.snapshot, version: doc._etag, appending: doc.appending ?? [],
  ...(doc.claimedUntil ? { claimedUntil: doc.claimedUntil } : {}),
});

/**
 * rooms on Cosmos DB. The room document lives in the room's own partition `room|<NID>`, beside the room's
 * memberships and invites; `rid|<room ID>` maps the ID to the NID (creating it is the commit point of a new room);
 * `rooms` lists every room of the tenant (a small map, read only by selectRoomIDs). Updating the latest events is
 * an ETag-conditional patch: a writer that read an older version gets ConcurrentUpdateError and starts again.
 *
 * A writer's view of the room (selectLatestEventsNIDsForUpdate) is the room document as this process last wrote
 * or read it, without a request: every write that uses it is conditional on its ETag, so a view another writer
 * made stale fails that write (ConcurrentUpdateError), the view is dropped, and the retry reads the room afresh.
 * A write whose answer is lost drops the view too. Readers (selectLatestEventNIDs, selectRoomInfo) always read.
 */
@injectable()
export class CosmosRoomsTable implements RoomsTable {
  /** Room versions never change once the room exists: read each once. */
  private readonly versions = new Lru<number, string>(10_000);
  /** The room documents as this process last wrote them (see the class): a writer's view, checked by its ETag. */
  private readonly heads = new Lru<number, LatestEvents>(10_000);
  /** The same documents whole: what a commit replaces (see commitOperation). */
  private readonly docs = new Lru<number, RoomDoc & { _etag: string }>(10_000);

  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  /** Forgets the cached versions of these rooms: they were deleted (a purge, through the dump). */
  forgetRooms(roomNIDs: readonly number[]): void {
    for (const nid of roomNIDs) {
      this.versions.delete(nid);
      this.forgetHead(nid);
    }
  }

  /** Forgets the writer's view of the room (a commit that failed, or whose answer was lost). */
  forgetHead(roomNID: number): void {
    this.heads.delete(roomNID);
    this.docs.delete(roomNID);
  }

  private keep(doc: RoomDoc & { _etag: string }): void {
    this.heads.set(doc.roomNID, latestOf(doc));
    this.docs.set(doc.roomNID, doc);
  }

  /**
   * The room document's part of a commit (CosmosRoomCommit): a replace conditional on the version the writer read,
   * carrying the new latest events, current state and the writer's token, and releasing any claim (and the
   * appending events of older layouts). From the document as this process last wrote or read it, else read now.
   */
  async commitOperation(
    roomNID: RoomNID, expectedVersion: string, head: { latest: readonly EventNID[]; lastSent: EventNID; snapshot: StateSnapshotNID; blocks?: readonly StateBlockNID[] },
    token: string,
  ): Promise<OperationInput> {
    let doc = this.docs.get(roomNID);
    if (doc?._etag !== expectedVersion) doc = await this.room(roomNID);
    if (!doc) throw notFound('room NID', roomNID);
    if (doc._etag !== expectedVersion) {
      this.forgetHead(roomNID);
      throw new ConcurrentUpdateError(`room NID ${roomNID} changed since its latest events were read`);
    }
    const body: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(doc)) if (!k.startsWith('_')) body[k] = v;
    Object.assign(body, {
      latest: [...head.latest], lastSent: head.lastSent, snapshot: head.snapshot, appending: [], claimedUntil: null, claimedBy: null, writtenBy: token,
      ...(head.blocks ? { snapshotBlocks: { nid: head.snapshot, blocks: [...head.blocks] } } : {}),
    });
    return { operationType: 'Replace', id: 'room', resourceBody: body as JSONObject, ifMatch: expectedVersion };
  }

  /** After a commit: the room document as written (the writer's view from now on). */
  committed(doc: JSONObject): void {
    this.keep(doc as unknown as RoomDoc & { _etag: string });
  }

  /** The room document as stored now, kept as the writer's view (after a commit whose answer was lost). */
  async readHead(roomNID: RoomNID): Promise<(RoomDoc & { _etag: string }) | undefined> {
    const doc = await this.room(roomNID);
    if (doc) this.keep(doc);
    else this.forgetHead(roomNID);
    return doc;
  }

  /**
   * A conditional patch of the room document that keeps the writer's view: the patched document on success (the
   * view follows it), undefined if the ETag no longer matched or the document is gone; any failure drops the view.
   */
  private async patchHead(operation: string, roomNID: RoomNID, ops: PatchOperation[], ifMatch: string): Promise<(RoomDoc & { _etag: string }) | undefined> {
    let updated: (RoomDoc & { _etag: string }) | undefined;
    try {
      updated = await this.conn.requests.patch<RoomDoc>(operation, 'room', this.roomPK(roomNID), ops, ifMatch ? { ifMatch } : {});
    } finally {
      this.forgetHead(roomNID);
    }
    if (updated) this.keep(updated);
    return updated;
  }

  private roomPK(roomNID: number) {
    return this.conn.pk('room', roomNID);
  }

  private room(roomNID: number): Promise<(RoomDoc & { _etag: string }) | undefined> {
    return this.conn.requests.read<RoomDoc>('rooms.read', 'room', this.roomPK(roomNID));
  }

  private async rooms(roomNIDs: readonly number[]): Promise<RoomDoc[]> {
    if (roomNIDs.length === 0) return [];
    const docs = await this.conn.requests.readMany<RoomDoc>('rooms.read', roomNIDs.map((n) => ({ id: 'room', pk: this.roomPK(n) })));
    return docs.filter((d) => d !== undefined);
  }

  private async required(roomNID: RoomNID) {
    const doc = await this.room(roomNID);
    if (!doc) throw notFound('room NID', roomNID);
    return doc;
  }

  async insertRoomNID(_tx: Tx, roomID: string, roomVersion: string): Promise<RoomNID> {
    const r = this.conn.requests;
    const roomNID = (await this.conn.sequence('room').nextValue()) as RoomNID;
    const doc: RoomDoc = { roomNID, roomID, version: roomVersion, latest: [], lastSent: 0 as EventNID, snapshot: 0 as StateSnapshotNID };
    await r.create('rooms.insert', { id: 'room', pk: this.roomPK(roomNID), k: 'room', ...doc });
    await r.upsert('rooms.insert', { id: String(roomNID), pk: this.conn.pk('rooms'), k: 'room_list', roomNID, roomID });
    if (!(await r.create('rooms.insert', { id: 'rid', pk: this.conn.pk('rid', roomID), k: 'room_id', roomID, roomNID }))) {
      const winner = await r.read<{ roomNID: RoomNID }>('rooms.insert', 'rid', this.conn.pk('rid', roomID));
      if (winner?.roomNID === roomNID) return roomNID;
      await r.delete('rooms.insert', String(roomNID), this.conn.pk('rooms'));
      await r.delete('rooms.insert', 'room', this.roomPK(roomNID));
      throw duplicate('room', roomID);
    }
    return roomNID;
  }

  async selectRoomNID(_tx: Tx, roomID: string): Promise<RoomNID> {
    const doc = await this.conn.requests.read<{ roomNID: RoomNID }>('rooms.selectNID', 'rid', this.conn.pk('rid', roomID));
    if (!doc) throw notFound('room', roomID);
    return doc.roomNID;
  }

  async selectLatestEventNIDs(_tx: Tx, roomNID: RoomNID) {
    const doc = await this.required(roomNID);
    return { eventNIDs: doc.latest, stateSnapshotNID: doc.snapshot };
  }

  async selectLatestEventsNIDsForUpdate(_tx: Tx, roomNID: RoomNID): Promise<LatestEvents> {
    const known = this.heads.get(roomNID);
    if (known) return known;
    const doc = await this.required(roomNID);
    this.keep(doc);
    return latestOf(doc);
  }

  /**
   * The claim carries a fresh token: when its answer is lost (the retry meets the changed document, or no try is
   * answered), the room document says whether it applied, and a claim that did is this writer's, not another's.
   */
  async claimRoom(_tx: Tx, roomNID: RoomNID, appending: readonly EventNID[], until: number, expectedVersion: string): Promise<string> {
    const token = randomUUID();
    let updated: (RoomDoc & { _etag: string }) | undefined;
    let unanswered: unknown;
    try {
      updated = await this.patchHead('rooms.claim', roomNID, [
        { op: 'set', path: '/appending', value: [...appending] },
        { op: 'set', path: '/claimedUntil', value: until },
        { op: 'set', path: '/claimedBy', value: token },
      ], expectedVersion);
    } catch (e) {
      if (!(e instanceof StoreUnavailableError && e.retryable)) throw e;
      unanswered = e;
    }
    if (updated) return updated._etag;
    const now = await this.room(roomNID);
    if (now?.claimedBy === token) {
      this.keep(now);
      return now._etag;
    }
    if (unanswered !== undefined) throw unanswered;
    throw new ConcurrentUpdateError(`room NID ${roomNID} changed since its latest events were read`);
  }

  async releaseRoom(_tx: Tx, roomNID: RoomNID, expectedVersion: string): Promise<void> {
    await this.patchHead('rooms.release', roomNID, [{ op: 'set', path: '/claimedUntil', value: null }, { op: 'set', path: '/claimedBy', value: null }],
      expectedVersion);
  }

  async updateLatestEventNIDs(
    _tx: Tx, roomNID: RoomNID, latestEventNIDs: readonly EventNID[], lastEventSentNID: EventNID, stateSnapshotNID: StateSnapshotNID,
    expectedVersion: string,
    appending?: readonly EventNID[],
    stateBlockNIDs?: readonly StateBlockNID[],
  ): Promise<void> {
    const ops = [
      { op: 'set' as const, path: '/latest', value: [...latestEventNIDs] },
      { op: 'set' as const, path: '/lastSent', value: lastEventSentNID },
      { op: 'set' as const, path: '/snapshot', value: stateSnapshotNID },
      ...(appending !== undefined ? [{ op: 'set' as const, path: '/appending', value: [...appending] }] : []),
      { op: 'set' as const, path: '/claimedUntil', value: null },
      { op: 'set' as const, path: '/claimedBy', value: null },
      ...(stateBlockNIDs ? [{ op: 'set' as const, path: '/snapshotBlocks', value: { nid: stateSnapshotNID, blocks: [...stateBlockNIDs] } }] : []),
    ];
    const updated = await this.patchHead('rooms.updateLatest', roomNID, ops, expectedVersion);
    if (!updated) {
      if (!(await this.room(roomNID))) return; // like SQL's UPDATE of a missing row: nothing to do
      throw new ConcurrentUpdateError(`room NID ${roomNID} changed since its latest events were read`);
    }
  }

  async selectRoomVersionsForRoomNIDs(_tx: Tx, roomNIDs: readonly RoomNID[]): Promise<Map<RoomNID, string>> {
    const out = new Map<RoomNID, string>();
    const missing: RoomNID[] = [];
    for (const n of unique(roomNIDs)) {
      const version = this.versions.get(n);
      if (version === undefined) missing.push(n);
      else out.set(n, version);
    }
    for (const doc of await this.rooms(missing)) {
      this.versions.set(doc.roomNID, doc.version);
      out.set(doc.roomNID, doc.version);
    }
    return out;
  }

  async selectRoomInfo(_tx: Tx, roomID: string): Promise<RoomInfo | null> {
    const ref = await this.conn.requests.read<{ roomNID: RoomNID }>('rooms.selectInfo', 'rid', this.conn.pk('rid', roomID));
    if (!ref) return null;
    const doc = await this.room(ref.roomNID);
    if (!doc) return null;
    return { roomNID: doc.roomNID, roomVersion: doc.version, stateSnapshotNID: doc.snapshot, isStub: doc.latest.length === 0 };
  }

  async selectRoomIDs(_tx: Tx): Promise<string[]> {
    const pk = this.conn.pk('rooms');
    const rows = await this.conn.requests.query<{ roomID: string; roomNID: RoomNID }>('rooms.selectIDs', pk,
      "SELECT c.roomID, c.roomNID FROM c WHERE c.pk = @pk AND c.k = 'room_list'");
    // Only rooms whose creation committed (their rid document exists) count.
    const committed = await this.bulkSelectRoomNIDs(_tx, rows.map((r) => r.roomID));
    return rows.filter((r) => committed.get(r.roomID) === r.roomNID).map((r) => r.roomID).sort(codePointCompare);
  }

  /** A cross-partition query (each room document has its partition): a rare path. */
  async selectRoomIDsWithEvents(_tx: Tx): Promise<string[]> {
    const rows = await this.conn.requests.crossPartitionQuery<{ roomID: string }>('rooms.selectIDsWithEvents', this.conn.tenantPrefix,
      "SELECT c.roomID FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'room' AND ARRAY_LENGTH(c.latest) > 0");
    return rows.map((r) => r.roomID).sort(codePointCompare);
  }

  async bulkSelectRoomIDs(_tx: Tx, roomNIDs: readonly RoomNID[]): Promise<Map<RoomNID, string>> {
    return new Map((await this.rooms(unique(roomNIDs))).map((d) => [d.roomNID, d.roomID]));
  }

  async bulkSelectRoomNIDs(_tx: Tx, roomIDs: readonly string[]): Promise<Map<string, RoomNID>> {
    const docs = await this.conn.requests.readMany<{ roomID: string; roomNID: RoomNID }>('rooms.bulkSelectNIDs',
      unique(roomIDs).map((id) => ({ id: 'rid', pk: this.conn.pk('rid', id) })));
    return new Map(docs.filter((d) => d !== undefined).map((d) => [d.roomID, d.roomNID]));
  }
}

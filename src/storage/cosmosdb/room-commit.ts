import type { JSONObject, OperationInput } from '@azure/cosmos';
import { inject, injectable } from 'inversify';
import { randomUUID } from 'node:crypto';
import { ConcurrentUpdateError, CorruptionError, StoreUnavailableError } from '../../types/errors.js';
import type { RoomEvent } from '../../types/event.js';
import type { EventNID, RoomNID } from '../../types/nids.js';
import { awaitedLater, insertTransactions } from '../shared/append-writer.js';
import type { EventRowRef, PlanCommitter, RoomPlan, Writes } from '../shared/append-plan.js';
import type { StoredEventRow, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { CosmosCommitStaging } from './commit-staging.js';
import { CosmosEventJSONTable } from './event-json.js';
import { CosmosEventStateKeysTable } from './event-state-keys.js';
import { CosmosEventsTable, roomEventOf } from './events.js';
import { CosmosInvitesTable } from './invites.js';
import { CosmosMembershipTable } from './membership.js';
import { CosmosRedactionsTable } from './redactions.js';
import { CosmosRoomEvents } from './room-events.js';
import { CosmosRoomsTable } from './rooms.js';
import { CosmosTransactionsTable } from './transactions.js';
import { Lru } from './lru.js';
import type { Doc } from './requests.js';
import type { WrittenAhead } from './events.js';

/** Cosmos DB's limit on the operations of one transactional batch. */
const BATCH_OPERATIONS = 100;

/** One room's commit: its operations after the room document's, and what to record once it applied. */
interface RoomCommit {
  readonly room: RoomPlan;
  readonly docs: Doc[];
  /** Index documents of the state stored (hash -> NID): in the commit where they fit, else written right after it. */
  readonly index: Doc[];
  readonly written: (() => void)[];
}

/**
 * The input path's writes on Cosmos DB. Everything a room's readers find an event by (the room's document of the
 * event, the references to its prev events, the memberships it moves) and the room document itself (latest events,
 * current state) live in the room's partition, and each room's part of a call is written there by one
 * transactional batch: the room's commit. On Azure it applies all or nothing, so an event is stored, and readable
 * by its ID, exactly when its room commits it.
 *
 * Before the commit, in bulk and in crash-safe order, comes what nobody finds until then: the JSON and rows of the
 * new events (under fresh NIDs) with their ID locators, the content-addressed state, client transactions, the
 * invites (their claims and lists), redactions and the rooms-of-a-user mirrors (hints that readers check against
 * the room). A crash before the commit leaves documents nobody follows; the retry of the call plans afresh and
 * commits.
 *
 * The batch's first operation is the room document's replace, conditional on the version the call read (the SQL
 * drivers' row lock, held optimistically): a writer that raced another fails there and starts again. The rest are
 * upserts, which cannot fail on a condition. So where a batch is applied in part, as the emulator does (in order,
 * stopping at the first failure), a batch either fails at its first operation and writes nothing, or applies
 * whole. The replace carries a fresh token: a commit whose answer was lost reads the room document back and finds
 * its own token, or another's.
 */
@injectable()
export class CosmosRoomCommit implements PlanCommitter {
  readonly maxCommitOperations = BATCH_OPERATIONS;

  constructor(
    @inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection,
    @inject(CosmosRoomEvents) private readonly roomEvents: CosmosRoomEvents,
    @inject(CosmosRoomsTable) private readonly rooms: CosmosRoomsTable,
    @inject(CosmosEventsTable) private readonly events: CosmosEventsTable,
    @inject(CosmosEventJSONTable) private readonly eventJSON: CosmosEventJSONTable,
    @inject(CosmosEventStateKeysTable) private readonly stateKeys: CosmosEventStateKeysTable,
    @inject(CosmosMembershipTable) private readonly membership: CosmosMembershipTable,
    @inject(CosmosInvitesTable) private readonly invites: CosmosInvitesTable,
    @inject(CosmosRedactionsTable) private readonly redactions: CosmosRedactionsTable,
    @inject(CosmosTransactionsTable) private readonly transactions: CosmosTransactionsTable,
    @inject(CosmosCommitStaging) private readonly staging: CosmosCommitStaging,
  ) {}

  /**
   * Rows, JSON and locators written ahead (writeAhead), by NID, with what became of each: until the call that wrote
   * them writes its plan (a call that fails before leaves one behind; the bound drops it).
   */
  private readonly ahead = new Lru<number, { row: StoredEventRow; json: string; written: Promise<{ row: boolean; locator: boolean } | undefined> }>(1_000);

  /** The row, its JSON and its locator, in one bulk request with whatever the call reads meanwhile. */
  async writeAhead(tx: Tx, row: Omit<StoredEventRow, 'eventNID'>, json: string): Promise<EventNID | undefined> {
    const [eventNID] = await this.events.reserveEventNIDs(tx, 1);
    const full: StoredEventRow = { ...row, eventNID: eventNID! };
    const written = Promise.all([
      this.events.writeAhead(full),
      this.eventJSON.bulkInsertEventJSON(tx, [{ eventNID: eventNID!, eventJSON: json }]),
    ]).then(([placed]) => placed, () => undefined);
    this.ahead.set(eventNID!, { row: full, json, written });
    return eventNID;
  }

  /**
   * The event's own document, a reference per prev event, a membership if it is a member event, and for a state
   * event the index documents of a new block and snapshot (more, where blocks merge, go after the commit).
   */
  commitOperations(event: RoomEvent): number {
    return 1 + event.prevEventIDs.length + (event.type === 'm.room.member' ? 1 : 0) + (event.stateKey !== undefined ? 2 : 0);
  }

  async writePlan(tx: Tx, rooms: Map<RoomNID, RoomPlan>, w: Writes): Promise<void> {
    this.staging.begin(tx, new Set(w.rows.map((r) => r.row.eventNID as number)));
    try {
      await this.write(tx, rooms, w);
    } finally {
      this.staging.end(tx);
    }
  }

  private async write(tx: Tx, rooms: Map<RoomNID, RoomPlan>, w: Writes): Promise<void> {
    const stateNID = (ref: EventRowRef) => rooms.get(ref.roomNID)!.state.nid(ref.stateBefore);
    const rowOf = ({ row, ref }: Writes['rows'][number]): StoredEventRow => ({ ...row, stateSnapshotNID: stateNID(ref) });
    await insertTransactions(tx, this.transactions, w);

    // Immutable documents and what nobody finds yet, in as few bulk requests as the dependencies allow: JSON,
    // state, and the rows and locators of events whose state before is stored already; then the others' rows. What
    // was written ahead, and is what the plan writes, is not written again.
    const newRows = new Set(w.rows.map((r) => r.row.eventNID));
    const json = [...w.json].map(([eventNID, eventJSON]) => ({ eventNID, eventJSON }));
    const ready = w.rows.filter(({ ref }) => typeof ref.stateBefore === 'number');
    const later = w.rows.filter(({ ref }) => typeof ref.stateBefore !== 'number');
    // (A row written ahead has a stored state before: the room's current state.)
    const readyRows = ready.map(rowOf);
    const done = await this.writtenAhead(readyRows, json);
    const early = ready.length > 0 ? this.events.prepareEvents(tx, readyRows, done) : undefined;
    if (early) awaitedLater(early);
    const commits = new Map([...rooms.values()].map((room): [RoomNID, RoomCommit] => [room.roomNID, { room, docs: [], index: [], written: [] }]));
    /** By new event NID: the stored prev events its own document names (see addReferences). */
    const embedded = new Map<EventNID, string[]>();
    // The state keys the call mapped (a new user's ID) go in the same request as the rest, all before the commit.
    // Should another writer have mapped one of them first, the call starts again; the invites it wrote for that
    // user's NID meanwhile (in the same request, too) are taken back first.
    const staged = this.stateKeys.stagedNIDs(tx);
    const invitesWritten = (async () => {
      if (w.newInvites.length > 0) await this.invites.bulkInsertInvites(tx, w.newInvites);
      if (w.retiredInvites.length > 0) await this.invites.bulkRetireInvites(tx, w.retiredInvites);
    })();
    awaitedLater(invitesWritten);
    const keysWritten = this.stateKeys.writeStaged(tx).catch(async (e: unknown) => {
      await invitesWritten.catch(() => {});
      const lost = w.newInvites.filter((i) => staged.has(i.targetUserNID));
      if (lost.length > 0) await this.invites.withdrawInvites(lost);
      throw e;
    });
    await Promise.all([
      keysWritten,
      newRows.size > 0 ? this.eventJSON.bulkInsertEventJSON(tx, json.filter((j) => newRows.has(j.eventNID) && !done.json.has(j.eventNID))) : undefined,
      ...[...rooms.values()].map((r) => r.state.write()),
      early,
      ...[...rooms.values()].map((room) => this.addMemberships(room, commits.get(room.roomNID)!)),
      this.writeRedactions(tx, w, json, newRows),
      invitesWritten,
    ]);
    await Promise.all([
      later.length > 0 ? this.events.prepareEvents(tx, later.map(rowOf), done) : undefined,
      // What refers to stored rows, each chain in its own order (as the SQL drivers' transactions would).
      ...w.stateUpdates.map((ref) => this.events.updateEventState(tx, ref.eventNID, stateNID(ref))),
      ...w.accepted.map((a) => this.events.clearEventRejected(tx, a.eventNID, a.eventID)),
      ...w.sent.map((nid) => this.events.updateEventSentToOutput(tx, nid)),
      this.addReferences(w, commits, embedded),
    ]);
    // The index documents of the state the call stored (see storeBlocksAndSnapshots).
    for (const commit of commits.values()) commit.index.push(...this.staging.take(tx, commit.room.roomNID));
    for (const { row, ref } of w.rows) {
      const commit = commits.get(row.roomNID)!;
      const doc = { ...roomEventOf({ ...row, stateSnapshotNID: stateNID(ref) }), prev: embedded.get(row.eventNID) ?? [] };
      commit.docs.push(this.roomEvents.eventDoc(doc));
      commit.written.push(() => this.roomEvents.remember(doc));
    }
    await Promise.all([...commits.values()].filter((c) => c.room.moved || c.docs.length > 0 || c.index.length > 0).map((c) => this.commit(c)));
  }

  /** Which of these rows, locators and JSON were written ahead exactly as the plan has them (see writeAhead). */
  private async writtenAhead(rows: readonly StoredEventRow[], json: readonly { eventNID: EventNID; eventJSON: string }[]): Promise<WrittenAhead> {
    const done = { rows: new Set<number>(), locators: new Set<number>(), json: new Set<number>(), rewrite: new Set<number>() };
    for (const row of rows) {
      const ahead = this.ahead.get(row.eventNID);
      if (!ahead) continue;
      this.ahead.delete(row.eventNID);
      const placed = await ahead.written;
      if (!placed) continue;
      // A row written ahead that the plan changed (another state before, say) is replaced: its NID is this call's.
      if (!sameRow(ahead.row, row)) done.rewrite.add(row.eventNID);
      else if (placed.row) done.rows.add(row.eventNID);
      if (placed.locator) done.locators.add(row.eventNID);
      if (json.find((j) => j.eventNID === row.eventNID)?.eventJSON === ahead.json) done.json.add(row.eventNID);
    }
    return done;
  }

  /**
   * Redactions, the redacted JSON and the marks that say they were applied, all at once (a new redaction applied at
   * once is recorded validated): none of it counts before the room's commit, since a redaction whose event is not
   * stored is ignored (and applied again by whichever call stores it).
   */
  private async writeRedactions(tx: Tx, w: Writes, json: readonly { eventNID: EventNID; eventJSON: string }[], newRows: ReadonlySet<EventNID>): Promise<void> {
    const validated = new Set(w.validated);
    const recorded = new Set(w.redactions.map((r) => r.redactionEventID));
    const overwrites = json.filter((j) => !newRows.has(j.eventNID));
    await Promise.all([
      ...w.redactions.map((r) => this.redactions.recordRedaction(validated.has(r.redactionEventID) ? { ...r, validated: true } : r)),
      overwrites.length > 0 ? this.eventJSON.bulkInsertEventJSON(tx, overwrites) : undefined,
      ...w.validated.filter((id) => !recorded.has(id)).map((id) => this.redactions.markRedactionValidated(tx, id, true)),
    ]);
  }

  /**
   * The room's membership documents go in its commit; their mirrors (hints) are written now, with no read first,
   * unless the change leaves them as this process wrote them (see CosmosMembershipTable.membershipMirrors).
   */
  private async addMemberships(room: RoomPlan, commit: RoomCommit): Promise<void> {
    if (room.membershipWrites.size === 0) return;
    const writes = [...room.membershipWrites.values()];
    const [{ docs, written }] = await Promise.all([
      this.membership.membershipDocs(room.roomNID, writes),
      this.conn.requests.upsertMany('membership.mirror', this.membership.membershipMirrors(room.roomNID, writes, true)),
    ]);
    commit.docs.push(...docs);
    commit.written.push(written);
  }

  /**
   * The call's references. A new event's to a stored prev event (stored before, or earlier in the call) go in its
   * own document (`embedded`): no document of their own. The others (to an event not stored: a backward
   * extremity; or made by a stored event accepted late) go in the referenced event's PrevReferenceDoc: its list of
   * referring NIDs as read by the call (or read now), with the call's added.
   */
  private async addReferences(w: Writes, commits: Map<RoomNID, RoomCommit>, embedded: Map<EventNID, string[]>): Promise<void> {
    const roomOfNID = new Map<EventNID, RoomNID>();
    for (const [room, nids] of w.eventNIDs) for (const nid of nids) roomOfNID.set(nid, room);
    const newRows = new Map(w.rows.map(({ row }) => [row.eventNID as number, row]));
    const newInRoom = new Set(w.rows.map(({ row }) => `${row.roomNID}|${row.eventID}`));
    const added = new Map<string, { room: RoomNID; prev: string; nids: EventNID[] }>();
    for (const { previousEventID, eventNID } of w.edges.values()) {
      const room = roomOfNID.get(eventNID);
      if (room === undefined) throw new CorruptionError(`event NID ${eventNID} names ${previousEventID} but belongs to no room of the call`);
      if (newRows.has(eventNID) && (newInRoom.has(`${room}|${previousEventID}`) || this.roomEvents.knownStored(room, previousEventID))) {
        embedded.set(eventNID, [...(embedded.get(eventNID) ?? []), previousEventID]);
        continue;
      }
      const key = `${room}|${previousEventID}`;
      const entry = added.get(key) ?? { room, prev: previousEventID, nids: [] };
      entry.nids.push(eventNID);
      added.set(key, entry);
    }
    const unknown = [...added.values()].filter((a) => this.roomEvents.knownReferences(a.room, a.prev) === undefined);
    await this.roomEvents.readReferences(unknown.map((a) => ({ room: a.room, eventID: a.prev })));
    for (const { room, prev, nids } of added.values()) {
      const had = this.roomEvents.knownReferences(room, prev) ?? [];
      const merged = [...new Set([...had, ...nids])];
      if (merged.length === had.length) continue;
      const commit = commits.get(room)!;
      commit.docs.push(this.roomEvents.referenceDoc(room, prev, merged));
      commit.written.push(() => this.roomEvents.rememberReferences(room, prev, merged));
    }
  }

  /** One room's transactional batch (see the class). */
  private async commit({ room, docs: own, index, written }: RoomCommit): Promise<void> {
    if (own.length + 1 > BATCH_OPERATIONS) {
      throw new CorruptionError(`room NID ${room.roomNID}: a commit of ${own.length + 1} operations is past Cosmos DB's ${BATCH_OPERATIONS} (the input path splits calls by commitOperations)`);
    }
    // Index documents that do not fit are written once the commit applied: an index only saves NIDs, and until it
    // is written the same state stored again gets NIDs of its own.
    const space = BATCH_OPERATIONS - 1 - own.length;
    const docs = [...own, ...index.slice(0, space)];
    const after = index.slice(space);
    const token = randomUUID();
    const head = await this.rooms.commitOperation(room.roomNID, room.version, {
      latest: room.latest.map((l) => l.eventNID), lastSent: room.lastEventSentNID, snapshot: room.state.nid(room.current),
      ...(room.state.blockNIDsOf(room.current) ? { blocks: room.state.blockNIDsOf(room.current)! } : {}),
    }, token);
    // Each operation names the partition too: the emulator reads it per operation (Azure checks it is the batch's).
    const pk = this.conn.pk('room', room.roomNID);
    const ops: OperationInput[] = [{ ...head, partitionKey: pk }, ...docs.map((d): OperationInput => ({ operationType: 'Upsert', partitionKey: pk, resourceBody: d as JSONObject }))];
    let results: { statusCode: number; resourceBody?: JSONObject }[] | undefined;
    let unanswered: unknown;
    try {
      results = await this.conn.requests.batch('rooms.commit', pk, ops);
    } catch (e) {
      if (!(e instanceof StoreUnavailableError && e.retryable)) throw e;
      unanswered = e;
    }
    const first = results?.[0];
    if (first && first.statusCode < 300) {
      const failed = results!.find((r) => r.statusCode >= 300);
      if (failed) throw new CorruptionError(`room NID ${room.roomNID}: an upsert of its commit failed with status ${failed.statusCode}`);
      this.rooms.committed(first.resourceBody!);
      room.version = (first.resourceBody as { _etag: string })._etag;
    } else {
      // Refused at the room document (changed, or a try whose answer was lost applied), or no answer at all.
      if (results && first?.statusCode !== 412 && first?.statusCode !== 404) {
        const failed = results.find((r) => r.statusCode >= 300 && r.statusCode !== 424) ?? first;
        throw new CorruptionError(`room NID ${room.roomNID}: its commit failed with status ${failed?.statusCode}`);
      }
      const now = await this.rooms.readHead(room.roomNID);
      if (now?.writtenBy !== token) {
        if (unanswered !== undefined) throw unanswered;
        throw new ConcurrentUpdateError(`room NID ${room.roomNID} changed since its latest events were read`);
      }
      room.version = now._etag;
    }
    for (const f of written) f();
    if (after.length > 0) await this.conn.requests.upsertMany('rooms.commit', after);
  }
}

/** Event rows as equal as a reader can tell. */
function sameRow(a: StoredEventRow, b: StoredEventRow): boolean {
  return a.eventNID === b.eventNID && a.roomNID === b.roomNID && a.eventTypeNID === b.eventTypeNID && a.eventStateKeyNID === b.eventStateKeyNID &&
    a.eventID === b.eventID && a.depth === b.depth && a.isRejected === b.isRejected && a.stateSnapshotNID === b.stateSnapshotNID &&
    (a.sentToOutput ?? false) === (b.sentToOutput ?? false) && a.authEventNIDs.length === b.authEventNIDs.length &&
    a.authEventNIDs.every((n, i) => n === b.authEventNIDs[i]);
}

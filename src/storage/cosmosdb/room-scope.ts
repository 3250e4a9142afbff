import type { SqlParameter } from '@azure/cosmos';
import { inject, injectable } from 'inversify';
import { TOKENS } from '../../di/tokens.js';
import { CorruptionError } from '../../types/errors.js';
import type { StateBlockNID } from '../../types/nids.js';
import { unique } from '../shared/contracts.js';
import { decodeStateBlock } from '../shared/state-codec.js';
import type { DumpRows, DumpTableName, StoreDump } from '../tables/dump.js';
import type { RoomScopeTable } from '../tables/room-scope.js';
import type { Tx } from '../tables/unit-of-work.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { docId } from './ids.js';
import { CosmosRoomEvents, ROOM_EVENT_KIND } from './room-events.js';

/** IDs an ARRAY_CONTAINS parameter carries at most: a query's text and parameters stay far below Cosmos DB's limits. */
const QUERY_IDS = 500;

/**
 * One room's documents on Cosmos DB (README, "Azure Cosmos DB", the access-pattern table):
 * - in the room's partition `room|<NID>`: the room document, its stored events, memberships and invite lists
 *   (single-partition queries);
 * - by point reads, given keys the room's rows name: the room's ID document, event rows and JSON (`ev|<NID>`),
 *   state blocks, redactions, prev_events sets (by the IDs the room's events' JSON names, in both homes);
 * - by cross-partition queries on an indexed property, for what lives in partitions of its own: the room's
 *   snapshots (`k = 'ss' AND room = @room`), the client
 *   transactions of its events (`eventID` among the room's), and the snapshots another room names. Cosmos DB
 *   indexes every property by default: such a query costs one index lookup per physical partition and reads only the
 *   documents that match, not the container.
 * Deletes go through the store dump's (dump.ts), which also removes what the driver derived from each row.
 */
@injectable()
export class CosmosRoomScope implements RoomScopeTable {
  private read = 0;

  constructor(
    @inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection,
    @inject(TOKENS.StoreDump) private readonly dump: StoreDump,
    @inject(CosmosRoomEvents) private readonly roomEvents: CosmosRoomEvents,
  ) {}

  get rowsRead(): number {
    return this.read;
  }

  private counted<T>(docs: readonly (T | undefined)[]): T[] {
    const found = docs.filter((d): d is T => d !== undefined);
    this.read += found.length;
    return found;
  }

  private async readMany<T>(operation: string, refs: readonly { id: string; pk: string }[]): Promise<T[]> {
    if (refs.length === 0) return [];
    return this.counted(await this.conn.requests.readMany<T>(operation, refs));
  }

  private async across<T>(operation: string, sql: string, parameters: SqlParameter[]): Promise<T[]> {
    return this.counted(await this.conn.requests.crossPartitionQuery<T>(operation, this.conn.tenantPrefix, sql, parameters));
  }

  private async inPartition<T>(operation: string, pk: string, sql: string, parameters: SqlParameter[] = []): Promise<T[]> {
    return this.counted(await this.conn.requests.query<T>(operation, pk, sql, parameters));
  }

  async room(_tx: Tx, roomID: string): Promise<DumpRows['rooms'] | undefined> {
    const [ref] = await this.readMany<{ roomNID: number }>('roomScope.rid', [{ id: 'rid', pk: this.conn.pk('rid', roomID) }]);
    if (!ref) return undefined;
    const [x] = await this.readMany<{ roomNID: number; roomID: string; version: string; latest: number[]; lastSent: number; snapshot: number }>(
      'roomScope.room', [{ id: 'room', pk: this.conn.pk('room', ref.roomNID) }]);
    if (!x) throw new CorruptionError(`room ${roomID.slice(0, 200)} has an ID document but no room document under NID ${ref.roomNID}`);
    return { nid: x.roomNID, roomID: x.roomID, version: x.version, latest: [...x.latest], lastSent: x.lastSent, snapshot: x.snapshot };
  }

  /** The room's stored events: its documents of them (the commit point, in its partition), then their rows by point reads. */
  async events(_tx: Tx, roomNID: number): Promise<DumpRows['events'][]> {
    const locators = await this.inPartition<{ nid: number; eventID: string }>('roomScope.events', this.conn.pk('room', roomNID),
      `SELECT c.nid, c.eventID FROM c WHERE c.pk = @pk AND c.k = '${ROOM_EVENT_KIND}'`);
    const rows = await this.conn.requests.readMany<DumpRows['events']>('roomScope.event', locators.map((l) => ({ id: 'row', pk: this.conn.pk('ev', l.nid) })));
    this.read += rows.filter(Boolean).length;
    return locators.map((l, i) => {
      const x = rows[i];
      if (!x || x.eventID !== l.eventID) throw new CorruptionError(`event ${l.eventID.slice(0, 200)} is stored in its room but has no row under NID ${l.nid}`);
      return {
        nid: x.nid, room: x.room, type: x.type, key: x.key, eventID: x.eventID, auth: [...x.auth], depth: x.depth,
        rejected: x.rejected, snapshot: x.snapshot, sent: x.sent,
      };
    });
  }

  async eventJSON(_tx: Tx, eventNIDs: readonly number[]): Promise<DumpRows['event_json'][]> {
    const docs = await this.readMany<{ nid: number; json: string }>('roomScope.json', unique(eventNIDs).map((nid) => ({ id: 'json', pk: this.conn.pk('ev', nid) })));
    return docs.map((j) => ({ nid: j.nid, json: j.json }));
  }

  async snapshots(_tx: Tx, roomNID: number): Promise<DumpRows['state_snapshots'][]> {
    const docs = await this.across<{ nid: number; room: number; blocks: number[] }>('roomScope.snapshots',
      "SELECT c.nid, c.room, c.blocks FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'ss' AND c.room = @room", [{ name: '@room', value: roomNID }]);
    return docs.map((s) => ({ nid: s.nid, room: s.room, blocks: [...s.blocks] }));
  }

  async blocks(_tx: Tx, blockNIDs: readonly number[]): Promise<DumpRows['state_blocks'][]> {
    const docs = await this.readMany<{ nid: number; bytes: string }>('roomScope.blocks', unique(blockNIDs).map((nid) => ({ id: 'sb', pk: this.conn.pk('sb', nid) })));
    return docs.map((b) => ({
      nid: b.nid,
      entries: decodeStateBlock(Buffer.from(b.bytes, 'base64'), b.nid as StateBlockNID).map((e) => [e.eventTypeNID, e.eventStateKeyNID, e.eventNID] as const),
    }));
  }

  async memberships(_tx: Tx, roomNID: number): Promise<DumpRows['membership'][]> {
    const docs = await this.inPartition<Record<string, unknown>>('roomScope.memberships', this.conn.pk('room', roomNID),
      "SELECT * FROM c WHERE c.pk = @pk AND c.k = 'membership'");
    return docs.map((d) => ({
      room: d.room as number, target: d.target as number, sender: d.sender as number, membership: d.membership as number,
      event: d.eventNID as number, local: d.local === true, forgotten: d.forgotten === true,
    }));
  }

  /** The room's invite lists (one per target, in the room's partition); `seq` as stored (0 where a list predates it). */
  async invites(_tx: Tx, roomNID: number): Promise<DumpRows['invites'][]> {
    const docs = await this.inPartition<{ room: number; target: number; invites: { id: string; sender: number; retired: boolean; json: string; seq?: number }[] }>(
      'roomScope.invites', this.conn.pk('room', roomNID), "SELECT c.room, c.target, c.invites FROM c WHERE c.pk = @pk AND c.k = 'invites'");
    return docs.flatMap((d) => d.invites.map((i) => ({
      id: i.id, room: d.room, target: d.target, sender: i.sender, retired: i.retired, json: i.json, seq: i.seq ?? 0,
    })));
  }

  async redactions(_tx: Tx, eventIDs: readonly string[]): Promise<DumpRows['redactions'][]> {
    const docs = await this.readMany<{ redactionEventID: string; redactsEventID: string; validated: boolean; seq?: number }>('roomScope.redactions',
      unique(eventIDs).map((id) => ({ id: 'red', pk: this.conn.pk('red', id) })));
    return docs.map((d) => ({ id: d.redactionEventID, redacts: d.redactsEventID, validated: d.validated === true, seq: d.seq ?? 0 }));
  }

  /** Client transactions live in their user's partition: found by the event they sent (an indexed property). */
  async transactions(_tx: Tx, eventIDs: readonly string[]): Promise<DumpRows['transactions'][]> {
    const ids = unique(eventIDs);
    const out: DumpRows['transactions'][] = [];
    for (let i = 0; i < ids.length; i += QUERY_IDS) {
      const docs = await this.across<{ id: string; userID?: string; sessionID?: number; transactionID?: string; eventID: string }>('roomScope.transactions',
        "SELECT c.id, c.userID, c.sessionID, c.transactionID, c.eventID FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'transaction' AND ARRAY_CONTAINS(@ids, c.eventID)",
        [{ name: '@ids', value: ids.slice(i, i + QUERY_IDS) }]);
      for (const d of docs) {
        if (d.userID === undefined || d.sessionID === undefined || d.transactionID === undefined || d.id !== docId(d.sessionID, d.transactionID)) {
          throw new CorruptionError(`the transaction document of event ${d.eventID.slice(0, 200)} does not carry its key`);
        }
        out.push({ transactionID: d.transactionID, sessionID: d.sessionID, userID: d.userID, eventID: d.eventID });
      }
    }
    return out;
  }

  /**
   * The references these events make, in their three homes (see CosmosPreviousEventsTable): the events' own room
   * documents, and the sets of the IDs their JSON names as prev_events in their rooms' partitions and in their own;
   * keeping these events' entries.
   */
  async previousEvents(tx: Tx, eventNIDs: readonly number[]): Promise<DumpRows['previous_events'][]> {
    const nids = new Set(eventNIDs);
    const [json, rows] = await Promise.all([
      this.eventJSON(tx, [...nids]),
      this.readMany<{ nid: number; room: number; eventID: string }>('roomScope.event', [...nids].map((nid) => ({ id: 'row', pk: this.conn.pk('ev', nid) }))),
    ]);
    // The references the events' own room documents keep (RoomEventDoc.prev).
    const own = await this.readMany<{ nid: number; prev?: string[] }>('roomScope.event', rows.map((r) => this.roomEvents.eventRef(r.room, r.eventID)));
    const roomOf = new Map(rows.map((r) => [r.nid, r.room]));
    const refs = json.flatMap((j) => prevEventIDsOf(j.json).flatMap((prev) => {
      const room = roomOf.get(j.nid);
      return [{ id: 'pe', pk: this.conn.pk('pe', prev) }, ...(room === undefined ? [] : [this.roomEvents.referenceRef(room, prev)])];
    }));
    const seen = new Set<string>();
    const sets = await this.readMany<{ key: string; values: number[] }>('roomScope.previousEvents', refs.filter((r) => {
      const key = `${r.pk}|${r.id}`;
      return !seen.has(key) && seen.add(key);
    }));
    const pairs = new Map<string, DumpRows['previous_events']>();
    for (const s of sets) for (const nid of s.values) if (nids.has(nid)) pairs.set(`${nid}|${s.key}`, { prev: s.key, nid });
    for (const d of own) for (const prev of d.prev ?? []) pairs.set(`${d.nid}|${prev}`, { prev, nid: d.nid });
    return [...pairs.values()];
  }

  async aliases(_tx: Tx, roomID: string): Promise<DumpRows['room_aliases'][]> {
    return this.inPartition<DumpRows['room_aliases']>('roomScope.aliases', this.conn.pk('aliases'),
      "SELECT c.alias, c.roomID, c.creator FROM c WHERE c.pk = @pk AND c.k = 'alias' AND c.roomID = @room", [{ name: '@room', value: roomID }]);
  }

  /** The room's directory entries, one per (appservice, network), in the directory's partition. */
  async published(_tx: Tx, roomID: string): Promise<DumpRows['published'][]> {
    const docs = await this.inPartition<{ roomID: string; appserviceID?: string; networkID?: string; published?: boolean }>('roomScope.published',
      this.conn.pk('published'), "SELECT c.roomID, c.appserviceID, c.networkID, c.published FROM c WHERE c.pk = @pk AND c.k = 'published' AND c.roomID = @room",
      [{ name: '@room', value: roomID }]);
    // Documents written before the directory had networks carry neither: the server's own list.
    return docs.map((d) => ({ roomID: d.roomID, appserviceID: d.appserviceID ?? '', networkID: d.networkID ?? '', published: d.published === true }));
  }

  /** In the reports' partition (a small one: reports are few), by the room's NID. */
  async reportedEvents(_tx: Tx, roomNID: number): Promise<DumpRows['reported_events'][]> {
    const docs = await this.inPartition<Record<string, unknown>>('roomScope.reportedEvents', this.conn.pk('reports'),
      "SELECT * FROM c WHERE c.pk = @pk AND c.k = 'report' AND c.roomNID = @room", [{ name: '@room', value: roomNID }]);
    return docs.map((d) => ({
      id: d.reportID as number, room: d.roomNID as number, event: d.eventNID as number, reporter: d.reportingUserNID as number,
      sender: d.eventSenderNID as number, reason: String(d.reason), score: d.score as number, receivedTS: d.receivedTS as number,
    }));
  }

  /** The room's own key partition. */
  async userRoomKeys(_tx: Tx, roomNID: number): Promise<DumpRows['user_room_keys'][]> {
    const docs = await this.inPartition<Record<string, unknown>>('roomScope.userRoomKeys', this.conn.pk('urk', roomNID),
      "SELECT * FROM c WHERE c.pk = @pk AND c.k = 'urk'");
    return docs.map((d) => ({ user: d.userNID as number, room: d.roomNID as number, privateKey: typeof d.priv === 'string' ? d.priv : null, publicKey: String(d.pub) }));
  }

  async snapshotsNamedOutside(_tx: Tx, roomNID: number, snapshotNIDs: readonly number[]): Promise<Set<number>> {
    const named = new Set<number>();
    const all = unique(snapshotNIDs);
    for (let i = 0; i < all.length; i += QUERY_IDS) {
      const params = [{ name: '@s', value: all.slice(i, i + QUERY_IDS) }, { name: '@room', value: roomNID }];
      const [events, rooms] = await Promise.all([
        this.across<{ snapshot: number }>('roomScope.namedByEvents',
          "SELECT c.snapshot FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'event' AND ARRAY_CONTAINS(@s, c.snapshot) AND c.room != @room", params),
        this.across<{ snapshot: number }>('roomScope.namedByRooms',
          "SELECT c.snapshot FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'room' AND ARRAY_CONTAINS(@s, c.snapshot) AND c.roomNID != @room", params),
      ]);
      for (const x of [...events, ...rooms]) named.add(x.snapshot);
    }
    return named;
  }

  /** Cosmos DB has no transactions: the dump's deletes, in the order the purge gives them. */
  delete<K extends DumpTableName>(_tx: Tx, name: K, rows: readonly DumpRows[K][]): Promise<void> {
    return this.dump.table(name).delete(rows);
  }
}

/** The prev_events an event's JSON names: IDs (room versions 3 and later) or [ID, hashes] pairs (1 and 2). */
function prevEventIDsOf(json: string): string[] {
  const prev = (JSON.parse(json) as { prev_events?: unknown }).prev_events;
  if (!Array.isArray(prev)) return [];
  return prev.map((p) => (Array.isArray(p) ? p[0] : p)).filter((id): id is string => typeof id === 'string');
}

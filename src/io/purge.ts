import type { Storage } from '../index.js';
import { EMPTY_STATE_KEY_NID, EventTypes } from '../types/nids.js';
import { InvalidInputError, NotFoundError, StorageError } from '../types/errors.js';
import type { DumpRows, DumpTableName, StoreDump } from '../storage/tables/dump.js';
import { rowsOf } from './dump-rows.js';
import { dumpOf } from './copy.js';
import { NIDSet } from './nid-sets.js';

/**
 * `purge-room` and `purge-history`: deleting a room, or the older part of its history, on any driver, through the
 * dump's deletes (src/storage/tables/dump.ts). Both find what to delete by reading the tables, then delete table by
 * table in an order that is safe to interrupt: what is found through another row goes before that row (an
 * event's JSON, references and redactions before the event; state blocks, found through snapshots, before the
 * snapshots; the room row, through which a re-run finds everything, last). Run again after a crash or a kill, a
 * purge finds what is left and finishes. The room must not be written to meanwhile.
 *
 * Then the engine is asked to give the space back where it needs asking (SQLite: VACUUM; PostgreSQL: VACUUM, which
 * makes the space reusable; Cosmos DB frees it by itself), and the report says what was deleted and how the
 * store's size changed.
 */
export interface PurgeReport {
  readonly roomID: string;
  /** Rows deleted per table. */
  readonly deleted: Readonly<Partial<Record<DumpTableName, number>>>;
  readonly rowsDeleted: number;
  /** Events kept (purge-history): those after the cut, and the older ones the room still needs. */
  readonly eventsKept?: number;
  /** The engine's size of the whole store before the purge and after reclaiming the space (undefined on Cosmos DB). */
  readonly bytesBefore: number | undefined;
  readonly bytesAfter: number | undefined;
  /** What was done to give the space back, and what the engine will do later. */
  readonly reclaimed: string;
  readonly elapsedMs: number;
}

export interface PurgeOptions {
  /** Called as each table's deletes begin: the table, and how many of its rows go. */
  readonly onTable?: (table: DumpTableName, rows: number) => void;
  /** Skip the space reclaiming (a test, or an operator who runs VACUUM at a quieter time). */
  readonly reclaim?: boolean;
}

const PAGE = 500;

/** A purge that cannot run: the room is unknown, the cut is not an event of the room. */
export class PurgeRefusedError extends StorageError {
  readonly code = 'PURGE_REFUSED';
}

/** Deletes every trace of the room: events, JSON, state no other room uses, memberships, invites, aliases, ... */
export async function purgeRoom(storage: Storage, roomID: string, options: PurgeOptions = {}): Promise<PurgeReport> {
  const started = Date.now();
  const dump = dumpOf(storage, 'store');
  const room = await findRoom(dump, roomID);
  const bytesBefore = (await storage.stats.collect()).totalBytes;
  const events: DumpRows['events'][] = [];
  const namedElsewhere = await snapshotsNamedOutside(dump, room.nid, (e) => { if (e.room === room.nid) events.push(e); return e.room !== room.nid; });
  const nids = new NIDSet();
  const ids = new Set<string>();
  for (const e of events) { nids.add(e.nid); ids.add(e.eventID); }
  // A snapshot's room is the room that first stored it; another room may name it too (the empty state, before
  // every room's create event, is one snapshot for all rooms), and keeps it.
  const snapshots = await collect(dump, 'state_snapshots', (s) => s.room === room.nid && !namedElsewhere.has(s.nid));
  const blocks = await blocksToDelete(dump, new Set(snapshots.map((s) => s.nid)), nids);

  const plan: Plan = [
    step('room_aliases', (a) => a.roomID === roomID),
    step('published', (p) => p.roomID === roomID),
    step('reported_events', (r) => r.room === room.nid),
    step('user_room_keys', (k) => k.room === room.nid),
    step('invites', (i) => i.room === room.nid),
    step('membership', (m) => m.room === room.nid),
    step('redactions', (r) => ids.has(r.id)),
    step('transactions', (t) => ids.has(t.eventID)),
    step('previous_events', (p) => nids.has(p.nid)),
    step('event_json', (j) => nids.has(j.nid)),
    step('events', events),
    step('state_blocks', (b) => blocks.has(b.nid)),
    step('state_snapshots', snapshots),
    step('rooms', [room]),
  ];
  const deleted = await runPlan(dump, plan, options);
  // Cached by the Database of this process: the room's NID and version, now gone.
  await storage.roomserver.evictRoom(roomID, room.nid as never);
  return finish(storage, dump, { roomID, deleted, bytesBefore, started, reclaim: options.reclaim });
}

/** Where purge-history cuts: the events stored before this event, or those sent before this time. */
export type HistoryCut = { readonly beforeEventID: string } | { readonly beforeTimestamp: number };

/**
 * Deletes the room's events before the cut, keeping what the room still needs: the latest events, the create
 * event, the current state, and, for every event kept, the state before it (its snapshot, the snapshot's blocks and
 * the state events they name) and its auth events, to a fixed point; the events of the memberships and active
 * invites too. So `state` answers for every kept event and the store passes `check`. "Before an event" is
 * before it in the room's stored order (event NIDs grow as events are stored).
 */
export async function purgeHistory(storage: Storage, roomID: string, cut: HistoryCut, options: PurgeOptions = {}): Promise<PurgeReport> {
  const started = Date.now();
  const dump = dumpOf(storage, 'store');
  const room = await findRoom(dump, roomID);
  const bytesBefore = (await storage.stats.collect()).totalBytes;
  const events = new Map<number, DumpRows['events']>();
  for await (const e of rowsOf(dump, 'events')) if (e.room === room.nid) events.set(e.nid, e);

  const before = await olderEvents(dump, events, cut);
  const keep = new NIDSet();
  const work: number[] = [];
  const need = (nid: number) => {
    if (nid !== 0 && events.has(nid) && !keep.has(nid)) { keep.add(nid); work.push(nid); }
  };
  for (const nid of events.keys()) if (!before.has(nid)) need(nid);
  for (const nid of room.latest) need(nid);
  for (const e of events.values()) if (e.type === EventTypes.create && e.key === EMPTY_STATE_KEY_NID) need(e.nid);
  for await (const m of rowsOf(dump, 'membership')) if (m.room === room.nid) need(m.event);
  const activeInvites = new Set<string>();
  for await (const i of rowsOf(dump, 'invites')) if (i.room === room.nid && !i.retired) activeInvites.add(i.id);
  for (const e of events.values()) if (activeInvites.has(e.eventID)) need(e.nid);

  // The room's state, read once: snapshot -> blocks -> the events they name.
  const snapshots = new Map<number, DumpRows['state_snapshots']>();
  for await (const s of rowsOf(dump, 'state_snapshots')) if (s.room === room.nid) snapshots.set(s.nid, s);
  const blockNIDs = new Set([...snapshots.values()].flatMap((s) => s.blocks));
  const blockEvents = new Map<number, number[]>();
  for await (const b of rowsOf(dump, 'state_blocks')) if (blockNIDs.has(b.nid)) blockEvents.set(b.nid, b.entries.map((x) => x[2]));
  const keptSnapshots = new Set<number>();
  const needSnapshot = (nid: number) => {
    if (nid === 0 || keptSnapshots.has(nid)) return;
    keptSnapshots.add(nid);
    for (const block of snapshots.get(nid)?.blocks ?? []) for (const event of blockEvents.get(block) ?? []) need(event);
  };
  needSnapshot(room.snapshot);
  while (work.length > 0) {
    const e = events.get(work.pop()!)!;
    needSnapshot(e.snapshot);
    for (const auth of e.auth) need(auth);
  }

  const gone = [...events.values()].filter((e) => !keep.has(e.nid));
  const nids = new NIDSet();
  const ids = new Set<string>();
  for (const e of gone) { nids.add(e.nid); ids.add(e.eventID); }
  const namedElsewhere = await snapshotsNamedOutside(dump, room.nid, (e) => e.room !== room.nid);
  const droppedSnapshots = new Set([...snapshots.keys()].filter((nid) => !keptSnapshots.has(nid) && !namedElsewhere.has(nid)));
  const blocks = await blocksToDelete(dump, droppedSnapshots, nids);
  const plan: Plan = [
    step('reported_events', (r) => nids.has(r.event)),
    step('redactions', (r) => ids.has(r.id)),
    step('transactions', (t) => ids.has(t.eventID)),
    step('invites', (i) => ids.has(i.id)),
    step('previous_events', (p) => nids.has(p.nid)),
    step('event_json', (j) => nids.has(j.nid)),
    step('events', gone),
    step('state_blocks', (b) => blocks.has(b.nid)),
    step('state_snapshots', [...droppedSnapshots].map((nid) => snapshots.get(nid)!)),
  ];
  const deleted = await runPlan(dump, plan, options);
  return finish(storage, dump, { roomID, deleted, bytesBefore, started, reclaim: options.reclaim, eventsKept: events.size - gone.length });
}

/** The room's events before the cut. */
async function olderEvents(dump: StoreDump, events: Map<number, DumpRows['events']>, cut: HistoryCut): Promise<Set<number>> {
  if ('beforeEventID' in cut) {
    const at = [...events.values()].find((e) => e.eventID === cut.beforeEventID);
    if (!at) throw new PurgeRefusedError(`event ${cut.beforeEventID} is not an event of this room`);
    return new Set([...events.keys()].filter((nid) => nid < at.nid));
  }
  if (!Number.isSafeInteger(cut.beforeTimestamp) || cut.beforeTimestamp < 0) {
    throw new InvalidInputError(`a cut time must be milliseconds since 1970, got ${cut.beforeTimestamp}`);
  }
  const older = new Set<number>();
  for await (const j of rowsOf(dump, 'event_json')) {
    if (!events.has(j.nid)) continue;
    const ts = (JSON.parse(j.json) as { origin_server_ts?: unknown }).origin_server_ts;
    if (typeof ts === 'number' && ts < cut.beforeTimestamp) older.add(j.nid);
  }
  return older;
}

async function findRoom(dump: StoreDump, roomID: string): Promise<DumpRows['rooms']> {
  for await (const r of rowsOf(dump, 'rooms')) if (r.roomID === roomID) return r;
  throw new NotFoundError(`room ${roomID} is not in this store`);
}

async function collect<K extends DumpTableName>(dump: StoreDump, name: K, match: (row: DumpRows[K]) => boolean): Promise<DumpRows[K][]> {
  const out: DumpRows[K][] = [];
  for await (const row of rowsOf(dump, name)) if (match(row)) out.push(row);
  return out;
}

/** The snapshots that the events `outside` picks, or the rooms other than this one, name. */
async function snapshotsNamedOutside(dump: StoreDump, roomNID: number, outside: (e: DumpRows['events']) => boolean): Promise<NIDSet> {
  const named = new NIDSet();
  for await (const e of rowsOf(dump, 'events')) if (outside(e) && e.snapshot !== 0) named.add(e.snapshot);
  for await (const r of rowsOf(dump, 'rooms')) if (r.nid !== roomNID && r.snapshot !== 0) named.add(r.snapshot);
  return named;
}

/**
 * The state blocks to delete with these snapshots and events: those the snapshots name, and those no snapshot
 * names that hold one of the events (blocks a merge replaced stay stored, named by nothing), unless a snapshot that
 * stays names them.
 */
async function blocksToDelete(dump: StoreDump, snapshots: ReadonlySet<number>, events: NIDSet): Promise<NIDSet> {
  const named = new NIDSet();
  const namedByStaying = new NIDSet();
  for await (const s of rowsOf(dump, 'state_snapshots')) for (const b of s.blocks) (snapshots.has(s.nid) ? named : namedByStaying).add(b);
  const out = new NIDSet();
  for await (const b of rowsOf(dump, 'state_blocks')) {
    if (namedByStaying.has(b.nid)) continue;
    if (named.has(b.nid) || b.entries.some(([, , event]) => events.has(event))) out.add(b.nid);
  }
  return out;
}

/** Each table with the rows to delete: given, or found by reading the table (before deleting any of it). */
type Plan = { [K in DumpTableName]: readonly [K, DumpRows[K][] | ((row: DumpRows[K]) => boolean)] }[DumpTableName][];
const step = <K extends DumpTableName>(name: K, what: DumpRows[K][] | ((row: DumpRows[K]) => boolean)) => [name, what] as Plan[number];

async function runPlan(dump: StoreDump, plan: Plan, options: PurgeOptions): Promise<Partial<Record<DumpTableName, number>>> {
  const deleted: Partial<Record<DumpTableName, number>> = {};
  for (const [name, what] of plan) {
    // Read whole before deleting: a driver's cursor need not survive deletes of rows it has passed.
    const rows = typeof what === 'function' ? await collect(dump, name, what as (row: unknown) => boolean) : what;
    options.onTable?.(name, rows.length);
    for (let i = 0; i < rows.length; i += PAGE) await dump.table(name).delete(rows.slice(i, i + PAGE) as never);
    deleted[name] = rows.length;
  }
  return deleted;
}

async function finish(
  storage: Storage, dump: StoreDump,
  r: { roomID: string; deleted: Partial<Record<DumpTableName, number>>; bytesBefore: number | undefined; started: number; reclaim: boolean | undefined; eventsKept?: number },
): Promise<PurgeReport> {
  const reclaimed = r.reclaim === false ? 'space not reclaimed (asked not to)' : (await dump.reclaimSpace()).done;
  return {
    roomID: r.roomID, deleted: r.deleted, rowsDeleted: Object.values(r.deleted).reduce((n, c) => n + (c ?? 0), 0),
    ...(r.eventsKept !== undefined ? { eventsKept: r.eventsKept } : {}),
    bytesBefore: r.bytesBefore, bytesAfter: (await storage.stats.collect()).totalBytes, reclaimed, elapsedMs: Date.now() - r.started,
  };
}

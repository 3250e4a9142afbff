/**
 * Bench 1, state storage: the generated room's state changes, replayed in file order, stored by our StateStorage
 * over the real SQLite tables (at fan-in 2, 4, 8 and 16) and by the peer schemes of state-schemes.ts over their own
 * plain tables in another SQLite file. Counted: tuples stored per event, bytes on disk per event (dbstat), the most
 * blocks a snapshot holds (the most hops a lookup walks for Synapse), and how many entries a full lookup reads for
 * each live entry (what overridden tuples in older blocks cost a reader).
 */
import { DEFAULT_STATE_POLICY } from '../src/storage/shared/state-policy.js';
import type { Storage } from '../src/index.js';
import type { RoomNID, StateSnapshotNID } from '../src/types/nids.js';
import type { StateEntry } from '../src/types/state.js';
import { DeltaLog, DendriteBlocks, FullSnapshots, SortedState, SqliteSink, SynapseGroups, type StateScheme } from './state-schemes.js';
import {
  fixed, freshSqliteFile, openSqliteStore, plainSqlite, readStateChanges, roomFile, since, sqliteBtreeBytes, sqliteTableBytes, times,
  type BenchOptions, type Cell, type Section,
} from './support.js';

export const FAN_INS = [2, 4, 8, 16] as const;
/** State changes stored per transaction (the bench measures storage, not commit latency). */
const BATCH = 1000;
/** The most tuples the full-snapshot peer stores (about 5 GB at 5 bytes a tuple); past it, it only counts them. */
const FULL_SNAPSHOT_BUDGET = 1e9;
const ROOM = 1 as RoomNID;

/** The state design's paper model of the generated room: tuples written per event (and the most blocks a snapshot holds). */
const PAPER_MODEL: Record<string, Record<string, { tuples: number; blocks?: number }>> = {
  '20000/200000': {
    full: { tuples: 2406 }, dendrite: { tuples: 37.8 }, synapse: { tuples: 24.2 },
    'fan-in 2': { tuples: 2.9, blocks: 14 }, 'fan-in 4': { tuples: 1.6, blocks: 21 }, 'fan-in 8': { tuples: 1.05, blocks: 32 },
  },
  '100000/1000000': { 'fan-in 8': { tuples: 1.2, blocks: 37 } },
};

interface SchemeResult {
  readonly key: string;
  readonly name: string;
  readonly tuples: number;
  readonly bytes: number;
  readonly maxLookup: number;
  readonly lookupUnit: StateScheme['lookupUnit'];
  readonly entriesRead: number;
  readonly ms: number;
  /** Bytes per table and index (ours only). */
  readonly btrees?: Record<string, number>;
}

/** The peers and the floor, in one pass: the resolved state after each change is the same for all of them. */
function runPeers(o: BenchOptions, changes: readonly StateEntry[]): { results: SchemeResult[]; liveEntries: number } {
  const db = plainSqlite(freshSqliteFile(o, 'state-peers'));
  // The live entries after each change, summed: what a full snapshot per change writes (and what a reader needs).
  const preview = new SortedState();
  let liveEntries = 0;
  for (const change of changes) {
    preview.apply(change);
    liveEntries += preview.entries.length;
  }
  const sink = new SqliteSink(db);
  const schemes: [string, StateScheme][] = [
    ['floor', new DeltaLog(sink)], ['full', new FullSnapshots(sink, liveEntries <= FULL_SNAPSHOT_BUDGET)],
    ['dendrite', new DendriteBlocks(sink)], ['synapse', new SynapseGroups(sink)],
  ];
  for (const [, scheme] of schemes) sink.create(scheme.tables);
  const ms = new Map<string, number>(schemes.map(([key]) => [key, 0]));
  const state = new SortedState();
  for (let i = 0; i < changes.length; i += BATCH) {
    db.transaction(() => {
      for (const change of changes.slice(i, i + BATCH)) {
        const removed = state.apply(change);
        for (const [key, scheme] of schemes) {
          const t0 = performance.now();
          scheme.store(change, state, removed);
          ms.set(key, ms.get(key)! + since(t0));
        }
      }
    })();
  }
  const results = schemes.map(([key, s]) => ({
    key, name: s.name, tuples: s.tuples, bytes: s instanceof FullSnapshots && !s.stored ? NaN : sqliteTableBytes(db, s.tables.map((t) => t.name)),
    maxLookup: s.maxLookup, lookupUnit: s.lookupUnit, entriesRead: s.entriesRead, ms: ms.get(key)!,
  }));
  db.close();
  return { results, liveEntries };
}

/**
 * Every state change through the real StateStorage.addStateAfter, in transactions of BATCH changes. Returns the
 * most blocks a snapshot held and, with `countReads`, the entries a full lookup of each state read.
 */
export async function replayStateChanges(storage: Storage, changes: readonly StateEntry[], countReads: boolean): Promise<{ maxBlocks: number; entriesRead: number }> {
  const state = storage.roomserver.state;
  let snapshot: StateSnapshotNID = await storage.unitOfWork.transaction((tx) => state.addState(tx, ROOM, [], []));
  let maxBlocks = 0;
  let entriesRead = 0;
  for (let i = 0; i < changes.length; i += BATCH) {
    await storage.unitOfWork.transaction(async (tx) => {
      for (const change of changes.slice(i, i + BATCH)) {
        snapshot = await state.addStateAfter(tx, ROOM, snapshot, change);
        const blocks = await state.blockNIDs(tx, snapshot);
        maxBlocks = Math.max(maxBlocks, blocks.length);
        if (countReads) for (const packed of (await state.blocks(tx, blocks)).values()) entriesRead += packed.length / 3;
      }
    });
  }
  return { maxBlocks, entriesRead };
}

/** Ours: the real StateStorage over the real SQLite tables, every state change through addStateAfter. */
async function runOurs(o: BenchOptions, changes: readonly StateEntry[], fanIn: number): Promise<SchemeResult> {
  const file = freshSqliteFile(o, `state-fan-in-${fanIn}`);
  const storage = await openSqliteStore(file, { state: { fan_in: fanIn } });
  const t0 = performance.now();
  const { maxBlocks, entriesRead } = await replayStateChanges(storage, changes, true);
  const ms = since(t0);
  const stats = await storage.stats.collect();
  await storage.close();
  const db = plainSqlite(file);
  const btrees = sqliteBtreeBytes(db, ['roomserver_state_block', 'roomserver_state_snapshots']);
  db.close();
  const bytes = Object.values(btrees).reduce((a, b) => a + b, 0);
  const isDefault = fanIn === DEFAULT_STATE_POLICY.fanIn;
  return {
    key: `fan-in ${fanIn}`, name: `ours, fan-in ${fanIn}${isDefault ? ' (default)' : ''}`, tuples: stats.stateTuples, bytes,
    maxLookup: maxBlocks, lookupUnit: 'blocks', entriesRead, ms, btrees,
  };
}

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

export async function stateStorageBench(o: BenchOptions): Promise<Section> {
  const room = await roomFile(o, { members: o.members, events: o.events, seed: o.seed });
  const { events, changes } = await readStateChanges(room.file);
  o.log(`  state storage: ${changes.length.toLocaleString('en-US')} state changes of ${events.toLocaleString('en-US')} events; peers and floor`);
  const { results: peers, liveEntries } = runPeers(o, changes);
  const ours: SchemeResult[] = [];
  for (const fanIn of FAN_INS) {
    o.log(`  state storage: ours, fan-in ${fanIn}`);
    ours.push(await runOurs(o, changes, fanIn));
  }
  const floor = peers.find((p) => p.key === 'floor')!;
  const full = peers.find((p) => p.key === 'full')!;
  const paper = PAPER_MODEL[`${o.members}/${o.events}`];
  const byDefault = ours.find((r) => r.key === `fan-in ${DEFAULT_STATE_POLICY.fanIn}`)!;
  const share = (pattern: RegExp) => Object.entries(byDefault.btrees!).filter(([name]) => pattern.test(name)).reduce((a, [, b]) => a + b, 0) / byDefault.bytes;
  const perEvent = (n: number) => n / events;
  const rows: Cell[][] = [...ours, ...peers.filter((p) => p !== floor), floor].map((r) => [
    r.name,
    fixed(perEvent(r.tuples), r.tuples / events >= 100 ? 0 : 2),
    times(r.tuples / floor.tuples),
    ...(paper ? [paper[r.key] ? String(paper[r.key]!.tuples) : '-'] : []),
    Number.isNaN(r.bytes) ? '-' : fixed(perEvent(r.bytes), 1),
    times(r.bytes / floor.bytes),
    `${r.maxLookup.toLocaleString('en-US')} ${r.maxLookup === 1 ? r.lookupUnit.slice(0, -1) : r.lookupUnit}${paper?.[r.key]?.blocks ? ` (paper ${paper[r.key]!.blocks})` : ''}`,
    times(r.maxLookup / full.maxLookup),
    fixed(r.entriesRead / liveEntries, r.entriesRead / liveEntries >= 100 ? 0 : 2),
  ]);
  return {
    id: 'state-storage',
    title: `State storage: SQLite file, generated room of ${o.members.toLocaleString('en-US')} members and ${events.toLocaleString('en-US')} events`,
    notes: [
      `${changes.length.toLocaleString('en-US')} state changes replayed in file order; ours through StateStorage.addStateAfter over the real tables ` +
        `(max_blocks ${DEFAULT_STATE_POLICY.maxBlocks}), the peers (state-schemes.ts) over their own plain tables; every scheme encodes tuples with the same codec.`,
      `Floor: a delta log, one row (type, state key, event) per state event: the least any scheme can write; a lookup must replay it all. ` +
        `Lookup cost is compared with a full snapshot's 1 read.`,
      'Bytes: the pages of each scheme\'s tables and indexes, from SQLite\'s dbstat, divided by the events in the room.',
      'Entries read per lookup ÷ live entries: averaged over the state after every change (1 = no overridden tuple is read).',
      `Where our bytes go (fan-in ${DEFAULT_STATE_POLICY.fanIn}): block rows ${pct(share(/^roomserver_state_block$/))}, snapshot rows (block lists) ` +
        `${pct(share(/^roomserver_state_snapshots$/))}, the unique indexes on the content hashes ${pct(share(/autoindex/))}.`,
      ...(paper ? ["Paper model: the state design's count for this room (tuples per event; blocks per snapshot)."] : []),
    ],
    columns: [
      'scheme', 'tuples/event', '× floor', ...(paper ? ['paper model'] : []), 'bytes/event', '× floor',
      'max per lookup', '× full snapshot', 'entries read ÷ live',
    ],
    rows,
    data: {
      members: o.members, events, stateChanges: changes.length, liveEntriesSummed: liveEntries,
      schemes: [...ours, ...peers].map((r) => ({
        ...r, tuplesPerEvent: r.tuples / events, bytesPerEvent: r.bytes / events, tuplesVsFloor: r.tuples / floor.tuples,
        bytesVsFloor: r.bytes / floor.bytes, readAmplification: r.entriesRead / liveEntries, paperModel: paper?.[r.key] ?? null,
      })),
    },
  };
}

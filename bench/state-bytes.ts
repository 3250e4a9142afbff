/**
 * Bench 9, state bytes: what the state after every state change costs on disk, indexes included, per event of
 * the room, at 2,000, 20,000 and 100,000 members (--quick: 2,000), on SQLite (dbstat) and PostgreSQL
 * (pg_total_relation_size). Ours: the real state tables of a real store, every change through
 * StateStorage.addStateAfter with the default policy. Against it, on the same engine: the floor (a delta log, one
 * row per state event) and the peer schemes of state-schemes.ts (Synapse's state groups, Dendrite's rule), over
 * plain tables shaped like theirs; every scheme encodes its tuples with the store's own codec.
 */
import pg from 'pg';
import { DEFAULT_STATE_POLICY } from '../src/storage/shared/state-policy.js';
import type { StateEntry } from '../src/types/state.js';
import { DeltaLog, DendriteBlocks, PostgresSink, SortedState, SqliteSink, SynapseGroups, type StateScheme } from './state-schemes.js';
import { replayStateChanges } from './state-storage.js';
import {
  fixed, freshSqliteFile, openPostgresStore, openSqliteStore, plainSqlite, postgresDatabase, readStateChanges, roomFile, sqliteTableBytes, times,
  type BenchOptions, type Cell, type Section,
} from './support.js';

/** State changes per transaction, as bench/state-storage.ts writes them. */
const BATCH = 1000;
const STATE_TABLES = ['roomserver_state_block', 'roomserver_state_snapshots'];
/** The byte goals once set against Synapse's scheme (ours ÷ Synapse's, by members), retired since; printed for comparison. */
const GOALS: Record<number, number> = { 2000: 0.3, 20000: 0.1 };

type Peers = [key: 'floor' | 'synapse' | 'dendrite', scheme: StateScheme][];
const peersOn = (sink: SqliteSink | PostgresSink): Peers => [['floor', new DeltaLog(sink)], ['synapse', new SynapseGroups(sink)], ['dendrite', new DendriteBlocks(sink)]];

/** Every change through every peer, BATCH at a time; `batch` runs each batch's writes in one transaction on the engine. */
async function replayPeers(peers: Peers, changes: readonly StateEntry[], batch: (run: () => void) => Promise<void>): Promise<void> {
  const state = new SortedState();
  for (let i = 0; i < changes.length; i += BATCH) {
    await batch(() => {
      for (const change of changes.slice(i, i + BATCH)) {
        const removed = state.apply(change);
        for (const [, scheme] of peers) scheme.store(change, state, removed);
      }
    });
  }
}

interface Measured { readonly engine: 'SQLite' | 'PostgreSQL'; readonly members: number; readonly events: number; readonly bytes: Record<string, number> }

async function onSqlite(o: BenchOptions, members: number, events: number, changes: readonly StateEntry[]): Promise<Measured> {
  const db = plainSqlite(freshSqliteFile(o, `state-bytes-peers-${members}`));
  const sink = new SqliteSink(db);
  const peers = peersOn(sink);
  for (const [, p] of peers) sink.create(p.tables);
  await replayPeers(peers, changes, async (run) => { db.transaction(run)(); });
  const bytes: Record<string, number> = Object.fromEntries(peers.map(([key, p]) => [key, sqliteTableBytes(db, p.tables.map((t) => t.name))]));
  db.close();
  const file = freshSqliteFile(o, `state-bytes-ours-${members}`);
  const storage = await openSqliteStore(file);
  await replayStateChanges(storage, changes, false);
  await storage.close();
  const ours = plainSqlite(file);
  bytes.ours = sqliteTableBytes(ours, STATE_TABLES);
  ours.close();
  return { engine: 'SQLite', members, events, bytes };
}

async function onPostgres(o: BenchOptions, members: number, events: number, changes: readonly StateEntry[]): Promise<Measured> {
  const url = await postgresDatabase(o, 'state_bytes');
  const peersSchema = `peers_${members}`;
  const oursSchema = `ours_${members}`;
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${peersSchema} CASCADE; DROP SCHEMA IF EXISTS ${oursSchema} CASCADE; CREATE SCHEMA ${peersSchema}; SET search_path = ${peersSchema}`);
    const sink = new PostgresSink(client);
    const peers = peersOn(sink);
    for (const [, p] of peers) await sink.create(p.tables);
    await replayPeers(peers, changes, async (run) => {
      run();
      await client.query('BEGIN');
      await sink.flush();
      await client.query('COMMIT');
    });
    // Every fork of each table, its indexes and its TOAST table: what the engine holds on disk for it.
    const sizeOf = async (schema: string, tables: readonly string[]) => Number((await client.query<{ bytes: string }>(
      `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) AS bytes FROM pg_class c
        WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' AND c.relname = ANY($2::text[])`, [schema, tables])).rows[0]!.bytes);
    const bytes: Record<string, number> = {};
    for (const [key, p] of peers) bytes[key] = await sizeOf(peersSchema, p.tables.map((t) => t.name));
    const storage = await openPostgresStore(url, oursSchema);
    await replayStateChanges(storage, changes, false);
    await storage.close();
    bytes.ours = await sizeOf(oursSchema, STATE_TABLES);
    await client.query(`DROP SCHEMA ${peersSchema} CASCADE; DROP SCHEMA ${oursSchema} CASCADE`);
    return { engine: 'PostgreSQL', members, events, bytes };
  } finally {
    await client.end();
  }
}

export async function stateBytesBench(o: BenchOptions): Promise<Section> {
  const sizes = o.quick ? [2_000] : [2_000, 20_000, 100_000];
  const measured: Measured[] = [];
  for (const members of sizes) {
    const room = await roomFile(o, { members, events: members * 10, seed: o.seed });
    const { events, changes } = await readStateChanges(room.file);
    o.log(`  state bytes: ${members.toLocaleString('en-US')} members, ${changes.length.toLocaleString('en-US')} state changes; SQLite`);
    measured.push(await onSqlite(o, members, events, changes));
    o.log(`  state bytes: ${members.toLocaleString('en-US')} members; PostgreSQL`);
    measured.push(await onPostgres(o, members, events, changes));
  }
  const rows: Cell[][] = measured.map((m) => {
    const per = (key: string) => m.bytes[key]! / m.events;
    const goal = GOALS[m.members];
    return [
      m.engine, m.members.toLocaleString('en-US'), fixed(per('ours'), 1), fixed(per('synapse'), 1), fixed(per('dendrite'), 1), fixed(per('floor'), 1),
      times(m.bytes.ours! / m.bytes.synapse!), goal === undefined ? '-' : `≤ ${goal}×`, times(m.bytes.ours! / m.bytes.floor!),
    ];
  });
  return {
    id: 'state-bytes',
    title: 'State bytes per event on disk, indexes included: ours against Synapse\'s and Dendrite\'s schemes and the floor',
    notes: [
      `Generated rooms of ${sizes.map((n) => n.toLocaleString('en-US')).join(', ')} members and ten times as many events (one in five a state event); ` +
        `ours: the real state tables, every state change through StateStorage.addStateAfter (fan-in ${DEFAULT_STATE_POLICY.fanIn}, ${BATCH} changes per transaction).`,
      'The peers (bench/state-schemes.ts) over plain tables on the same engine, tuples in the same codec; the floor: a delta log, one row per state event.',
      'Bytes: SQLite\'s dbstat pages of each scheme\'s tables and indexes; PostgreSQL\'s pg_total_relation_size (heap, indexes, TOAST, free-space and visibility maps), no VACUUM.',
      'None of the schemes stores the event -> state pointer (every scheme needs one).',
    ],
    columns: ['engine', 'members', 'ours B/event', 'Synapse B/event', 'Dendrite B/event', 'floor B/event', 'ours ÷ Synapse', 'goal', 'ours ÷ floor'],
    rows,
    data: { measured: measured.map((m) => ({ ...m, bytesPerEvent: Object.fromEntries(Object.entries(m.bytes).map(([k, v]) => [k, v / m.events])), oursVsSynapse: m.bytes.ours! / m.bytes.synapse! })) },
  };
}

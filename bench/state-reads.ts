/**
 * Bench 2, state reads: the time and the statements (round trips) to load the full state at a random event
 * (RoomserverDatabase.loadStateAtEvent) and the current state (currentState), with the state caches off (the
 * snapshot and every block read from the engine) and on (warm), on SQLite and PostgreSQL. The floor is the same tuples read from one plain
 * table (state ID, type, state key, event; primary key on the first three) with one query, on the same engine.
 *
 * The rooms are generated with state events only (stateFraction 1): N state entries take N - 6 members and
 * 1.05·N events (the joins, then 5% leaves, bans and profile changes), imported through the real import path.
 * "A random event" is one of the last fifth of the room.
 */
import pg from 'pg';
import { importPDUFile as importFile } from '../src/io/import.js';
import type { Storage } from '../src/index.js';
import type { StateEntry } from '../src/types/state.js';
import {
  eventIDOfLine, fileLines, fixed, freshSqliteFile, median, openPostgresStore, openSqliteStore, plainSqlite, postgresDatabase, roomFile, seededRandom, since, times,
  type BenchOptions, type Cell, type RoomFile, type Section,
} from './support.js';

/** One plain table of whole states: the floor. */
interface PlainStates {
  insert(stateID: number, entries: readonly StateEntry[]): Promise<void>;
  /** One query; returns the rows read. */
  read(stateID: number): Promise<number>;
  close(): Promise<void>;
}

const PLAIN_TABLE = `bench_plain_state (state_id INTEGER NOT NULL, event_type_nid INTEGER NOT NULL, event_state_key_nid INTEGER NOT NULL,
  event_nid INTEGER NOT NULL, PRIMARY KEY (state_id, event_type_nid, event_state_key_nid))`;
const PLAIN_SELECT = 'SELECT event_type_nid, event_state_key_nid, event_nid FROM bench_plain_state WHERE state_id';

function sqlitePlainStates(file: string): PlainStates {
  const db = plainSqlite(file);
  db.exec(`DROP TABLE IF EXISTS bench_plain_state; CREATE TABLE ${PLAIN_TABLE} WITHOUT ROWID`);
  const insert = db.prepare('INSERT INTO bench_plain_state VALUES (?, ?, ?, ?)');
  const select = db.prepare(`${PLAIN_SELECT} = ?`);
  return {
    insert: async (id, entries) => db.transaction(() => {
      for (const e of entries) insert.run(id, e.eventTypeNID, e.eventStateKeyNID, e.eventNID);
    })(),
    read: async (id) => select.all(id).length,
    close: async () => {
      db.close();
    },
  };
}

async function postgresPlainStates(url: string, schema: string): Promise<PlainStates> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`SET search_path = ${schema}`);
  await client.query(`DROP TABLE IF EXISTS bench_plain_state; CREATE TABLE ${PLAIN_TABLE}`);
  return {
    insert: async (id, entries) => {
      for (let i = 0; i < entries.length; i += 10_000) {
        const chunk = entries.slice(i, i + 10_000);
        await client.query(`INSERT INTO bench_plain_state SELECT $1, * FROM unnest($2::int[], $3::int[], $4::int[])`,
          [id, chunk.map((e) => e.eventTypeNID), chunk.map((e) => e.eventStateKeyNID), chunk.map((e) => e.eventNID)]);
      }
      await client.query('ANALYZE bench_plain_state');
    },
    read: async (id) => (await client.query({ name: 'plain_state', text: `${PLAIN_SELECT} = $1`, values: [id] })).rowCount ?? 0,
    close: () => client.end(),
  };
}

interface Engine {
  readonly name: string;
  /** Opens the room's store (a fresh one the first time), with extra config (the cache setting). */
  open(config?: Record<string, unknown>): Promise<Storage>;
  plain(): Promise<PlainStates>;
}

async function engines(o: BenchOptions, size: number): Promise<Engine[]> {
  const file = freshSqliteFile(o, `reads-${size}`);
  const list: Engine[] = [{ name: 'SQLite', open: (config) => openSqliteStore(file, config), plain: async () => sqlitePlainStates(file) }];
  if (o.postgresURL) {
    // The rooms are loaded with synchronous_commit off: what is measured (reads) does not wait for commits.
    const url = await postgresDatabase(o, 'bench_reads', { synchronous_commit: 'off' });
    const schema = `reads_${size}`;
    list.push({ name: 'PostgreSQL', open: (config) => openPostgresStore(url, schema, config), plain: () => postgresPlainStates(url, schema) });
  }
  return list;
}

interface Sample {
  readonly ms: number;
  readonly statements: number;
  readonly entries: StateEntry[];
}

/** Runs a load once untimed (connections, JIT), then once per argument, timed and counted. */
async function sample<A>(storage: Storage, args: readonly A[], load: (a: A) => Promise<StateEntry[]>): Promise<Sample[]> {
  await load(args[0]!);
  const out: Sample[] = [];
  for (const a of args) {
    storage.requestStats!.reset();
    const t0 = performance.now();
    const entries = await load(a);
    out.push({ ms: since(t0), statements: storage.requestStats!.snapshot().requests, entries });
  }
  return out;
}

/** IDs of `count` events picked at random (seeded) among the last fifth of the room. */
async function pickEvents(room: RoomFile, count: number, seed: number): Promise<string[]> {
  const random = seededRandom(seed);
  const first = Math.floor(room.events * 0.8);
  const wanted = new Set<number>();
  while (wanted.size < Math.min(count, room.events - first)) wanted.add(first + Math.floor(random() * (room.events - first)));
  const ids: string[] = [];
  let i = 0;
  for await (const line of fileLines(room.file)) if (wanted.has(i++)) ids.push(eventIDOfLine(line));
  return ids;
}

interface Measured {
  readonly engine: string;
  readonly size: number;
  readonly load: 'state at a random event' | 'current state';
  readonly cache: 'off' | 'on (warm)';
  readonly ms: number;
  readonly statements: number;
  readonly floorMs: number;
  readonly floorStatements: number;
  readonly entries: number;
}

async function measureRoom(o: BenchOptions, engine: Engine, room: RoomFile, size: number, picks: readonly string[]): Promise<Measured[]> {
  const built = await engine.open();
  const t0 = performance.now();
  await importFile(built, room.file);
  o.log(`  state reads: ${engine.name}, ${size.toLocaleString('en-US')} entries: room imported in ${(since(t0) / 1000).toFixed(1)} s`);
  await built.close();
  const repeats = picks.map(() => room.roomID);
  const runs: { cache: Measured['cache']; config: Record<string, unknown> }[] = [
    { cache: 'off', config: { state: { block_cache_bytes: 0 } } },
    { cache: 'on (warm)', config: {} },
  ];
  const loads: { load: Measured['load']; samples: Sample[]; cache: Measured['cache'] }[] = [];
  for (const run of runs) {
    const storage = await engine.open(run.config);
    try {
      const db = storage.roomserver;
      // Warm caches (cache on): one untimed pass over everything measured.
      if (run.cache !== 'off') for (const id of picks) await db.loadStateAtEvent(id);
      loads.push({ load: 'state at a random event', cache: run.cache, samples: await sample(storage, picks, (id) => db.loadStateAtEvent(id)) });
      loads.push({ load: 'current state', cache: run.cache, samples: await sample(storage, repeats, (id) => db.currentState(id)) });
    } finally {
      await storage.close();
    }
  }
  // The floor: the very tuples each load returned, read back from one plain table with one query.
  const plain = await engine.plain();
  try {
    const atEvents = loads[0]!.samples;
    for (const [i, s] of atEvents.entries()) await plain.insert(i, s.entries);
    const current = picks.length;
    await plain.insert(current, loads[1]!.samples[0]!.entries);
    const floorTime = async (ids: readonly number[]) => {
      await plain.read(ids[0]!);
      const ms: number[] = [];
      for (const id of ids) {
        const t = performance.now();
        await plain.read(id);
        ms.push(since(t));
      }
      return median(ms);
    };
    const floorAtEvent = await floorTime(atEvents.map((_, i) => i));
    const floorCurrent = await floorTime(picks.map(() => current));
    return loads.map((l) => ({
      engine: engine.name, size, load: l.load, cache: l.cache,
      ms: median(l.samples.map((s) => s.ms)), statements: median(l.samples.map((s) => s.statements)),
      floorMs: l.load === 'current state' ? floorCurrent : floorAtEvent, floorStatements: 1,
      entries: median(l.samples.map((s) => s.entries.length)),
    }));
  } finally {
    await plain.close();
  }
}

export async function stateReadsBench(o: BenchOptions): Promise<Section> {
  const sizes = o.quick ? [1_000, 10_000] : [1_000, 10_000, 100_000];
  const samples = 15;
  const measured: Measured[] = [];
  for (const size of sizes) {
    const room = await roomFile(o, { members: size - 6, events: Math.round(size * 1.05), seed: o.seed, stateFraction: 1 });
    const picks = await pickEvents(room, samples, o.seed + size);
    for (const engine of await engines(o, size)) measured.push(...(await measureRoom(o, engine, room, size, picks)));
  }
  const rows: Cell[][] = measured.map((m) => [
    m.engine, m.size, m.load, m.cache, fixed(m.entries, 0), fixed(m.ms, 2), fixed(m.floorMs, 2), times(m.ms / m.floorMs),
    m.statements, times(m.statements / m.floorStatements),
  ]);
  return {
    id: 'state-reads',
    title: 'State reads: the full state at a random event, and the current state',
    notes: [
      `Rooms of ${sizes.map((s) => s.toLocaleString('en-US')).join(', ')} state entries, all events state events, imported through the real import path; ` +
        `medians of ${samples} loads (a random event among the last fifth of the room; the current state ${samples} times).`,
      'Floor: the same tuples read from one plain table (state ID, type, state key, event) with one query, on the same engine (1 statement).',
      'Statements: each is a round trip (these reads are sequential). Caches off (state.block_cache_bytes: 0): the snapshot and ' +
        'its blocks are read from the engine every time; on: the in-process block and snapshot caches are warm, only the event or room row is read.',
      'SQLite: a file in this process (default durability); PostgreSQL: the bench cluster over TCP on this machine.',
    ],
    columns: ['engine', 'state entries', 'load', 'caches', 'entries loaded', 'ours ms', 'floor ms', '× floor', 'statements', '× floor'],
    rows,
    data: { sizes, samples, measured },
  };
}

/**
 * Bench 3, ingest: events per second of the real import path (importPDUFile, what `matrix-storage import` runs) on
 * SQLite (a file, default durability) and on PostgreSQL (the bench cluster: fsync on, synchronous_commit on), at two
 * commit granularities: a batch of 100 events per commit (the import's default, `appendEvents`) and one event per
 * commit (`--batch 1`, `appendEvent`'s cost).
 *
 * Each is compared with the minimal-rows floor at the same granularity, on the same engine, in the same run: what any
 * event store must write (an event row with its ID index, the JSON, one state-delta row per state event, the room's
 * latest pointer once per commit), by the plainest loop of single-row prepared statements, pipelined on PostgreSQL
 * (a whole commit's statements sent at once: one round trip per commit). The floor parses each line and computes its
 * event ID as the import does. The old floors (event ID and JSON in one table, one transaction for all rows or one per
 * row, unpipelined) are kept for continuity with earlier runs, named as such.
 */
import pg from 'pg';
import { computeEventID } from '../src/matrix/event-id.js';
import { importPDUFile } from '../src/io/import.js';
import type { Storage } from '../src/index.js';
import {
  fileLines, fixed, freshSqliteFile, openPostgresStore, openSqliteStore, plainSqlite, postgresDatabase, roomFile, since, times,
  type BenchOptions, type Cell, type RoomFile, type Section,
} from './support.js';

/** A floor's engine: statements run one after another, or (PostgreSQL) all of a commit sent at once. */
interface FloorEngine {
  /** Runs one commit's statements (BEGIN ... COMMIT included) and waits for the last. */
  commit(statements: readonly [string, readonly unknown[]][]): Promise<void>;
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

const MINIMAL_TABLES = [
  'CREATE TABLE floor_events (event_nid BIGINT PRIMARY KEY, event_id TEXT NOT NULL UNIQUE)',
  'CREATE TABLE floor_event_json (event_nid BIGINT PRIMARY KEY, event_json TEXT NOT NULL)',
  'CREATE TABLE floor_state_delta (event_nid BIGINT PRIMARY KEY, event_type TEXT NOT NULL, state_key TEXT NOT NULL)',
  'CREATE TABLE floor_rooms (room_id TEXT PRIMARY KEY, latest_event_nid BIGINT NOT NULL)',
];
const OLD_TABLE = 'CREATE TABLE floor_old_events (event_id TEXT NOT NULL PRIMARY KEY, event_json TEXT NOT NULL)';

function sqliteFloor(file: string): FloorEngine {
  const db = plainSqlite(file);
  const prepared = new Map<string, ReturnType<typeof db.prepare>>();
  const stmt = (sql: string) => {
    let s = prepared.get(sql);
    // One SQL text for both engines: PostgreSQL's $n placeholders, each used once and in order, are SQLite's ?.
    if (!s) prepared.set(sql, (s = db.prepare(sql.replace(/\$\d+/g, '?'))));
    return s;
  };
  return {
    commit: async (statements) => {
      for (const [sql, values] of statements) {
        if (values.length === 0) db.exec(sql);
        else (stmt(sql).run as (...p: unknown[]) => unknown)(...values);
      }
    },
    exec: async (sql) => void db.exec(sql),
    close: async () => void db.close(),
  };
}

async function postgresFloor(url: string, schema: string, pipelined: boolean): Promise<FloorEngine> {
  const client = new pg.Client({ connectionString: url, ...(pipelined ? { pipeline: true } : {}) });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.query(`CREATE SCHEMA ${schema}`);
  await client.query(`SET search_path = ${schema}`);
  const names = new Map<string, string>();
  const send = (sql: string, values: readonly unknown[]) => {
    if (values.length === 0) return client.query(sql);
    let name = names.get(sql);
    if (!name) names.set(sql, (name = `f${names.size}`));
    return client.query({ name, text: sql, values: values as unknown[] });
  };
  return {
    commit: async (statements) => {
      if (pipelined) {
        await Promise.all(statements.map(([sql, values]) => send(sql, values)));
      } else {
        for (const [sql, values] of statements) await send(sql, values);
      }
    },
    exec: async (sql) => void (await client.query(sql)),
    close: () => client.end(),
  };
}

/** The statements a floor runs per event. */
function minimalRows(nid: number, id: string, line: string, pdu: Record<string, unknown>): [string, unknown[]][] {
  const rows: [string, unknown[]][] = [
    ['INSERT INTO floor_events (event_nid, event_id) VALUES ($1, $2)', [nid, id]],
    ['INSERT INTO floor_event_json (event_nid, event_json) VALUES ($1, $2)', [nid, line]],
  ];
  if (typeof pdu.state_key === 'string') {
    rows.push(['INSERT INTO floor_state_delta (event_nid, event_type, state_key) VALUES ($1, $2, $3)', [nid, pdu.type, pdu.state_key]]);
  }
  return rows;
}

interface FloorRun {
  readonly eventsPerSecond: number;
  readonly statementsPerEvent: number;
  /** Sequential round trips per event where the engine has them (PostgreSQL): one per commit pipelined, else one per statement. */
  readonly roundTripsPerEvent: number | undefined;
}

/**
 * A floor over the room file: `rows` per event, committed every `perCommit` events with the room's latest pointer
 * written once per commit (when `pointer`); SQLite's `$n` placeholders are its own too.
 */
async function floorRun(
  room: RoomFile, engine: FloorEngine, tables: readonly string[], perCommit: number, pointer: boolean, pipelined: boolean | undefined,
  rows: (nid: number, id: string, line: string, pdu: Record<string, unknown>) => [string, unknown[]][],
): Promise<FloorRun> {
  for (const t of tables) await engine.exec(t);
  let statements = 0;
  let commits = 0;
  let pending: [string, unknown[]][] = [];
  let lastNID = 0;
  const commit = async () => {
    if (pending.length === 0) return;
    const all: [string, unknown[]][] = [['BEGIN', []], ...pending];
    if (pointer) {
      all.push(['INSERT INTO floor_rooms (room_id, latest_event_nid) VALUES ($1, $2) ON CONFLICT (room_id) DO UPDATE SET latest_event_nid = excluded.latest_event_nid', [room.roomID, lastNID]]);
    }
    all.push(['COMMIT', []]);
    statements += all.length;
    commits++;
    pending = [];
    await engine.commit(all);
  };
  const t0 = performance.now();
  let n = 0;
  for await (const line of fileLines(room.file)) {
    const pdu = JSON.parse(line) as Record<string, unknown>;
    const id = computeEventID(pdu, '10');
    lastNID = ++n;
    pending.push(...rows(n, id, line, pdu));
    if (n % perCommit === 0) await commit();
  }
  await commit();
  const ms = since(t0);
  await engine.close();
  return {
    eventsPerSecond: (n * 1000) / ms,
    statementsPerEvent: statements / n,
    roundTripsPerEvent: pipelined === undefined ? undefined : pipelined ? commits / n : statements / n,
  };
}

interface OursRun {
  readonly eventsPerSecond: number;
  readonly statementsPerEvent: number;
  readonly roundTripsPerEvent: number | undefined;
  readonly byOperation: Record<string, number> | undefined;
}

async function importRun(open: () => Promise<Storage>, room: RoomFile, batchSize: number): Promise<OursRun> {
  const storage = await open();
  try {
    const s = await importPDUFile(storage, room.file, { batchSize });
    const r = s.requests;
    return {
      eventsPerSecond: s.eventsPerSecond,
      statementsPerEvent: r ? r.requests / room.events : NaN,
      roundTripsPerEvent: r?.roundTrips !== undefined ? r.roundTrips / room.events : undefined,
      byOperation: r ? Object.fromEntries(Object.entries(r.byOperation).map(([k, v]) => [k, v.requests / room.events])) : undefined,
    };
  } finally {
    await storage.close();
  }
}

interface Engine {
  readonly name: string;
  open(name: string): Promise<Storage>;
  floor(name: string, pipelined: boolean): Promise<FloorEngine>;
  /** Whether the engine has round trips (a server): then PostgreSQL's floor is pipelined. */
  readonly remote: boolean;
}

function engines(o: BenchOptions, url: string | undefined): Engine[] {
  const list: Engine[] = [{
    name: 'SQLite', remote: false,
    open: (name) => openSqliteStore(freshSqliteFile(o, `ingest-${name}`)),
    floor: async (name) => sqliteFloor(freshSqliteFile(o, `ingest-floor-${name}`)),
  }];
  if (url) {
    list.push({
      name: 'PostgreSQL', remote: true,
      open: (name) => openPostgresStore(url, `ingest_${name.replace(/\W/g, '_')}`),
      floor: (name, pipelined) => postgresFloor(url, `ingest_floor_${name.replace(/\W/g, '_')}`, pipelined),
    });
  }
  return list;
}

const perEvent = (v: number | undefined, digits = 2): Cell => (v === undefined || Number.isNaN(v) ? '-' : fixed(v, digits));

export async function ingestBench(o: BenchOptions): Promise<Section> {
  const members = o.quick ? 300 : 1_000;
  const room = await roomFile(o, { members, events: members * 10, seed: o.seed });
  const url = o.postgresURL ? await postgresDatabase(o, 'bench_ingest') : undefined; // fsync on, synchronous_commit on
  const measured = [];
  const rows: Cell[][] = [];
  // An untimed warm-up import and floor run first: whichever ran first would otherwise also pay for compiling the code.
  const warmRoom = await roomFile(o, { members: 100, events: 1_000, seed: o.seed + 1 });
  for (const engine of engines(o, url)) {
    await importRun(() => engine.open('warm'), warmRoom, 100);
    await floorRun(warmRoom, await engine.floor('warm', true), MINIMAL_TABLES, 100, true, engine.remote ? true : undefined, minimalRows);
  }
  for (const engine of engines(o, url)) {
    for (const [label, batch] of [['a batch of 100 per commit', 100], ['an event per commit', 1]] as const) {
      const ours = await importRun(() => engine.open(`b${batch}`), room, batch);
      const floor = await floorRun(room, await engine.floor(`min${batch}`, true), MINIMAL_TABLES, batch, true, engine.remote ? true : undefined, minimalRows);
      o.log(`  ingest: ${engine.name}, ${label}: ${ours.eventsPerSecond.toFixed(0)} events/s; minimal-rows floor ${floor.eventsPerSecond.toFixed(0)}`);
      measured.push({ engine: engine.name, batch, ours, floor });
      rows.push([
        engine.name, label, fixed(ours.eventsPerSecond, 0), fixed(floor.eventsPerSecond, 0), times(ours.eventsPerSecond / floor.eventsPerSecond),
        perEvent(ours.statementsPerEvent), perEvent(floor.statementsPerEvent), perEvent(ours.roundTripsPerEvent), perEvent(floor.roundTripsPerEvent),
      ]);
    }
    // The earlier rounds' floors, unpipelined, for continuity: (event ID, JSON) rows only.
    const oldRow = (nid: number, id: string, line: string): [string, unknown[]][] => [['INSERT INTO floor_old_events (event_id, event_json) VALUES ($1, $2)', [id, line]]];
    const oldAll = await floorRun(room, await engine.floor('old-all', false), [OLD_TABLE], Number.MAX_SAFE_INTEGER, false, engine.remote ? false : undefined, oldRow);
    const oldEach = await floorRun(room, await engine.floor('old-each', false), [OLD_TABLE], 1, false, engine.remote ? false : undefined, oldRow);
    measured.push({ engine: engine.name, oldFloors: { oneTransaction: oldAll, aCommitPerRow: oldEach } });
    const batched = measured.find((m) => m.engine === engine.name && 'batch' in m && m.batch === 100) as { ours: OursRun };
    const single = measured.find((m) => m.engine === engine.name && 'batch' in m && m.batch === 1) as { ours: OursRun };
    rows.push([engine.name, 'old floor: ID and JSON rows, one transaction, unpipelined', fixed(batched.ours.eventsPerSecond, 0),
      fixed(oldAll.eventsPerSecond, 0), times(batched.ours.eventsPerSecond / oldAll.eventsPerSecond),
      perEvent(batched.ours.statementsPerEvent), perEvent(oldAll.statementsPerEvent), perEvent(batched.ours.roundTripsPerEvent), perEvent(oldAll.roundTripsPerEvent)]);
    rows.push([engine.name, 'old floor: ID and JSON rows, a commit per row, unpipelined', fixed(single.ours.eventsPerSecond, 0),
      fixed(oldEach.eventsPerSecond, 0), times(single.ours.eventsPerSecond / oldEach.eventsPerSecond),
      perEvent(single.ours.statementsPerEvent), perEvent(oldEach.statementsPerEvent), perEvent(single.ours.roundTripsPerEvent), perEvent(oldEach.roundTripsPerEvent)]);
  }
  return {
    id: 'ingest',
    title: `Ingest: the import path on a generated room of ${members.toLocaleString('en-US')} members and ${room.events.toLocaleString('en-US')} events`,
    notes: [
      'Ours: importPDUFile (what `matrix-storage import` runs) with its state, memberships and latest events: `--batch 100` (the default; appendEvents) and `--batch 1` (appendEvent\'s cost).',
      'Minimal-rows floor, at the same commit granularity on the same engine: an event row with its unique ID index, the JSON, one state-delta row per ' +
        'state event, the room\'s latest pointer once per commit; plain single-row prepared statements, on PostgreSQL a commit\'s statements pipelined ' +
        '(one round trip per commit). It parses each line and computes its event ID, as the import does.',
      'Old floors (earlier rounds\' reports): event ID and JSON in one table, unpipelined, compared with the batched and the single-event import respectively.',
      'SQLite: a file, WAL, synchronous NORMAL (the store\'s default). PostgreSQL: fsync on, synchronous_commit on. Higher events/s is better; ' +
        'statements and sequential round trips are per event (SQLite has no round trips).',
    ],
    columns: ['engine', 'commit granularity (floor)', 'ours events/s', 'floor events/s', '× floor', 'ours statements', 'floor statements', 'ours round trips', 'floor round trips'],
    rows,
    data: { members, events: room.events, measured },
  };
}

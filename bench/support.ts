/**
 * Helpers every benchmark shares: options, a scratch directory, generated rooms, SQLite bytes on disk, timing,
 * and the shape of a benchmark's result (a printed table plus every number for results.json).
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { generateRoomWithStats, type GenerateStats } from '../src/io/generate-room.js';
import type { GenerateOptions } from '../src/io/generate-options.js';
import { computeEventID, createStorage, type Storage } from '../src/index.js';
import { isAlive } from '../test/support/pg-cluster.js';
import type { EventNID, EventStateKeyNID, EventTypeNID } from '../src/types/nids.js';
import type { StateEntry } from '../src/types/state.js';

export interface BenchOptions {
  /** --quick: small rooms and few repetitions, for a run of under 3 minutes. */
  readonly quick: boolean;
  /** Members and events of the state-storage room (bench 1). */
  readonly members: number;
  readonly events: number;
  readonly seed: number;
  /** A scratch directory for this run's files, removed at the end. */
  readonly dir: string;
  /** Where the printed progress goes (stderr), so that stdout holds only the tables. */
  readonly log: (line: string) => void;
  /** The PostgreSQL cluster the bench started (fsync on), or undefined where none could be started. */
  readonly postgresURL: string | undefined;
}

/** One printed cell: text, or a number formatted with `digits` decimals (thousands separated). */
export type Cell = string | number | { readonly value: number; readonly digits: number };

/** What a benchmark hands the runner: a table to print and every number it measured, for results.json. */
export interface Section {
  readonly id: string;
  readonly title: string;
  /** Printed under the title: the setup, what each floor or peer is, caveats. */
  readonly notes: readonly string[];
  readonly columns: readonly string[];
  readonly rows: readonly (readonly Cell[])[];
  readonly data: unknown;
}

export const fixed = (value: number, digits: number): Cell => ({ value, digits });
/** A ratio cell: "12.3×". */
export const times = (ratio: number): string =>
  !Number.isFinite(ratio) ? 'n/a' : `${ratio >= 100 ? Math.round(ratio).toLocaleString('en-US') : ratio >= 10 ? ratio.toFixed(1) : ratio.toFixed(2)}×`;

export function formatCell(c: Cell): string {
  if (typeof c === 'string') return c;
  const { value, digits } = typeof c === 'number' ? { value: c, digits: 0 } : c;
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function renderTable(columns: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const text = rows.map((r) => r.map(formatCell));
  const widths = columns.map((c, i) => Math.max(c.length, ...text.map((r) => (r[i] ?? '').length)));
  const numeric = columns.map((_, i) => rows.every((r) => typeof r[i] !== 'string' || /^[\d.,]+×?$|^n\/a$|^-$/.test(r[i] as string)));
  const line = (cells: readonly string[]) =>
    '| ' + cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ') + ' |';
  return [line(columns), '|' + widths.map((w, i) => (numeric[i] ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|') + '|', ...text.map(line)].join('\n');
}

export function renderSection(s: Section): string {
  return [`## ${s.title}`, '', ...s.notes.map((n) => `- ${n}`), '', renderTable(s.columns, s.rows)].join('\n');
}

// ---- Rooms ----

export interface RoomFile {
  readonly file: string;
  readonly options: GenerateOptions;
  readonly stats: GenerateStats;
  readonly events: number;
  readonly roomID: string;
}

const rooms = new Map<string, RoomFile>();

/** Writes a generated room to a JSON-lines file in the scratch dir (once per options), as `matrix-storage generate` does. */
export async function roomFile(o: BenchOptions, options: GenerateOptions): Promise<RoomFile> {
  const key = JSON.stringify(options);
  const known = rooms.get(key);
  if (known) return known;
  const file = path.join(o.dir, `room-${rooms.size + 1}.jsonl`);
  const { lines, stats } = generateRoomWithStats(options);
  const out = fs.createWriteStream(file);
  let events = 0;
  let roomID = '';
  for (const line of lines) {
    if (events++ === 0) roomID = (JSON.parse(line) as { room_id: string }).room_id;
    if (!out.write(line + '\n')) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  const room = { file, options, stats, events, roomID };
  rooms.set(key, room);
  return room;
}

/** The event ID of a generated room's line: computed, as room version 10 PDUs do not carry one. */
export const eventIDOfLine = (line: string): string => computeEventID(JSON.parse(line) as Record<string, unknown>, '10');

export async function* fileLines(file: string): AsyncGenerator<string> {
  const rl = readline.createInterface({ input: fs.createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of rl) if (line !== '') yield line;
}

/** A room's state changes in file order, as entries with NIDs given in order of first appearance. */
export interface StateChanges {
  readonly events: number;
  readonly changes: readonly StateEntry[];
}

export async function readStateChanges(file: string): Promise<StateChanges> {
  const types = new Map<string, number>();
  const keys = new Map<string, number>();
  const nid = (m: Map<string, number>, k: string) => {
    let v = m.get(k);
    if (v === undefined) m.set(k, (v = m.size + 1));
    return v;
  };
  const changes: StateEntry[] = [];
  let events = 0;
  for await (const line of fileLines(file)) {
    events++;
    const e = JSON.parse(line) as { type: string; state_key?: string };
    if (e.state_key === undefined) continue;
    changes.push({
      eventTypeNID: nid(types, e.type) as EventTypeNID, eventStateKeyNID: nid(keys, e.state_key) as EventStateKeyNID, eventNID: events as EventNID,
    });
  }
  return { events, changes };
}

// ---- SQLite ----

/** Opens a plain SQLite file with the store's own settings (WAL, synchronous NORMAL), for the floors and peers. */
export function plainSqlite(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}

/** Bytes on disk of each b-tree (table or index) of these tables, from SQLite's dbstat. */
export function sqliteBtreeBytes(db: Database.Database, tables: readonly string[]): Record<string, number> {
  const rows = db.prepare(`SELECT d.name AS name, d.pgsize AS bytes FROM dbstat AS d
    WHERE d.aggregate = TRUE AND d.name IN (SELECT name FROM sqlite_schema WHERE tbl_name IN (SELECT value FROM json_each(?)))`)
    .all(JSON.stringify(tables)) as { name: string; bytes: number }[];
  return Object.fromEntries(rows.map((r) => [r.name, r.bytes]));
}

/** Bytes on disk of these tables and all their indexes: the pages SQLite's dbstat counts for them. */
export function sqliteTableBytes(db: Database.Database, tables: readonly string[]): number {
  return Object.values(sqliteBtreeBytes(db, tables)).reduce((a, b) => a + b, 0);
}

/** A path for a new SQLite file in the scratch dir (any earlier file of that name removed). */
export function freshSqliteFile(o: BenchOptions, name: string): string {
  const file = path.join(o.dir, `${name}.db`);
  for (const f of [file, `${file}-wal`, `${file}-shm`]) fs.rmSync(f, { force: true });
  return file;
}

/** A store over a SQLite file, with the store's default durability; `config` adds keys (e.g. state.fan_in). */
export function openSqliteStore(file: string, config: Record<string, unknown> = {}): Promise<Storage> {
  return createStorage({ ...config, backend: 'sqlite', sqlite: { path: file } });
}

// ---- Timing ----

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Milliseconds since `start` (a performance.now() reading). */
export const since = (start: number) => performance.now() - start;

/** A seeded PRNG (mulberry32), so that every run picks the same "random" events. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    node: process.version,
    loadAverageAtStart: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}

/** A scratch dir for this run; those of earlier runs that were killed (their pid is gone) are removed first. */
export function scratchDir(): string {
  for (const name of fs.readdirSync(os.tmpdir())) {
    const m = /^matrix-storage-bench-(\d+)-/.exec(name);
    if (m && !isAlive(Number(m[1]))) fs.rmSync(path.join(os.tmpdir(), name), { recursive: true, force: true });
  }
  return fs.mkdtempSync(path.join(os.tmpdir(), `matrix-storage-bench-${process.pid}-`));
}

// ---- PostgreSQL ----

/** The bench cluster's URL, or an error naming why there is none. */
export function postgresURL(o: BenchOptions): string {
  if (!o.postgresURL) throw new Error('no PostgreSQL cluster was started for this run');
  return o.postgresURL;
}

/**
 * A database of its own on the bench cluster (created on first use), with per-database settings such as
 * synchronous_commit = off where durability does not matter to what is measured. Returns its URL.
 */
export async function postgresDatabase(o: BenchOptions, name: string, settings: Record<string, string> = {}): Promise<string> {
  const admin = new pg.Client({ connectionString: postgresURL(o) });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${name}`);
    for (const [k, v] of Object.entries(settings)) await admin.query(`ALTER DATABASE ${name} SET ${k} = ${v}`);
  } finally {
    await admin.end();
  }
  const url = new URL(postgresURL(o));
  url.pathname = `/${name}`;
  return url.toString();
}

/** A store in its own schema of a database on the bench cluster. */
export function openPostgresStore(url: string, schema: string, config: Record<string, unknown> = {}): Promise<Storage> {
  return createStorage({ ...config, backend: 'postgres', postgres: { url, schema, ...(config.postgres as object | undefined) } });
}

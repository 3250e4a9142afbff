/**
 * Bench 3, ingest: events per second of the real import path (importFile, what `matrix-storage import` runs: one
 * transaction per event, with state, memberships and latest events) on SQLite (a file, default durability) and on
 * PostgreSQL (the bench cluster: fsync on, synchronous_commit on). The floor inserts the same rows (event ID, JSON)
 * with the plainest prepared-statement loop, in one transaction, on the same engine; a second floor commits each
 * row on its own, as durable per event as the import is. Both floors read and parse the same file as the import.
 */
import pg from 'pg';
import { importPDUFile as importFile } from '../src/io/import.js';
import type { Storage } from '../src/index.js';
import {
  fileLines, fixed, freshSqliteFile, openPostgresStore, openSqliteStore, plainSqlite, postgresDatabase, roomFile, since, times,
  type BenchOptions, type Cell, type RoomFile, type Section,
} from './support.js';

/** A plain loop's inserts: `insert` one row; `begin`/`commit` around all rows, or around each. */
interface PlainEvents {
  begin(): Promise<void>;
  insert(eventID: string, json: string): Promise<void>;
  commit(): Promise<void>;
  close(): Promise<void>;
}

const PLAIN_TABLE = 'bench_plain_events (event_id TEXT NOT NULL PRIMARY KEY, event_json TEXT NOT NULL)';

function sqlitePlainEvents(file: string): PlainEvents {
  const db = plainSqlite(file);
  db.exec(`CREATE TABLE ${PLAIN_TABLE}`);
  const insert = db.prepare('INSERT INTO bench_plain_events (event_id, event_json) VALUES (?, ?)');
  return {
    begin: async () => void db.exec('BEGIN'),
    insert: async (id, json) => void insert.run(id, json),
    commit: async () => void db.exec('COMMIT'),
    close: async () => void db.close(),
  };
}

async function postgresPlainEvents(url: string, schema: string): Promise<PlainEvents> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}; SET search_path = ${schema}; DROP TABLE IF EXISTS bench_plain_events; CREATE TABLE ${PLAIN_TABLE}`);
  return {
    begin: async () => void (await client.query('BEGIN')),
    insert: async (id, json) => void (await client.query({ name: 'insert_event', text: 'INSERT INTO bench_plain_events (event_id, event_json) VALUES ($1, $2)', values: [id, json] })),
    commit: async () => void (await client.query('COMMIT')),
    close: () => client.end(),
  };
}

/** Events per second of the plain loop over the room file: one transaction for all rows, or one per row. */
async function plainRate(room: RoomFile, plain: PlainEvents, transactionPerRow: boolean): Promise<number> {
  const t0 = performance.now();
  if (!transactionPerRow) await plain.begin();
  for await (const line of fileLines(room.file)) {
    const id = (JSON.parse(line) as { event_id: string }).event_id;
    if (transactionPerRow) await plain.begin();
    await plain.insert(id, line);
    if (transactionPerRow) await plain.commit();
  }
  if (!transactionPerRow) await plain.commit();
  const ms = since(t0);
  await plain.close();
  return (room.events * 1000) / ms;
}

interface Engine {
  readonly name: string;
  open(): Promise<Storage>;
  /** A fresh plain table; `n` tells the two floors apart. */
  plain(n: number): Promise<PlainEvents>;
}

export async function ingestBench(o: BenchOptions): Promise<Section> {
  const members = o.quick ? 300 : 1_000;
  const room = await roomFile(o, { members, events: members * 10, seed: o.seed });
  const engines: Engine[] = [{
    name: 'SQLite',
    open: () => openSqliteStore(freshSqliteFile(o, 'ingest')),
    plain: async (n) => sqlitePlainEvents(freshSqliteFile(o, `ingest-floor-${n}`)),
  }];
  if (o.postgresURL) {
    const url = await postgresDatabase(o, 'bench_ingest'); // PostgreSQL's defaults: fsync on, synchronous_commit on
    engines.push({ name: 'PostgreSQL', open: () => openPostgresStore(url, 'ingest'), plain: (n) => postgresPlainEvents(url, `ingest_floor_${n}`) });
  }
  const measured = [];
  for (const engine of engines) {
    const storage = await engine.open();
    let summary;
    try {
      summary = await importFile(storage, room.file);
    } finally {
      await storage.close();
    }
    const floor = await plainRate(room, await engine.plain(1), false);
    const floorPerRow = await plainRate(room, await engine.plain(2), true);
    const statementsPerEvent = summary.requests ? summary.requests.requests / room.events : NaN;
    o.log(`  ingest: ${engine.name}: ${summary.eventsPerSecond.toFixed(0)} events/s; floor ${floor.toFixed(0)}, per-row commits ${floorPerRow.toFixed(0)}`);
    measured.push({
      engine: engine.name, events: room.events, eventsPerSecond: summary.eventsPerSecond, floorEventsPerSecond: floor,
      floorPerRowCommitEventsPerSecond: floorPerRow, statementsPerEvent, floorStatementsPerEvent: 1 + 2 / room.events,
      byOperation: summary.requests?.byOperation,
    });
  }
  const rows: Cell[][] = measured.map((m) => [
    m.engine, fixed(m.eventsPerSecond, 0), fixed(m.floorEventsPerSecond, 0), times(m.eventsPerSecond / m.floorEventsPerSecond),
    fixed(m.floorPerRowCommitEventsPerSecond, 0), times(m.eventsPerSecond / m.floorPerRowCommitEventsPerSecond),
    fixed(m.statementsPerEvent, 1), times(m.statementsPerEvent / m.floorStatementsPerEvent),
  ]);
  return {
    id: 'ingest',
    title: `Ingest: the import path on a generated room of ${members.toLocaleString('en-US')} members and ${room.events.toLocaleString('en-US')} events`,
    notes: [
      'Ours: importFile (what `matrix-storage import` runs): each event in its own transaction, with its state, membership and latest events.',
      'Floor: the same rows (event ID, JSON) inserted by a plain prepared-statement loop in one transaction, on the same engine; ' +
        'the second floor commits each row on its own (as durable per event as the import). Both read and parse the same file.',
      'SQLite: a file, WAL, synchronous NORMAL (the store\'s default). PostgreSQL: fsync on, synchronous_commit on. Higher events/s is better.',
    ],
    columns: ['engine', 'ours events/s', 'floor events/s', '× floor', 'floor, a commit per row', '× that floor', 'statements/event', '× floor'],
    rows,
    data: { members, events: room.events, measured },
  };
}

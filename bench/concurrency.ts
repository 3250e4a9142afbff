/**
 * Bench 3b, many rooms at once: 8 generated rooms imported concurrently into one store (each room its own import,
 * batches of 100 as `matrix-storage import` commits them), for 1, 2, 4 and 8 rooms at a time: the aggregate rate
 * against one room alone, on PostgreSQL (the pool: each room's transaction on its own connection, each room locked
 * on its own) and on SQLite (one writer: concurrent callers' transactions grouped into shared commits). The share of
 * one core this process used shows where the curve flattens because this process is busy (parsing, hashing and
 * planning are single-threaded JavaScript), rather than the database.
 */
import { importPDUFile } from '../src/io/import.js';
import type { Storage } from '../src/index.js';
import { fixed, freshSqliteFile, openPostgresStore, openSqliteStore, postgresDatabase, roomFile, since, times, type BenchOptions, type Cell, type RoomFile, type Section } from './support.js';

const ROOMS = 8;
const CURVE = [1, 2, 4, 8];

async function importConcurrently(storage: Storage, rooms: readonly RoomFile[]) {
  storage.requestStats?.reset();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(rooms.map((r) => importPDUFile(storage, r.file, { batchSize: 100 })));
  const ms = since(t0);
  const cpu = process.cpuUsage(cpu0);
  const events = rooms.reduce((n, r) => n + r.events, 0);
  const stats = storage.requestStats?.snapshot();
  const commits = stats?.byOperation.COMMIT?.requests;
  return { rooms: rooms.length, events, ms, eventsPerSecond: (events * 1000) / ms, cpuShare: (cpu.user + cpu.system) / 1000 / ms, commits };
}

export async function concurrencyBench(o: BenchOptions): Promise<Section> {
  const members = o.quick ? 100 : 250;
  const rooms: RoomFile[] = [];
  for (let i = 1; i <= ROOMS; i++) rooms.push(await roomFile(o, { members, events: members * 10, seed: o.seed * 100 + i }));
  const url = o.postgresURL ? await postgresDatabase(o, 'bench_concurrency') : undefined;
  const engines: { name: string; open: (n: number) => Promise<Storage> }[] = [
    { name: 'SQLite', open: (n) => openSqliteStore(freshSqliteFile(o, `concurrency-${n}`)) },
  ];
  if (url) engines.unshift({ name: 'PostgreSQL', open: (n) => openPostgresStore(url, `concurrency_${n}`, { postgres: { pool_size: ROOMS + 2 } }) });
  const measured = [];
  const rows: Cell[][] = [];
  for (const engine of engines) {
    let alone = NaN;
    for (const n of CURVE) {
      const storage = await engine.open(n);
      let run;
      try {
        run = await importConcurrently(storage, rooms.slice(0, n));
      } finally {
        await storage.close();
      }
      if (n === 1) alone = run.eventsPerSecond;
      o.log(`  concurrency: ${engine.name}, ${n} rooms: ${run.eventsPerSecond.toFixed(0)} events/s, ${(run.cpuShare * 100).toFixed(0)}% of a core`);
      measured.push({ engine: engine.name, ...run });
      rows.push([engine.name, n, fixed(run.eventsPerSecond, 0), times(run.eventsPerSecond / alone), `${(run.cpuShare * 100).toFixed(0)}%`,
        run.commits === undefined ? '-' : fixed(run.events / run.commits, 1)]);
    }
  }
  return {
    id: 'concurrency',
    title: `Many rooms at once: ${ROOMS} generated rooms of ${members} members and ${(members * 10).toLocaleString('en-US')} events, imported concurrently into one store`,
    notes: [
      'Each room is its own import (batches of 100 events per commit); N rooms run at once in this process; the rate is all their events over the wall time.',
      'PostgreSQL: a pool of 10 connections, fsync and synchronous_commit on. SQLite: a file, one writer, concurrent transactions grouped into one commit.',
      '"this process" is the CPU this Node process used, as a share of one core over the wall time: near 100% it is the limit (one JavaScript thread).',
    ],
    columns: ['engine', 'rooms at once', 'events/s, all rooms', '× one room', 'this process', 'events per commit'],
    rows,
    data: { members, rooms: ROOMS, measured },
  };
}

/**
 * Bench 3b, many rooms at once: 8 generated rooms imported concurrently into one store (each room its own import,
 * batches of 100 as `matrix-storage import` commits them), for 1, 2, 4 and 8 rooms at a time: the aggregate rate
 * against one room alone, on PostgreSQL (the pool: each room's transaction on its own connection, each room locked
 * on its own) and on SQLite (one writer: concurrent callers' transactions grouped into shared commits). The share of
 * one core this process used shows where the curve flattens because this process is busy (parsing, hashing and
 * planning are single-threaded JavaScript), rather than the database.
 */
import fs from 'node:fs';
import { importPDUFile } from '../src/io/import.js';
import type { Storage } from '../src/index.js';
import { fixed, freshSqliteFile, openPostgresStore, openSqliteStore, postgresDatabase, roomFile, since, times, type BenchOptions, type Cell, type RoomFile, type Section } from './support.js';

const ROOMS = 8;
const CURVE = [1, 2, 4, 8];

/** Busy and total CPU time of the whole machine so far (all cores, every process: the database server's too). */
function machineCPU(): { busy: number; total: number } {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = cpu[3]! + (cpu[4] ?? 0);
  const total = cpu.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

async function importConcurrently(storage: Storage, rooms: readonly RoomFile[]) {
  storage.requestStats?.reset();
  const machine0 = machineCPU();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(rooms.map((r) => importPDUFile(storage, r.file, { batchSize: 100 })));
  const ms = since(t0);
  const cpu = process.cpuUsage(cpu0);
  const machine1 = machineCPU();
  const machineShare = (machine1.busy - machine0.busy) / Math.max(1, machine1.total - machine0.total);
  const events = rooms.reduce((n, r) => n + r.events, 0);
  const stats = storage.requestStats?.snapshot();
  const commits = stats?.byOperation.COMMIT?.requests;
  return { rooms: rooms.length, events, ms, eventsPerSecond: (events * 1000) / ms, cpuShare: (cpu.user + cpu.system) / 1000 / ms, machineShare, commits };
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
    // A warm-up import first, untimed: the first room imported in a process also pays for compiling the code.
    const warm = await engine.open(0);
    try {
      await importPDUFile(warm, rooms[ROOMS - 1]!.file, { batchSize: 100 });
    } finally {
      await warm.close();
    }
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
        `${(run.machineShare * 100).toFixed(0)}%`,
        run.commits === undefined ? '-' : fixed(run.events / run.commits, 1)]);
    }
  }
  return {
    id: 'concurrency',
    title: `Many rooms at once: ${ROOMS} generated rooms of ${members} members and ${(members * 10).toLocaleString('en-US')} events, imported concurrently into one store`,
    notes: [
      'Each room is its own import (batches of 100 events per commit); N rooms run at once in this process; the rate is all their events over the wall time. ' +
        'One untimed import first warms the process up (compiling the code).',
      'PostgreSQL: a pool of 10 connections, fsync and synchronous_commit on. SQLite: a file, one writer, concurrent transactions grouped into one commit.',
      '"this process" is the CPU this Node process used, as a share of one core over the wall time: near 100% it is the limit (one JavaScript thread). ' +
        '"machine" is the busy share of all cores (every process, the database server included): near 100% the machine is the limit.',
    ],
    columns: ['engine', 'rooms at once', 'events/s, all rooms', '× one room', 'this process', 'machine', 'events per commit'],
    rows,
    data: { members, rooms: ROOMS, measured },
  };
}

/**
 * Bench 7, copy: `matrix-storage copy` from a SQLite file to PostgreSQL (the bench cluster, fsync on), of a
 * generated store of at least 1 GiB (--quick: 64 MiB) holding every table: several rooms of real v10 PDUs, device
 * keys, one-time keys, key backups, to-device messages.
 *
 * Throughput is the source file's size over the time taken, as synapse_port_db's published rate is (42 GB in about
 * 520 minutes, 1.35 MB/s); the rows' own bytes per second are beside it. The floor, in the same run on the same
 * engines: the plainest copy of the same SQLite tables into PostgreSQL tables of the same columns without
 * indexes or constraints, a page of 1,000 rows per INSERT ... SELECT FROM unnest and per transaction (the copy's
 * granularity): what moving these bytes costs before any store logic.
 *
 * Then the same copy run as a user would, the installed command in a child process, killed with SIGKILL at 20
 * random moments and run again with --resume each time: the target must verify equal to the source and hold
 * exactly the rows of the uninterrupted copy.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { Storage } from '../src/index.js';
import { importPDUFile } from '../src/io/import.js';
import { copyStore } from '../src/io/copy.js';
import { verifyCopy } from '../src/io/verify.js';
import {
  fixed, freshSqliteFile, openPostgresStore, openSqliteStore, plainSqlite, postgresDatabase, roomFile, seededRandom, since, times,
  type BenchOptions, type Section,
} from './support.js';
import { runKilledAfter } from '../test/support/child-process.js';

const MiB = 2 ** 20;
const KILLS = 20;

export async function copyBench(o: BenchOptions): Promise<Section> {
  const targetBytes = o.quick ? 64 * MiB : 1024 * MiB;
  const sourceFile = freshSqliteFile(o, 'copy-source');
  const built = await buildSource(o, sourceFile, targetBytes);
  const fileBytes = sqliteFileBytes(sourceFile);
  o.log(`  source: ${(fileBytes / MiB).toFixed(0)} MiB, ${built.events.toLocaleString('en-US')} events in ${built.rooms} rooms, built in ${(built.ms / 1000).toFixed(0)} s`);
  const url = await postgresDatabase(o, 'bench_copy');

  const floor = await plainCopy(sourceFile, url, 'copy_floor');
  o.log(`  floor: ${(floor.ms / 1000).toFixed(1)} s`);

  const source = await openSqliteStore(sourceFile);
  let copyMs = 0;
  let verifyMs = 0;
  let rowBytes = 0;
  let rows = 0;
  try {
    const target = await openPostgresStore(url, 'copy_clean');
    try {
      const t0 = performance.now();
      const summary = await copyStore(source, target, { sourceDescription: `sqlite ${sourceFile}`, verify: false });
      copyMs = since(t0);
      rowBytes = summary.bytes;
      rows = summary.rows;
      o.log(`  copy: ${(copyMs / 1000).toFixed(1)} s`);
      const t1 = performance.now();
      const report = await verifyCopy(source, target);
      verifyMs = since(t1);
      if (!report.equal) throw new Error(`the copy does not verify: ${report.differences.join('; ')}`);
      o.log(`  verify: ${(verifyMs / 1000).toFixed(1)} s`);
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }

  const killed = await killAndResume(o, sourceFile, url, copyMs);
  const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);
  const ours = mbps(fileBytes, copyMs);
  return {
    id: 'copy',
    title: `Copy: SQLite file -> PostgreSQL, ${(fileBytes / MiB).toFixed(0)} MiB store`,
    notes: [
      `The source: ${built.rooms} generated rooms (${built.events.toLocaleString('en-US')} events) and ${built.keyRows.toLocaleString('en-US')} rows of device keys, one-time keys, key backups and to-device messages; ${rows.toLocaleString('en-US')} rows in all.`,
      'MB/s is the source file\'s size (10^6 bytes) over the time taken; synapse_port_db\'s published rate is about 1.35 MB/s (42 GB in about 520 minutes), the goal 13.5 MB/s.',
      'The floor: the same SQLite tables read by plain SELECTs and written into PostgreSQL tables of the same columns with no index or constraint, 1,000 rows per INSERT ... SELECT FROM unnest and per transaction.',
      `Killed and resumed: the command (a child process) killed with SIGKILL ${killed.kills} times at random moments, each time run again with --resume; ${killed.midCopy} of the kills fell after rows were written and before the end.`,
    ],
    columns: ['what', 'seconds', 'MB/s (file)', 'MB/s (rows)', 'vs floor'],
    rows: [
      ['floor: plain copy of the tables, no indexes', fixed(floor.ms / 1000, 1), fixed(mbps(fileBytes, floor.ms), 1), fixed(mbps(floor.bytes, floor.ms), 1), '1.00×'],
      ['copy (copyStore, verification aside)', fixed(copyMs / 1000, 1), fixed(ours, 1), fixed(mbps(rowBytes, copyMs), 1), times(floor.ms / copyMs)],
      ['copy + verification', fixed((copyMs + verifyMs) / 1000, 1), fixed(mbps(fileBytes, copyMs + verifyMs), 1), fixed(mbps(rowBytes, copyMs + verifyMs), 1), times(floor.ms / (copyMs + verifyMs))],
      [`copy killed ${killed.kills}× and resumed (command, wall time)`, fixed(killed.ms / 1000, 1), fixed(mbps(fileBytes, killed.ms), 1), '-', times(floor.ms / killed.ms)],
      ['goal: 10× synapse_port_db', '-', fixed(13.5, 1), '-', '-'],
    ],
    data: {
      fileBytes, rowBytes, rows, build: built, floor, copyMs, verifyMs, mbPerSecond: ours, goalMet: ours >= 13.5, killed,
    },
  };
}

/** Rooms of real v10 PDUs until the file reaches `targetBytes`, then the key server's and to-device tables. */
async function buildSource(o: BenchOptions, file: string, targetBytes: number) {
  const t0 = performance.now();
  const store = await openSqliteStore(file);
  let events = 0;
  let rooms = 0;
  let keyRows = 0;
  try {
    const perRoom = o.quick ? { members: 1_000, events: 20_000 } : { members: 5_000, events: 250_000 };
    while (sqliteFileBytes(file) < targetBytes) {
      const room = await roomFile(o, { ...perRoom, seed: 100 + rooms });
      const summary = await importPDUFile(store, room.file, { batchSize: 1000 });
      events += summary.applied;
      rooms++;
      fs.rmSync(room.file, { force: true });
      o.log(`  source: room ${rooms}, ${(sqliteFileBytes(file) / MiB).toFixed(0)} MiB`);
    }
    keyRows = await fillKeyTables(store, o.quick ? 2_000 : 20_000);
  } finally {
    await store.close();
  }
  return { events, rooms, keyRows, ms: since(t0) };
}

/** Per user: two devices with keys, ten one-time keys, a key backup with five sessions, two to-device messages. */
async function fillKeyTables(s: Storage, users: number): Promise<number> {
  const random = seededRandom(7);
  const blob = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256))).toString('base64');
  let rows = 0;
  for (let u = 0; u < users; u++) {
    const userID = `@user${u}:bench.example.org`;
    const devices = ['PHONE', 'LAPTOP'].map((d) => ({ userID, deviceID: `${d}${u}`, keyJSON: JSON.stringify({ keys: { [`ed25519:${d}${u}`]: blob(32) }, signatures: blob(64) }), streamID: 0 }));
    await s.keys.storeLocalDeviceKeys(devices);
    await s.keys.storeOneTimeKeys({ userID, deviceID: devices[0]!.deviceID, keyJSON: new Map(Array.from({ length: 10 }, (_, i) => [`signed_curve25519:K${i}`, JSON.stringify({ key: blob(32) })])) });
    const version = await s.keyBackup.createKeyBackup(userID, 'm.megolm_backup.v1.curve25519-aes-sha2', JSON.stringify({ public_key: blob(32) }));
    await s.keyBackup.upsertBackupKeys(userID, version, Array.from({ length: 5 }, (_, i) => ({
      roomID: '!bench:example.org', sessionID: `S${u}-${i}`, firstMessageIndex: 0, forwardedCount: 0, isVerified: false, sessionData: JSON.stringify({ ciphertext: blob(160) }),
    })));
    for (let m = 0; m < 2; m++) await s.sendToDevice.storeNewSendForDeviceMessage(userID, devices[0]!.deviceID, { sender: '@bot:bench.example.org', type: 'm.room_key', content: { k: blob(64) } });
    rows += 2 + 10 + 1 + 5 + 2;
  }
  return rows;
}

function sqliteFileBytes(file: string): number {
  return [file, `${file}-wal`].reduce((n, f) => n + (fs.existsSync(f) ? fs.statSync(f).size : 0), 0);
}

/** The floor: each SQLite table read by a plain SELECT, written into a bare PostgreSQL table, a page per transaction. */
async function plainCopy(sourceFile: string, url: string, schema: string): Promise<{ ms: number; bytes: number }> {
  const db = plainSqlite(sourceFile);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE; CREATE SCHEMA ${schema}`);
    const tables = (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[]).map((t) => t.name);
    const t0 = performance.now();
    let bytes = 0;
    for (const table of tables) {
      const columns = db.prepare(`SELECT name, type FROM pragma_table_info(?)`).all(table) as { name: string; type: string }[];
      const pgType = (t: string) => (/INT/i.test(t) ? 'bigint' : /BLOB/i.test(t) ? 'bytea' : 'text');
      await client.query(`CREATE TABLE ${schema}.${table} (${columns.map((c) => `"${c.name}" ${pgType(c.type)}`).join(', ')})`);
      const insert = `INSERT INTO ${schema}.${table} SELECT * FROM unnest(${columns.map((c, i) => `$${i + 1}::${pgType(c.type)}[]`).join(', ')})`;
      let page: Record<string, unknown>[] = [];
      const flush = async () => {
        if (page.length === 0) return;
        await client.query('BEGIN');
        await client.query(insert, columns.map((c) => page.map((r) => r[c.name])));
        await client.query('COMMIT');
        page = [];
      };
      for (const row of db.prepare(`SELECT * FROM ${table}`).iterate() as Iterable<Record<string, unknown>>) {
        for (const v of Object.values(row)) bytes += typeof v === 'string' ? v.length : Buffer.isBuffer(v) ? v.length : 8;
        page.push(row);
        if (page.length === 1000) await flush();
      }
      await flush();
    }
    const ms = since(t0);
    await client.query(`DROP SCHEMA ${schema} CASCADE`);
    return { ms, bytes };
  } finally {
    db.close();
    await client.end();
  }
}

/**
 * The command run as a user would, killed with SIGKILL at random moments and run again with --resume, until it
 * has been killed KILLS times and then runs to its end. The moments: uniformly random up to twice the share of
 * the copy one run should cover, plus the command's start-up, so the kills spread over the whole copy.
 */
async function killAndResume(o: BenchOptions, sourceFile: string, url: string, copyMs: number) {
  const schema = 'copy_killed';
  const config = path.join(o.dir, 'copy-killed.yaml');
  fs.writeFileSync(config, `backend: postgres\npostgres:\n  url: ${JSON.stringify(url)}\n  schema: ${schema}\n`);
  const args = ['copy', '--from', sourceFile, '--to', config, '--resume', '-q', '--no-verify'];
  const random = seededRandom(o.seed + 20);
  const startup = await measureStartup();
  const t0 = performance.now();
  let kills = 0;
  let midCopy = 0;
  let finished = false;
  while (kills < KILLS && !finished) {
    const before = await copiedRows(url, schema);
    const outcome = await runKilledAfter(args, startup + random() * 2 * (copyMs / KILLS));
    if (outcome === 'killed') {
      kills++;
      const after = await copiedRows(url, schema);
      if (after > before && after >= 0) midCopy++;
    } else finished = true;
  }
  if (!finished) {
    const outcome = await runKilledAfter(args, 3_600_000);
    if (outcome !== 0) throw new Error(`the resumed copy ended with ${outcome}`);
  }
  const ms = since(t0);
  o.log(`  killed ${kills} times (${midCopy} mid-copy), finished in ${(ms / 1000).toFixed(1)} s`);

  const source = await openSqliteStore(sourceFile);
  const [killed, clean] = [await openPostgresStore(url, schema), await openPostgresStore(url, 'copy_clean')];
  try {
    const report = await verifyCopy(source, killed);
    if (!report.equal) throw new Error(`the killed-and-resumed copy does not verify: ${report.differences.join('; ')}`);
    // Table by table, digest for digest, and room by room: the same comparison, between the two copies.
    const same = await verifyCopy(clean, killed);
    if (!same.equal) throw new Error(`the killed-and-resumed copy differs from the uninterrupted copy: ${same.differences.join('; ')}`);
    return { kills, midCopy, ms, startupMs: startup, verifiesEqual: report.equal, equalToCleanCopy: true };
  } finally {
    await Promise.all([source.close(), killed.close(), clean.close()]);
  }
}

/** Rows the target has copied so far, from its progress record (-1 before there is one). */
async function copiedRows(url: string, schema: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query(`SELECT value FROM ${schema}.matrix_storage_copy WHERE name = 'progress'`).catch(() => ({ rows: [] }));
    const value = (r.rows[0] as { value?: string } | undefined)?.value;
    if (!value) return -1;
    return Object.values((JSON.parse(value) as { rows: Record<string, number> }).rows).reduce((a, b) => a + b, 0);
  } finally {
    await c.end();
  }
}

/** How long the command takes to start and print its version: the part of a run before it can copy anything. */
async function measureStartup(): Promise<number> {
  const t0 = performance.now();
  await runKilledAfter(['--version'], 60_000);
  return since(t0);
}

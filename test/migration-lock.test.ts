import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { CLI_BIN } from './support/child-process.js';
import { adminPool, closeAdminPool, dropSchema, freshSchemaName, testDatabaseURL } from './support/postgres.js';
import { MIGRATIONS as SQLITE_MIGRATIONS } from '../src/storage/sqlite/migrations.js';
import { MIGRATIONS as POSTGRES_MIGRATIONS } from '../src/storage/postgres/migrations.js';
import { createStorage } from '../src/index.js';
import { emulatorConfig } from './support/cosmos-emulator.js';
import { sharedEmulator } from './support/drivers-cosmos.js';
import { CosmosConnection } from '../src/storage/cosmosdb/connection.js';
import { withMigrationLock } from '../src/storage/cosmosdb/migration-lock.js';
import { validateConfig } from '../src/config/schema.js';

interface Run { readonly code: number | null; readonly out: string; readonly err: string; readonly endedAt: number }

/** `matrix-storage --config FILE migrate --json` in a child process of its own. */
function migrateInChild(configFile: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_BIN, '--config', configFile, '--quiet', 'migrate', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out, err, endedAt: Date.now() }));
  });
}

const applied = (run: Run): number[] => (JSON.parse(run.out) as { applied: number[] }).applied;

/**
 * Two processes migrating one store at once: both succeed, each migration is applied by exactly one of them (the
 * versions they report are disjoint and together every version), and a process that finds the lock held waits
 * for it rather than migrating beside its holder.
 */
describe('migration lock: two processes migrating at once', function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-migration-lock-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  after(closeAdminPool);

  const expectEachAppliedOnce = (runs: Run[], versions: number[]) => {
    for (const r of runs) expect(r.code, r.err).to.equal(0);
    const all = runs.flatMap(applied);
    expect([...all].sort((a, b) => a - b)).to.deep.equal(versions);
  };

  it('SQLite: both processes succeed and every migration is applied once; a process waits while another holds the write lock', async () => {
    const file = path.join(dir, 'store.db');
    const config = path.join(dir, 'matrix-storage.yaml');
    fs.writeFileSync(config, `backend: sqlite\nsqlite:\n  path: ${JSON.stringify(file)}\n  busy_timeout_ms: 60000\n`);
    const versions = SQLITE_MIGRATIONS.map((m) => m.version);
    expectEachAppliedOnce(await Promise.all([migrateInChild(config), migrateInChild(config)]), versions);
    const db = new Database(file);
    expect((db.prepare('SELECT count(*) AS n, count(DISTINCT version) AS d FROM matrix_storage_migrations').get())).to.deep.equal({ n: versions.length, d: versions.length });
    db.close();

    // The lock itself: a fresh file whose write lock this process holds; the child's migration waits until it is let go.
    const second = path.join(dir, 'second.db');
    fs.writeFileSync(config, `backend: sqlite\nsqlite:\n  path: ${JSON.stringify(second)}\n  busy_timeout_ms: 60000\n`);
    const holder = new Database(second);
    holder.pragma('journal_mode = WAL');
    holder.exec('CREATE TABLE held (x INTEGER)');
    holder.exec('BEGIN IMMEDIATE');
    const child = migrateInChild(config);
    await new Promise((resolve) => setTimeout(resolve, 4000));
    const releasedAt = Date.now();
    holder.exec('COMMIT');
    holder.close();
    const run = await child;
    expect(run.code, run.err).to.equal(0);
    expect(run.endedAt).to.be.at.least(releasedAt);
    expect(applied(run)).to.deep.equal(versions);
  });

  it('PostgreSQL: both processes succeed and every migration is applied once; a process waits while another holds the advisory lock', async () => {
    const versions = POSTGRES_MIGRATIONS.map((m) => m.version);
    const schema = freshSchemaName('lock');
    const config = path.join(dir, 'matrix-storage.yaml');
    fs.writeFileSync(config, `backend: postgres\npostgres:\n  url: ${JSON.stringify(testDatabaseURL())}\n  schema: ${schema}\n`);
    try {
      expectEachAppliedOnce(await Promise.all([migrateInChild(config), migrateInChild(config)]), versions);
      const rows = await adminPool().query(`SELECT count(*)::int AS n, count(DISTINCT version)::int AS d FROM ${schema}.matrix_storage_migrations`);
      expect(rows.rows[0]).to.deep.equal({ n: versions.length, d: versions.length });
    } finally {
      await dropSchema(schema);
    }

    const other = freshSchemaName('lock');
    fs.writeFileSync(config, `backend: postgres\npostgres:\n  url: ${JSON.stringify(testDatabaseURL())}\n  schema: ${other}\n`);
    const client = await adminPool().connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('matrix-storage migrations: ' || $1::text, 0))`, [other]);
      const child = migrateInChild(config);
      await new Promise((resolve) => setTimeout(resolve, 4000));
      const releasedAt = Date.now();
      await client.query('ROLLBACK');
      const run = await child;
      expect(run.code, run.err).to.equal(0);
      expect(run.endedAt).to.be.at.least(releasedAt);
      expect(applied(run)).to.deep.equal(versions);
    } finally {
      client.release();
      await dropSchema(other);
    }
  });

  it('Cosmos DB: openers of one new tenant take turns under the lock document; a dead holder\'s lock is taken over after it expires', async () => {
    const emulator = await sharedEmulator();
    const raw = emulatorConfig(emulator, 'locks', 'lockcase', 'tenant');
    // Two stores opened at once on one new tenant: both open, the tenant ends at the current layout.
    const [a, b] = await Promise.all([createStorage(raw), createStorage(raw)]);
    expect((await a.migrationStatus()).pending).to.deep.equal([]);
    expect((await b.migrationStatus()).pending).to.deep.equal([]);
    await Promise.all([a.close(), b.close()]);

    const config = validateConfig(raw, ['cosmosdb']).cosmosdb;
    const first = await CosmosConnection.open(config);
    const second = await CosmosConnection.open(config);
    try {
      const order: string[] = [];
      let waits = 0;
      let releaseFirst!: () => void;
      const firstHolds = withMigrationLock(first, async () => {
        order.push('first in');
        await new Promise<void>((resolve) => { releaseFirst = resolve; });
        order.push('first out');
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const secondWaits = withMigrationLock(second, async () => { order.push('second in'); }, { pollMs: 50, onWait: () => { waits++; } });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(order).to.deep.equal(['first in']);
      expect(waits).to.be.above(0);
      releaseFirst();
      await Promise.all([firstHolds, secondWaits]);
      expect(order).to.deep.equal(['first in', 'first out', 'second in']);

      // A live holder working past its lock's expiry keeps it (it renews the lock while it works).
      let longDone!: () => void;
      const long = withMigrationLock(first, async () => {
        order.push('long in');
        await new Promise<void>((resolve) => { longDone = resolve; });
        order.push('long out');
      }, { ttlMs: 600 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const behind = withMigrationLock(second, async () => { order.push('behind in'); }, { pollMs: 50 });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(order.slice(-1), 'still held 2.5 expiries later').to.deep.equal(['long in']);
      longDone();
      await Promise.all([long, behind]);
      expect(order.slice(-3)).to.deep.equal(['long in', 'long out', 'behind in']);

      // A holder that died holding the lock (its document left, renewed by nobody): the next opener waits out its
      // expiry, then takes it.
      await first.requests.create('t', { id: 'migration-lock', pk: first.pk('meta'), k: 'migration-lock', holder: 'a dead process', expiresAt: Date.now() + 800, ttl: 1 });
      const started = Date.now();
      await withMigrationLock(second, async () => { order.push('after expiry'); }, { pollMs: 50 });
      expect(Date.now() - started).to.be.at.least(500);
      expect(order.at(-1)).to.equal('after expiry');
    } finally {
      await first.close();
      await second.close();
    }
  });
});

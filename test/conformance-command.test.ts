import { expect } from 'chai';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { CosmosClient } from '@azure/cosmos';
import { createStorage, ConfigError, type StorageConfig } from '../src/index.js';
import { validateConfig } from '../src/config/schema.js';
import { runConformance, type ConformanceCaseResult, type ConformanceReport } from '../src/io/conformance-run.js';
import { fillEveryTable } from './conformance/fill-store.js';
import { runCliReported } from './support/cli.js';
import { emulatorConfig, type CosmosEmulator } from './support/cosmos-emulator.js';
import { sharedEmulator } from './support/drivers-cosmos.js';
import { adminPool, dropSchema, freshSchemaName, testDatabaseURL } from './support/postgres.js';

/**
 * `matrix-storage conformance` (and runConformance under it) against a deployment holding data, on every driver:
 * the cases pass in scratch namespaces, the deployment's data is the same before and after (its fingerprint), and
 * no scratch namespace is left. PostgreSQL and Cosmos DB run a few small groups; SQLite runs the whole suite once.
 */

const SUMMARY = /^(\d+) passed, (\d+) failed, (\d+) skipped$/;
/** A few small groups, for the slower engines. */
const SUBSET = /Store dump|Table: published|Database: key backup versions|Database: storing events/;

const built = (raw: Record<string, unknown>, backends = ['sqlite', 'postgres', 'cosmosdb']): StorageConfig => validateConfig(raw, backends);

/** Opens the deployment, lets `fn` write to it, and returns its fingerprint. */
async function fingerprintOf(raw: Record<string, unknown>, fn?: (s: Awaited<ReturnType<typeof createStorage>>) => Promise<void>): Promise<string> {
  const storage = await createStorage({ server_name: 'example.org', ...raw });
  try {
    await fn?.(storage);
    return await storage.stats.fingerprint();
  } finally {
    await storage.close();
  }
}

function expectAllPassed(report: ConformanceReport): void {
  const failures = report.cases.filter((c) => c.state === 'failed').map((c) => `${c.fullTitle}: ${c.error}`);
  expect(failures).to.deep.equal([]);
  expect(report.failed).to.equal(0);
  expect(report.passed).to.be.greaterThan(0);
  expect(report.passed + report.skipped).to.equal(report.cases.length);
  expect(report.leftBehind).to.deep.equal([]);
}

function writeConfig(dir: string, yaml: string): string {
  const file = path.join(dir, 'matrix-storage.yaml');
  fs.writeFileSync(file, yaml);
  return file;
}

describe('matrix-storage conformance --config: the suite against a deployment, in scratch namespaces', function () {
  this.timeout(180_000);

  describe('on SQLite', () => {
    let dir: string;
    let store: string;
    let configFile: string;
    let fingerprint: string;
    const raw = () => ({ backend: 'sqlite', sqlite: { path: store } });
    const fileDigest = () => createHash('sha256').update(fs.readFileSync(store)).digest('hex');
    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-conformance-'));
      store = path.join(dir, 'hs.db');
      fingerprint = await fingerprintOf(raw(), fillEveryTable);
      configFile = writeConfig(dir, `backend: sqlite\nserver_name: hs.example.net\nsqlite:\n  path: ${JSON.stringify(store)}\n`);
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('runConformance runs every case in scratch files beside the store, which it never opens, and removes them all', async () => {
      const listing = fs.readdirSync(dir).sort();
      const digest = fileDigest();
      const mtime = fs.statSync(store).mtimeMs;
      // A run nested in this mocha process leaves it as it was: its globals, its process listeners.
      const globals = { describe: globalThis.describe, it: globalThis.it, beforeEach: globalThis.beforeEach, afterEach: globalThis.afterEach };
      const listeners = ['uncaughtException', 'unhandledRejection', 'exit'].map((e) => process.listenerCount(e));
      const seen: ConformanceCaseResult[] = [];
      let scratchSeen = false;
      let total = -1;
      const report = await runConformance(built(raw()), {
        onStart: (info) => { total = info.total; },
        onResult: (r) => {
          seen.push(r);
          // While the cases run, their files are in the store's directory (never elsewhere).
          scratchSeen ||= fs.readdirSync(dir).some((f) => /^\.hs\.db\.conformance-\d+-\d+\.db$/.test(f));
        },
      });
      expectAllPassed(report);
      expect({ describe: globalThis.describe, it: globalThis.it, beforeEach: globalThis.beforeEach, afterEach: globalThis.afterEach }).to.deep.equal(globals);
      expect(['uncaughtException', 'unhandledRejection', 'exit'].map((e) => process.listenerCount(e))).to.deep.equal(listeners);
      expect(report.backend).to.equal('sqlite');
      expect(report.passed).to.be.greaterThan(250);
      expect(report.skipped).to.equal(0);
      expect(total).to.equal(report.cases.length);
      expect(seen).to.deep.equal(report.cases);
      expect(scratchSeen).to.equal(true);
      expect(report.namespace).to.include(dir).and.include('.hs.db.conformance-');
      for (const c of report.cases) {
        expect(c.title[0]).to.equal('conformance: sqlite (scratch)');
        expect(c.durationMs).to.be.a('number');
      }
      // The store: the same bytes, not even opened; the directory: as it was.
      expect(fileDigest()).to.equal(digest);
      expect(fs.statSync(store).mtimeMs).to.equal(mtime);
      expect(fs.readdirSync(dir).sort()).to.deep.equal(listing);
      expect(await fingerprintOf(raw())).to.equal(fingerprint);
    });

    it('the command prints "N passed, 0 failed, 0 skipped" on stdout, progress on stderr, and exits 0; --json has every case', async () => {
      const listing = fs.readdirSync(dir).sort();
      const run = await runCliReported(['--config', configFile, 'conformance', '--grep', 'Store dump']);
      expect(run.err).to.match(/conformance: \d+ cases on sqlite scratch files/).and.match(/^ {2}ok {6}Store dump \(copy and check\) > /m);
      expect(run.code, run.err).to.equal(0);
      const m = SUMMARY.exec(run.out);
      expect(m, run.out).to.not.equal(null);
      expect(Number(m![1])).to.be.greaterThan(0);
      expect([m![2], m![3]]).to.deep.equal(['0', '0']);

      const json = await runCliReported(['--config', configFile, '--quiet', 'conformance', '--grep', '/store DUMP/i', '--json']);
      expect(json.code, json.err).to.equal(0);
      expect(json.err).to.equal('');
      const report = JSON.parse(json.out) as ConformanceReport;
      expect(report.passed).to.equal(Number(m![1]));
      expect(report.cases).to.have.length(report.passed);
      for (const c of report.cases) {
        expect(c.state).to.equal('passed');
        expect(c.fullTitle).to.include('Store dump');
        expect(c.title.length).to.be.greaterThan(1);
      }
      expect(fs.readdirSync(dir).sort()).to.deep.equal(listing);
      expect(await fingerprintOf(raw())).to.equal(fingerprint);
    });

    it('failing cases are reported as failed, exit 1, and their scratch files are still removed', async () => {
      const listing = fs.readdirSync(dir).sort();
      // A limit of 1 ms: every case's store takes longer than that to open, so each case fails on its time limit.
      const run = await runCliReported(['--config', configFile, 'conformance', '--grep', 'Store dump', '--timeout', '1']);
      expect(run.code).to.equal(1);
      const m = SUMMARY.exec(run.out);
      expect(m, run.out).to.not.equal(null);
      expect(m![1]).to.equal('0');
      expect(Number(m![2])).to.be.greaterThan(0);
      expect(run.err).to.match(/FAILED {2}Store dump/).and.match(/^failed: Store dump .*Timeout of 1ms exceeded/m);
      expect(fs.readdirSync(dir).sort()).to.deep.equal(listing);
      expect(await fingerprintOf(raw())).to.equal(fingerprint);
    });

    it('--grep that matches no case: "0 passed, 0 failed, 0 skipped", exit 1, saying nothing was checked; a bad pattern is a usage error', async () => {
      const none = await runCliReported(['--config', configFile, 'conformance', '--grep', 'no such case anywhere']);
      expect(none.out).to.equal('0 passed, 0 failed, 0 skipped');
      expect(none.code).to.equal(1);
      expect(none.err).to.match(/no case matches --grep "no such case anywhere": nothing was checked/);
      const bad = await runCliReported(['--config', configFile, 'conformance', '--grep', '(unclosed']);
      expect(bad.code).to.equal(2);
      expect(bad.err).to.match(/--grep: not a valid regular expression/);
      expect(bad.out).to.equal('');
    });

    it('refuses a directory that does not exist, creating nothing', async () => {
      const missing = path.join(dir, 'not-here', 'hs.db');
      const err = await runConformance(built({ backend: 'sqlite', sqlite: { path: missing } }), { grep: 'Store dump' }).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as Error).message).to.match(/not-here, does not exist/);
      expect(fs.existsSync(path.dirname(missing))).to.equal(false);
    });
  });

  describe('on PostgreSQL', () => {
    let schema: string;
    let fingerprint: string;
    let dir: string;
    const raw = () => ({ backend: 'postgres', postgres: { url: testDatabaseURL(), schema, pool_size: 4 } });
    const scratchSchemas = async () => (await adminPool().query<{ nspname: string }>(
      "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'ms\\_conformance\\_%'")).rows.map((r) => r.nspname);
    before(async () => {
      schema = freshSchemaName('deploy');
      fingerprint = await fingerprintOf(raw(), fillEveryTable);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-conformance-pg-'));
    });
    after(async () => {
      await dropSchema(schema);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('runConformance passes in a scratch schema per case, dropped after it; the configured schema is untouched', async () => {
      const schemasBefore = await scratchSchemas();
      const report = await runConformance(built(raw()), { grep: SUBSET });
      expectAllPassed(report);
      expect(report.passed).to.be.greaterThan(10);
      expect(report.namespace).to.match(/^postgres postgres:\/\/.* scratch schemas ms_conformance_\d+_N /).and.include(`schema ${schema} is never touched`);
      expect(report.cases.every((c) => SUBSET.test(c.fullTitle))).to.equal(true);
      expect(await scratchSchemas()).to.deep.equal(schemasBefore);
      expect(schemasBefore).to.deep.equal([]);
      expect(await fingerprintOf(raw())).to.equal(fingerprint);
    });

    it('the command, with the config file: the summary line, exit 0, nothing left', async () => {
      const configFile = writeConfig(dir, `backend: postgres\npostgres:\n  url: ${JSON.stringify(testDatabaseURL())}\n  schema: ${schema}\n`);
      const run = await runCliReported(['--config', configFile, 'conformance', '--grep', 'Table: published']);
      expect(run.code, run.err).to.equal(0);
      expect(run.out).to.match(SUMMARY).and.match(/^[1-9]\d* passed, 0 failed, 0 skipped$/);
      expect(run.err).to.match(/scratch schemas ms_conformance_/);
      expect(await scratchSchemas()).to.deep.equal([]);
      expect(await fingerprintOf(raw())).to.equal(fingerprint);
    });

    it('a role that may not create schemas is refused before any case, naming the right it needs (and no secret)', async function () {
      const role = `ms_conf_nocreate_${process.pid}`;
      const password = 'Sup3r-secret-pw';
      try {
        await adminPool().query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
      } catch {
        this.skip(); // the server's role may not create roles: nothing to check here
      }
      try {
        const url = new URL(testDatabaseURL());
        url.username = role;
        url.password = password;
        const err = await runConformance(built({ backend: 'postgres', postgres: { url: url.toString(), schema } }), { grep: 'Store dump' })
          .then(() => undefined, (e: unknown) => e);
        expect(err).to.be.instanceOf(ConfigError);
        expect((err as Error).message).to.match(/may not create schemas in database \w+/).and.match(/GRANT CREATE ON DATABASE/);
        expect((err as Error).message).to.not.include(password);
        expect(await scratchSchemas()).to.deep.equal([]);
      } finally {
        await adminPool().query(`DROP ROLE IF EXISTS ${role}`);
      }
    });
  });

  describe('on Cosmos DB (the emulator)', () => {
    let emulator: CosmosEmulator;
    let fingerprint: string;
    let dir: string;
    const container = `deployment-${process.pid}`;
    const raw = () => emulatorConfig(emulator, 'conformance-command', container, 'hs-tenant');
    /** Every document of the container, by partition key. */
    const partitionKeys = async () => {
      const client = new CosmosClient({
        endpoint: emulator.endpoint, key: Buffer.from('emulator-key').toString('base64'),
        agent: new https.Agent({ rejectUnauthorized: false }),
      });
      try {
        const { resources } = await client.database('conformance-command').container(container).items
          .query<{ pk: string }>('SELECT c.pk FROM c').fetchAll();
        return resources.map((d) => d.pk);
      } finally {
        client.dispose();
      }
    };
    before(async () => {
      emulator = await sharedEmulator();
      fingerprint = await fingerprintOf(raw(), fillEveryTable);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-conformance-cosmos-'));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('runConformance passes in a scratch tenant per case, its documents deleted after it; the configured tenant is untouched', async () => {
      const before = (await partitionKeys()).sort();
      expect(before.length).to.be.greaterThan(10);
      expect(before.every((pk) => pk.startsWith('hs-tenant|'))).to.equal(true);
      const report = await runConformance(built(raw()), { grep: SUBSET });
      expectAllPassed(report);
      expect(report.passed).to.be.greaterThan(10);
      expect(report.namespace).to.match(/scratch tenants hs-tenant-cf-[0-9a-f]{6}-N /).and.include('tenant hs-tenant is never read or written');
      // Only the deployment's documents remain: none of any scratch tenant.
      expect((await partitionKeys()).sort()).to.deep.equal(before);
      expect(await fingerprintOf(raw())).to.equal(fingerprint);
    });

    it('the command, with the config file: the summary line, exit 0, nothing left; a long tenant name still makes valid scratch tenants', async () => {
      const before = (await partitionKeys()).sort();
      const c = raw().cosmosdb as Record<string, unknown>;
      const yaml = (tenant: string) => `backend: cosmosdb\ncosmosdb:\n${Object.entries({ ...c, tenant }).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`).join('\n')}\n`;
      const run = await runCliReported(['--config', writeConfig(dir, yaml('hs-tenant')), 'conformance', '--grep', 'Table: published']);
      expect(run.code, run.err).to.equal(0);
      expect(run.out).to.match(/^[1-9]\d* passed, 0 failed, 0 skipped$/);
      expect(run.err).to.not.include(String(c.key));
      // A configured tenant of the full 64 characters: the scratch names are cut to stay within 64.
      const long = `t${'x'.repeat(63)}`;
      const longRun = await runCliReported(['--config', writeConfig(dir, yaml(long)), 'conformance', '--grep', 'Table: published', '--json']);
      expect(longRun.code, longRun.err).to.equal(0);
      expect((JSON.parse(longRun.out) as ConformanceReport).failed).to.equal(0);
      expect((await partitionKeys()).sort()).to.deep.equal(before);
      expect(await fingerprintOf(raw())).to.equal(fingerprint);
    });

    it('opting out: a case the driver opts out of counts as skipped, with its reason', async () => {
      const report = await runConformance(built(raw()), { grep: 'a failing updater writes nothing' });
      expect(report.cases).to.have.length(1);
      expect(report).to.include({ passed: 0, failed: 0, skipped: 1 });
      expect(report.cases[0]!.state).to.equal('pending');
      expect(report.cases[0]!.reason).to.match(/no transaction across documents/);
    });

    it('a container that does not exist is refused, and is not created (whatever create_if_missing says)', async () => {
      const cfg = emulatorConfig(emulator, 'conformance-command', `absent-${process.pid}`, 'hs-tenant');
      const err = await runConformance(built(cfg), { grep: 'Store dump' }).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as Error).message).to.match(/does not exist.*creates no database or container/);
      const client = new CosmosClient({ endpoint: emulator.endpoint, key: 'a2V5', agent: new https.Agent({ rejectUnauthorized: false }) });
      try {
        const status = await client.database('conformance-command').container(`absent-${process.pid}`).read()
          .then(() => 200, (e: { code?: number }) => e.code);
        expect(status).to.equal(404);
      } finally {
        client.dispose();
      }
    });
  });

  describe('refusals', () => {
    it('a backend of another package: a ConfigError saying to run the exported suite from its repository', async () => {
      const err = await runConformance(built({ backend: 'mydriver' }, ['mydriver'])).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as Error).message).to.match(/backend "mydriver" is a driver of another package/).and.match(/Writing a driver/);
    });

    it('a deployment that cannot be reached: exit 3, one line naming it, and never its password (with --debug too)', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-conformance-down-'));
      const password = 'S3cret-conformance-pw';
      try {
        // Port 1: nothing listens there, so the connection is refused at once.
        const configFile = writeConfig(dir, `backend: postgres\npostgres:\n  url: "postgres://matrix:${password}@127.0.0.1:1/matrix"\n`);
        for (const extra of [[], ['--debug'], ['--json']]) {
          const run = await runCliReported(['--config', configFile, 'conformance', '--grep', 'Store dump', ...extra]);
          expect(run.code, run.err).to.equal(3);
          expect(run.err).to.match(/^matrix-storage: cannot reach PostgreSQL at 127\.0\.0\.1:1\/matrix.*connection refused/);
          expect(run.out + run.err).to.not.include(password);
          expect(run.out).to.equal('');
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('an unreadable config file or an unknown backend: exit 2 with one clear line, nothing on stdout', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-conformance-bad-'));
      try {
        const missing = await runCliReported(['--config', path.join(dir, 'absent.yaml'), 'conformance']);
        expect(missing.code).to.equal(2);
        expect(missing.out).to.equal('');
        expect(missing.err).to.match(/^matrix-storage: cannot read config file .*absent\.yaml: ENOENT/);
        const unknown = await runCliReported(['--config', writeConfig(dir, 'backend: nosuchdriver\n'), 'conformance']);
        expect(unknown.code).to.equal(2);
        expect(unknown.err).to.match(/"backend": "nosuchdriver" is not a driver/);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

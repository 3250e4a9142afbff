/**
 * `npm run bench [-- --quick] [--members N] [--events N] [--seed N] [--only a,b]`: runs the benchmarks, prints
 * their tables (stdout; progress goes to stderr) and writes bench/results.json with every number, the machine, the
 * date and the command line. Every figure is a ratio against a floor or a peer scheme measured in the same run on
 * the same engine. PostgreSQL is a throwaway cluster this run starts (fsync and synchronous_commit on) and stops.
 */
import 'reflect-metadata';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { validateGenerateOptions } from '../src/io/generate-options.js';
import { startCluster, type Cluster } from '../test/support/pg-cluster.js';
import { concurrencyBench } from './concurrency.js';
import { copyBench } from './copy.js';
import { importMemoryBench } from './import-memory.js';
import { cosmosBench } from './cosmos.js';
import { ingestBench } from './ingest.js';
import { keyServerBench } from './key-server.js';
import { roomScopeBench } from './room-scope.js';
import { stateReadsBench } from './state-reads.js';
import { stateBytesBench } from './state-bytes.js';
import { stateStorageBench } from './state-storage.js';
import { stateResolutionBench } from './state-resolution.js';
import { formatCell, machine, renderSection, scratchDir, type BenchOptions, type Section } from './support.js';

const BENCHES: Record<string, { needsPostgres: boolean; run: (o: BenchOptions) => Promise<Section> }> = {
  'state-storage': { needsPostgres: false, run: stateStorageBench },
  'state-reads': { needsPostgres: true, run: stateReadsBench },
  ingest: { needsPostgres: true, run: ingestBench },
  concurrency: { needsPostgres: true, run: concurrencyBench },
  'key-server': { needsPostgres: true, run: keyServerBench },
  cosmos: { needsPostgres: false, run: cosmosBench },
  copy: { needsPostgres: true, run: copyBench },
  'import-memory': { needsPostgres: false, run: importMemoryBench },
  'state-bytes': { needsPostgres: true, run: stateBytesBench },
  'state-resolution': { needsPostgres: true, run: stateResolutionBench },
  'room-scope': { needsPostgres: false, run: roomScopeBench },
};

/** The most members --members takes (the generator allows more; the full-snapshot peer would not fit in time). */
const MAX_BENCH_MEMBERS = 100_000;

function parseOptions(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      members: { type: 'string' },
      events: { type: 'string' },
      seed: { type: 'string' },
      only: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(`npm run bench -- [--quick] [--members N] [--events N] [--seed N] [--only ${Object.keys(BENCHES).join(',')}]`);
    process.exit(0);
  }
  const int = (name: string, v: string | undefined, fallback: number) => {
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v)) throw new Error(`--${name} takes a whole number, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  const quick = values.quick!;
  const members = int('members', values.members, quick ? 2_000 : 20_000);
  if (members > MAX_BENCH_MEMBERS) throw new Error(`--members is at most ${MAX_BENCH_MEMBERS.toLocaleString('en-US')}, got ${members}`);
  const events = int('events', values.events, members * 10);
  const seed = int('seed', values.seed, 1);
  validateGenerateOptions({ members, events, seed });
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : Object.keys(BENCHES);
  for (const name of only) if (!BENCHES[name]) throw new Error(`--only: no benchmark "${name}"; there are ${Object.keys(BENCHES).join(', ')}`);
  return { quick, members, events, seed, only };
}

async function postgresInfo(url: string) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ version: string; fsync: string; synchronous_commit: string }>(
      "SELECT current_setting('server_version') AS version, current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS synchronous_commit");
    return r.rows[0]!;
  } finally {
    await c.end();
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const args = parseOptions(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const dir = scratchDir();
  let cluster: Cluster | undefined;
  const cleanUp = async () => {
    await cluster?.stop();
    cluster = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => void cleanUp().finally(() => process.exit(130)));
  const sections: Section[] = [];
  let postgres: Record<string, string> | undefined;
  try {
    if (args.only.some((name) => BENCHES[name]!.needsPostgres)) {
      log('starting a throwaway PostgreSQL cluster (fsync on, synchronous_commit on)');
      cluster = await startCluster({ durable: true, prefix: 'pgbench' });
      postgres = { source: cluster.source, ...(await postgresInfo(cluster.url)) };
      log(`  PostgreSQL ${postgres.version}, fsync ${postgres.fsync}, synchronous_commit ${postgres.synchronous_commit}, ${cluster.source}`);
    }
    const o: BenchOptions = { ...args, dir, log, postgresURL: cluster?.url };
    for (const name of args.only) {
      const t0 = Date.now();
      log(`${name}...`);
      const section = await BENCHES[name]!.run(o);
      sections.push(section);
      log(`${name}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
  } finally {
    await cleanUp();
  }
  const wallSeconds = (Date.now() - started) / 1000;
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  console.log(`# matrix-storage benchmarks\n\n\`${command}\`, ${new Date().toISOString()}, ${machine().cpus} cores, Node ${process.version}, ` +
    `wall time ${wallSeconds.toFixed(0)} s. Ratios are ours ÷ the floor or peer named, measured in the same run on the same engine.\n`);
  for (const s of sections) console.log(`${renderSection(s)}\n`);
  const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results.json');
  const run = { date: new Date().toISOString(), command, options: args };
  const fresh = sections.map((s) => ({ id: s.id, title: s.title, notes: s.notes, columns: s.columns, rows: s.rows.map((r) => r.map(formatCell)), data: s.data, run }));
  // A run of some benchmarks (--only) replaces their sections and keeps the others' from earlier runs, each section
  // saying which run it comes from.
  const earlier = fs.existsSync(out) ? (JSON.parse(fs.readFileSync(out, 'utf8')) as { sections?: { id: string }[] }).sections ?? [] : [];
  const kept = earlier.filter((e) => !fresh.some((f) => f.id === e.id));
  const results = {
    date: run.date, command, argv: process.argv.slice(2), options: args, wallSeconds, machine: machine(), postgres,
    sections: [...kept, ...fresh],
  };
  fs.writeFileSync(`${out}.tmp`, JSON.stringify(results, null, 2) + '\n');
  fs.renameSync(`${out}.tmp`, out);
  log(`wrote ${path.relative(process.cwd(), out)}`);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exit(1);
});

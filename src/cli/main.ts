/**
 * The `matrix-storage` command. Every command reads matrix-storage.yaml (or --config FILE) with environment
 * overrides, so the same command works against SQLite, PostgreSQL and Cosmos DB.
 */
import 'reflect-metadata';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createStorage, loadStorageConfig, type Storage } from '../index.js';
import type { StorageConfig } from '../config/schema.js';
import { redactUrl, scrubSecrets } from '../config/redact.js';
import { ConfigError, StorageError } from '../types/errors.js';
import { generateRoom, validateGenerateOptions } from './generate.js';
import { formatImportSummary, importFile } from './commands/import.js';
import { roomState } from './commands/state.js';
import { roomAtAGlance } from './commands/glance.js';
import { userKeys } from './commands/keys.js';
import { CliError } from './output.js';

const USAGE = `matrix-storage: the storage layer of a Matrix homeserver

Usage: matrix-storage [--config FILE] COMMAND [options]

Commands:
  migrate                      create or upgrade the schema of the configured backend
  generate [--members N] [--events N] [--seed N] [--out FILE]
                               write a synthetic room as JSON lines (default: 2000 members, 20000 events, seed 1, stdout)
  import FILE                  store a room's events in file order, with state, memberships and latest events
  state ROOM_ID [--at EVENT_ID] [--before]
                               print a room's state as JSON: current, right after EVENT_ID, or right before it
  keys USER_ID                 print a user's devices (ID, display name, stream ID), cross-signing keys and
                               key backup summary (latest version, algorithm, key count, etag, deleted) as JSON
  config                       print the configuration in effect (secrets hidden)
  demo [--members N] [--events N]
                               what \`npm start\` runs: generate a sample room if there is none, import it, summarise

Options:
  --config FILE                the config file (default: ./matrix-storage.yaml if present, else built-in defaults)
  -h, --help                   this text
`;

const SAMPLE_ROOM = './data/sample-room.jsonl';

function int(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new CliError(`--${name} takes a whole number, got ${JSON.stringify(value)}`, 2);
  return Number(value);
}

async function withStorage<T>(config: StorageConfig, fn: (s: Storage) => Promise<T>): Promise<T> {
  const storage = await createStorage(config);
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

/** Writes a generated room to a file (or stdout), a line at a time. */
async function writeRoom(out: NodeJS.WritableStream, lines: Iterable<string>): Promise<number> {
  let n = 0;
  for (const line of lines) {
    n++;
    if (!out.write(`${line}\n`)) await new Promise((resolve) => out.once('drain', resolve));
  }
  return n;
}

async function generateToFile(file: string, members: number, events: number, seed: number): Promise<number> {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.partial`;
  const out = fs.createWriteStream(tmp);
  const n = await writeRoom(out, generateRoom(validateGenerateOptions({ members, events, seed })));
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  fs.renameSync(tmp, file);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      members: { type: 'string' },
      events: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      at: { type: 'string' },
      before: { type: 'boolean' },
    },
  });
  const [command, ...args] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  const load = () => loadStorageConfig(values.config !== undefined ? { file: values.config } : {});

  switch (command) {
    case 'migrate': {
      const { config, source } = load();
      // Migrating is this command's job: a store configured not to migrate on open (postgres.migrate_on_open: false)
      // would otherwise refuse to open before it could be migrated.
      const migrating = { ...config, postgres: { ...config.postgres, migrateOnOpen: true } };
      const report = await withStorage(migrating, (s) => s.migrate());
      console.log(`${config.backend} (config: ${source}): schema at version ${report.version}; ` +
        (report.applied.length ? `applied ${report.applied.join(', ')}` : 'already up to date'));
      return 0;
    }
    case 'generate': {
      const members = int('members', values.members, 2000);
      const events = int('events', values.events, 20_000);
      const seed = int('seed', values.seed, 1);
      if (values.out !== undefined) {
        const n = await generateToFile(values.out, members, events, seed);
        console.error(`wrote ${n} events to ${values.out}`);
      } else {
        await writeRoom(process.stdout, generateRoom(validateGenerateOptions({ members, events, seed })));
      }
      return 0;
    }
    case 'import': {
      const file = args[0];
      if (file === undefined) throw new CliError('import: which file? Usage: matrix-storage import FILE', 2);
      const { config } = load();
      await withStorage(config, async (s) => {
        console.error(`importing ${file} into ${describeBackend(config)}`);
        const summary = await importFile(s, file, (l) => console.error(l));
        console.log(formatImportSummary(summary, config.backend));
      });
      return 0;
    }
    case 'state': {
      const roomID = args[0];
      if (roomID === undefined) throw new CliError('state: which room? Usage: matrix-storage state ROOM_ID [--at EVENT_ID] [--before]', 2);
      if (values.before && values.at === undefined) throw new CliError('state: --before needs --at EVENT_ID', 2);
      const { config } = load();
      const state = await withStorage(config, (s) => roomState(s, roomID, { ...(values.at !== undefined ? { at: values.at } : {}), before: values.before ?? false }));
      console.log(JSON.stringify(state, null, 2));
      return 0;
    }
    case 'keys': {
      const userID = args[0];
      if (userID === undefined) throw new CliError('keys: which user? Usage: matrix-storage keys USER_ID', 2);
      const { config } = load();
      const summary = await withStorage(config, (s) => userKeys(s, userID));
      console.log(JSON.stringify(summary, null, 2));
      return 0;
    }
    case 'config': {
      const { config, source } = load();
      const hidden = (v: string) => (v ? '***' : '');
      const shown = {
        ...config,
        postgres: { ...config.postgres, url: config.postgres.url ? redactUrl(config.postgres.url) : '' },
        cosmosdb: { ...config.cosmosdb, key: hidden(config.cosmosdb.key), connectionString: hidden(config.cosmosdb.connectionString) },
      };
      console.log(`# from ${source}\n${JSON.stringify(shown, null, 2)}`);
      return 0;
    }
    case 'demo': {
      const { config } = load();
      const members = int('members', values.members, 2000);
      const events = int('events', values.events, 20_000);
      if (!fs.existsSync(SAMPLE_ROOM)) {
        console.log(`generating a sample room (${members} members, ${events} events) in ${SAMPLE_ROOM}`);
        await generateToFile(SAMPLE_ROOM, members, events, 1);
      }
      await withStorage(config, async (s) => {
        console.log(`importing ${SAMPLE_ROOM} into ${describeBackend(config)}`);
        const summary = await importFile(s, SAMPLE_ROOM, (l) => console.error(l));
        console.log(formatImportSummary(summary, config.backend));
        for (const roomID of summary.roomIDs) console.log(await roomAtAGlance(s, roomID));
      });
      return 0;
    }
    default:
      throw new CliError(`unknown command ${JSON.stringify(command)}; see matrix-storage --help`, 2);
  }
}

function describeBackend(config: StorageConfig): string {
  if (config.backend === 'sqlite') return `sqlite ${config.sqlite.path}`;
  if (config.backend === 'postgres') return `postgres ${redactUrl(config.postgres.url)} (schema ${config.postgres.schema})`;
  return config.backend;
}

/** Prints what went wrong without a stack for expected failures, and never a secret. */
function report(e: unknown): number {
  const secrets = [process.env.DATABASE_URL ? safePassword(process.env.DATABASE_URL) : undefined, process.env.COSMOS_KEY,
    process.env.COSMOS_CONNECTION_STRING];
  const say = (m: string) => console.error(`matrix-storage: ${scrubSecrets(m, secrets)}`);
  if (e instanceof CliError) { say(e.message); return e.exitCode; }
  if (e instanceof ConfigError) { say(e.message); return 2; }
  if (e instanceof StorageError) { say(`${e.message} (${e.code})`); return 1; }
  if (e instanceof TypeError && (e as NodeJS.ErrnoException).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') { say(e.message); return 2; }
  say((e as Error)?.stack ?? String(e));
  return 1;
}

function safePassword(url: string): string | undefined {
  try { return decodeURIComponent(new URL(url).password) || undefined; } catch { return undefined; }
}

/** Runs the CLI and sets the process exit code (0 ok, 1 failure, 2 usage or configuration error). */
export async function runCli(argv: string[]): Promise<void> {
  // `matrix-storage state ... | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  try {
    process.exitCode = await main(argv);
  } catch (e) {
    process.exitCode = report(e);
  }
}

// `tsx src/cli/main.ts ...` (the npm scripts) runs it; importing the module (tests, bin/) does not.
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.dirname, 'main.ts')) await runCli(process.argv.slice(2));

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
import { redact, redactSettings, redactUrl } from '../config/redact.js';
import { ConfigError, InvalidInputError, StorageError, StoreUnavailableError } from '../types/errors.js';
import { generateRoom, validateGenerateOptions } from './generate.js';
import { checkEventID, checkRoomID, checkUserID, preview } from '../types/input.js';
import { roomVersionRules } from '../matrix/room-versions.js';
import { formatImportSummary } from './commands/import.js';
import { eventIDsOfFile, ImportStoppedError, importPDUFile, type ImportSummary } from '../io/import.js';
import { fmtInt } from './output.js';
import { roomState } from './commands/state.js';
import { roomAtAGlance } from './commands/glance.js';
import { userKeys } from './commands/keys.js';
import { CliError, EXIT, processIO, type CliIO } from './output.js';

const USAGE = `matrix-storage: the storage layer of a Matrix homeserver

Usage: matrix-storage [--config FILE] COMMAND [options]

Commands:
  migrate                      create or upgrade the schema of the configured backend
  generate [--members N] [--events N] [--seed N] [--out FILE]
                               write a synthetic room as JSON lines (default: 2000 members, 20000 events, seed 1, stdout)
  import FILE [--room-version V]
                               store a file of federation PDUs (JSON lines, a JSON array, a transaction body or
                               JSON objects one after another) in file order, with state, memberships and latest
                               events; --room-version for rooms whose create event is neither stored nor in the file
  event-id FILE [--room-version V]
                               print the computed event ID of each PDU of the file, one a line
  state ROOM_ID [--at EVENT_ID] [--before]
                               print a room's state as JSON: current, right after EVENT_ID, or right before it
  keys USER_ID                 print a user's devices (ID, display name, stream ID), cross-signing keys and
                               key backup summary (latest version, algorithm, key count, etag, deleted) as JSON
  config                       print the configuration in effect (secrets hidden)
  demo [--members N] [--events N]
                               what \`npm start\` runs: generate a sample room if there is none, import it, summarise

Options:
  --config FILE                the config file (default: ./matrix-storage.yaml if present, else built-in defaults)
  --debug                      on failure, also print the error's stack (secrets hidden)
  -h, --help                   this text

Exit codes: 0 success, 1 the operation failed, 2 usage or configuration error, 3 the store cannot be reached or used.
`;

/** Named for the PDU format: a sample room written by an older build (made-up event IDs) is not reused. */
const SAMPLE_ROOM = './data/sample-room-pdus.jsonl';

function int(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new CliError(`--${name} takes a whole number, got ${preview(value)}`, EXIT.usage);
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

function parse(argv: string[]) {
  try {
    return parseArgs({
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
      debug: { type: 'boolean' },
      'room-version': { type: 'string' },
    },
    });
  } catch (e) {
    // Unknown options, a missing option value, a value that looks like an option (--members -5): usage errors.
    if (typeof (e as NodeJS.ErrnoException).code === 'string' && (e as NodeJS.ErrnoException).code!.startsWith('ERR_PARSE_ARGS_')) {
      throw new CliError(`${(e as Error).message}\nUsage: matrix-storage [--config FILE] COMMAND [options]; see matrix-storage --help`, EXIT.usage);
    }
    throw e;
  }
}

/**
 * Runs one command, writing to `io`; returns the exit code, or throws what went wrong (runCli reports it). The
 * command's output goes to io.out, progress and messages to io.err.
 */
export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  const { values, positionals } = parse(argv);
  const [command, ...args] = positionals;
  if (values.help || command === undefined || command === 'help') {
    io.out(USAGE.trimEnd());
    return command === undefined && !values.help ? EXIT.usage : EXIT.ok;
  }
  const load = () => loadStorageConfig(values.config !== undefined ? { file: values.config } : {});

  switch (command) {
    case 'migrate': {
      const { config, source } = load();
      // Migrating is this command's job: a store configured not to migrate on open (postgres.migrate_on_open: false)
      // would otherwise refuse to open before it could be migrated.
      const migrating = { ...config, postgres: { ...config.postgres, migrateOnOpen: true } };
      const report = await withStorage(migrating, (s) => s.migrate());
      io.out(`${config.backend} (config: ${source}): schema at version ${report.version}; ` +
        (report.applied.length ? `applied ${report.applied.join(', ')}` : 'already up to date'));
      return 0;
    }
    case 'generate': {
      const members = int('members', values.members, 2000);
      const events = int('events', values.events, 20_000);
      const seed = int('seed', values.seed, 1);
      if (values.out !== undefined) {
        const n = await generateToFile(values.out, members, events, seed);
        io.err(`wrote ${n} events to ${values.out}`);
      } else {
        await writeRoom(process.stdout, generateRoom(validateGenerateOptions({ members, events, seed })));
      }
      return 0;
    }
    case 'import': {
      const file = args[0];
      if (file === undefined) throw new CliError('import: which file? Usage: matrix-storage import FILE [--room-version V]', EXIT.usage);
      const roomVersion = values['room-version'];
      if (roomVersion !== undefined) checkArgument('import', () => roomVersionRules(roomVersion));
      const { config } = load();
      await withStorage(config, async (s) => {
        io.err(`importing ${file} into ${describeBackend(config)}`);
        const summary = await runImport(s, file, roomVersion, io);
        io.out(formatImportSummary(summary, config.backend));
      });
      return 0;
    }
    case 'event-id': {
      const file = args[0];
      if (file === undefined) throw new CliError('event-id: which file? Usage: matrix-storage event-id FILE [--room-version V]', EXIT.usage);
      const roomVersion = values['room-version'];
      if (roomVersion !== undefined) checkArgument('event-id', () => roomVersionRules(roomVersion));
      try {
        for await (const { eventID } of eventIDsOfFile(file, roomVersion !== undefined ? { roomVersion } : {})) io.out(eventID);
      } catch (e) {
        if (e instanceof ImportStoppedError) throw new CliError(`event-id: ${e.message}`, EXIT.failed);
        if (e instanceof InvalidInputError) throw new CliError(`event-id: ${e.message}`, EXIT.failed);
        throw e;
      }
      return 0;
    }
    case 'state': {
      const roomID = args[0];
      if (roomID === undefined) throw new CliError('state: which room? Usage: matrix-storage state ROOM_ID [--at EVENT_ID] [--before]', EXIT.usage);
      if (values.before && values.at === undefined) throw new CliError('state: --before needs --at EVENT_ID', EXIT.usage);
      checkArgument('state', () => { checkRoomID('ROOM_ID', roomID); if (values.at !== undefined) checkEventID('--at EVENT_ID', values.at); });
      const { config } = load();
      const state = await withStorage(config, (s) => roomState(s, roomID, { ...(values.at !== undefined ? { at: values.at } : {}), before: values.before ?? false }));
      io.out(JSON.stringify(state, null, 2));
      return 0;
    }
    case 'keys': {
      const userID = args[0];
      if (userID === undefined) throw new CliError('keys: which user? Usage: matrix-storage keys USER_ID', EXIT.usage);
      checkArgument('keys', () => checkUserID('USER_ID', userID));
      const { config } = load();
      const summary = await withStorage(config, (s) => userKeys(s, userID));
      io.out(JSON.stringify(summary, null, 2));
      return 0;
    }
    case 'config': {
      const { config, source } = load();
      // Secret settings hidden by name, every other string by the secrets rule (a URL's password), drivers' own
      // sections (extra) included.
      io.out(`# from ${redact(source)}\n${redact(JSON.stringify(redactSettings(config), null, 2))}`);
      return 0;
    }
    case 'demo': {
      const { config } = load();
      const members = int('members', values.members, 2000);
      const events = int('events', values.events, 20_000);
      if (!fs.existsSync(SAMPLE_ROOM)) {
        io.out(`generating a sample room (${members} members, ${events} events) in ${SAMPLE_ROOM}`);
        await generateToFile(SAMPLE_ROOM, members, events, 1);
      }
      await withStorage(config, async (s) => {
        io.out(`importing ${SAMPLE_ROOM} into ${describeBackend(config)}`);
        const summary = await runImport(s, SAMPLE_ROOM, undefined, io);
        io.out(formatImportSummary(summary, config.backend));
        for (const roomID of summary.roomIDs) io.out(await roomAtAGlance(s, roomID));
      });
      return 0;
    }
    default:
      throw new CliError(`unknown command ${preview(command)}; see matrix-storage --help`, EXIT.usage);
  }
}

function describeBackend(config: StorageConfig): string {
  if (config.backend === 'sqlite') return `sqlite ${config.sqlite.path}`;
  if (config.backend === 'postgres') return `postgres ${redactUrl(config.postgres.url)} (schema ${config.postgres.schema})`;
  return config.backend;
}

/**
 * Imports a file, with a progress line every second on stderr. A PDU that cannot be stored stops it: exit 1,
 * naming the PDU; everything before it is stored, nothing of it.
 */
async function runImport(s: Storage, file: string, roomVersion: string | undefined, io: CliIO): Promise<ImportSummary> {
  let last = Date.now();
  const started = last;
  try {
    return await importPDUFile(s, file, {
      ...(roomVersion !== undefined ? { roomVersion } : {}),
      onProgress: (p) => {
        const now = Date.now();
        if (now - last < 1000) return;
        last = now;
        const pct = p.totalBytes > 0 ? ` (${Math.floor((100 * p.bytesRead) / p.totalBytes)}% of the file)` : '';
        io.err(`  ${fmtInt(p.events)} events${pct}, ${fmtInt((p.events * 1000) / (now - started))} events/s`);
      },
    });
  } catch (e) {
    if (e instanceof ImportStoppedError) {
      throw new CliError(`import: ${e.message}. Everything before it is stored; nothing of it is.`, EXIT.failed);
    }
    if (e instanceof InvalidInputError) throw new CliError(`import: ${e.message}`, EXIT.failed);
    throw e;
  }
}

/** An argument the user typed that the store would refuse: a usage error, shown short. */
function checkArgument(command: string, check: () => void): void {
  try {
    check();
  } catch (e) {
    if (e instanceof InvalidInputError) throw new CliError(`${command}: ${e.message}`, EXIT.usage);
    throw e;
  }
}

/**
 * What went wrong, in one line and never with a secret (every line passes the secrets rule): the message of an
 * expected failure, the stack only with --debug. Returns the exit code.
 */
export function report(e: unknown, io: CliIO, debug = false): number {
  const say = (m: string) => io.err(`matrix-storage: ${redact(m)}`);
  const code = e instanceof CliError ? e.exitCode
    : e instanceof ConfigError ? EXIT.usage
      : e instanceof StoreUnavailableError ? EXIT.unavailable
        : EXIT.failed;
  if (e instanceof CliError || e instanceof ConfigError) say(e.message);
  else if (e instanceof StorageError) say(`${e.message} (${e.code})`);
  else say(`unexpected error: ${(e as Error)?.message ?? String(e)}${debug ? '' : ' (run with --debug for details)'}`);
  if (debug && e instanceof Error && e.stack) say(e.stack);
  return code;
}

/** Runs the CLI and returns its exit code (0 ok, 1 failure, 2 usage or configuration error, 3 store unavailable). */
export async function runCli(argv: string[], io: CliIO = processIO): Promise<number> {
  try {
    return await main(argv, io);
  } catch (e) {
    return report(e, io, argv.includes('--debug'));
  }
}

/** The process entry point: runCli with the exit code set, and a closed pipe (`... | head`) not an error. */
export async function runProcess(argv: string[]): Promise<void> {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  process.exitCode = await runCli(argv);
}

// `tsx src/cli/main.ts ...` (the npm scripts) runs it; importing the module (tests, bin/) does not.
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.dirname, 'main.ts')) void runProcess(process.argv.slice(2));

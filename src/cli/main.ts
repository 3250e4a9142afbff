/**
 * The `matrix-storage` command: a thin layer over the library (each command's work is a function callers can use
 * from code). Every command reads matrix-storage.yaml (or --config FILE) with environment overrides, so the same
 * command works against SQLite, PostgreSQL and Cosmos DB. Arguments are parsed by commander (a well-kept parser:
 * per-command help, unknown options and extra arguments refused, suggestions for typos).
 */
import 'reflect-metadata';
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { createStorage, detectPDUFileFormat, loadStorageConfig, type Storage } from '../index.js';
import { configAsFile, type StorageConfig } from '../config/schema.js';
import type { OpenOptions } from '../di/driver.js';
import { redact, redactSettings, redactUrl } from '../config/redact.js';
import { ConfigError, InvalidInputError, NotFoundError, RoomBeingWrittenError, SchemaNotCurrentError, StorageError, StoreUnavailableError } from '../types/errors.js';
import { generateRoom } from '../io/generate-room.js';
import { validateGenerateOptions } from '../io/generate-options.js';
import { checkEventID, checkRoomID, checkUserID, preview } from '../types/input.js';
import { formatImportSummary } from './commands/import.js';
import { formatHealth, formatMigrationStatus, storeHealth } from './commands/migrate.js';
import { DEFAULT_IMPORT_BATCH, eventIDsOfFile, ImportStoppedError } from '../io/import.js';
import { MAX_APPEND_BATCH } from '../storage/shared/event-appender.js';
import { roomState } from './commands/state.js';
import { roomAtAGlance } from './commands/glance.js';
import { userKeys } from './commands/keys.js';
import { CliError, EXIT, fmtBytes, fmtInt, processIO, type CliIO } from './output.js';
import { batchOption, checkArgument, cutOption, daysOption, pageSizeOption, roomVersionOption, shareOption, sortOption, wholeNumber, withoutOption } from './options.js';
import type { DumpTableName } from '../storage/tables/dump.js';
import { progress } from './progress.js';
import { DEMO_FORK_SHARE, generateToFile, runImport, sampleRoom, writeRoom } from './room-files.js';
import { resolveEndpoint, describeStore, type StoreEndpoint } from '../io/endpoints.js';
import { copyStore, CopyMismatchError, CopyRefusedError } from '../io/copy.js';
import { verifyCopy } from '../io/verify.js';
import { checkStore } from '../io/check.js';
import { formatCheckReport, formatCopySummary, formatVerifyReport } from './commands/copy.js';
import { formatCaseResult, formatConformanceProblems, formatConformanceReport, runConformance } from './commands/conformance.js';
import { ROOM_SORTS, roomDetail, storeSizes, type RoomSort } from '../io/room-sizes.js';
import { purgeHistory, purgeRoom, PurgeRefusedError, type HistoryCut, type PurgeOptions, type PurgeReport } from '../io/purge.js';
import { confirmDeletion, formatPurgeReport, formatRoomDetail, formatRoomSizes } from './commands/rooms.js';
import { formatSendToDevicePurge } from './commands/send-to-device.js';
import { purgeSendToDevice } from '../io/send-to-device-retention.js';

/** What Ctrl-C prints: the running command may name what the interruption left and how to go on. */
let interruptHint = 'interrupted; committed work is kept, the rest was not done.';

/** Options every command takes (given before or after the command's name). */
interface Common {
  config?: string;
  debug?: boolean;
  quiet?: boolean;
}

/** This package's version, from its package.json (found from here whether this runs compiled or from source). */
export function packageVersion(): string {
  for (let dir = import.meta.dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'matrix-storage') return pkg.version ?? '0.0.0';
    }
    if (path.dirname(dir) === dir) return '0.0.0';
  }
}

async function withStorage<T>(config: StorageConfig, fn: (s: Storage) => Promise<T>, options: OpenOptions = {}): Promise<T> {
  const storage = await createStorage(config, options);
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

/**
 * How the commands that read or purge open a store: as it is, never creating or upgrading it (a mistyped path is
 * refused with the fix, not shown as an empty store).
 */
const EXISTING: OpenOptions = { migrate: false };

/** A room the store does not hold, as the user's mistake (exit 1, one line), not as an unexpected error. */
const notInStore = (command: string) => (e: unknown): never => {
  if (e instanceof NotFoundError) throw new CliError(`${command}: ${e.message}`);
  throw e;
};

/**
 * The config a background command (import, copy, purge, check) opens the store with: on Cosmos DB its requests
 * marked low priority (the account's priority-based execution then throttles them before a homeserver's own),
 * unless `cosmosdb.priority_level` says otherwise.
 */
const inBackground = (config: StorageConfig): StorageConfig => (config.cosmosdb.priorityLevel === 'default'
  ? { ...config, cosmosdb: { ...config.cosmosdb, priorityLevel: 'low' } } : config);

/** Opens both sides of a copy (the source first: a source that cannot be opened creates no target), in the background. */
async function withEndpoints(from: StoreEndpoint, to: StoreEndpoint, fn: (source: Storage, target: Storage) => Promise<void>): Promise<void> {
  await withStorage(inBackground(from.config), (source) => withStorage(inBackground(to.config), (target) => fn(source, target)));
}

function describeBackend(config: StorageConfig): string {
  if (config.backend === 'sqlite') return `sqlite ${config.sqlite.path}`;
  if (config.backend === 'postgres') return `postgres ${redactUrl(config.postgres.url)} (schema ${config.postgres.schema})`;
  return config.backend;
}

const EXIT_CODES_HELP = `
Exit codes: 0 success, 1 the operation failed, 2 usage or configuration error, 3 the store cannot be reached or used,
4 migrations pending (migrate --status, health).
Configuration: matrix-storage.yaml in this directory (or --config FILE), then environment variables (README).`;

/** The command tree; each action sets the exit code through `done`. */
function buildProgram(io: CliIO, done: (code: number) => void): Command {
  const program = new Command('matrix-storage');
  const load = (o: Common) => loadStorageConfig(o.config !== undefined ? { file: o.config } : {});
  program
    .description('the storage layer of a Matrix homeserver: one API over SQLite, PostgreSQL and Azure Cosmos DB')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--config <file>', 'the config file (default: ./matrix-storage.yaml if present, else built-in defaults)')
    .option('--debug', 'on failure, also print the error\'s stack (secrets hidden)')
    .option('-q, --quiet', 'no progress output')
    .helpOption('-h, --help', 'this text')
    .addHelpText('after', EXIT_CODES_HELP)
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.replace(/\n$/, '')), writeErr: (s) => io.err(s.replace(/\n$/, '')), outputError: () => {} });

  /** A subcommand with the conventions every one follows: an example in its help, its usage line after an error. */
  const command = (name: string, description: string, example: string) => {
    const cmd = program.command(name).description(description).helpOption('-h, --help', 'this text')
      .addHelpText('after', `\nExample:\n  ${example}\n${EXIT_CODES_HELP}`);
    cmd.exitOverride((err) => { throw Object.assign(err, { usageLine: `Usage: matrix-storage ${cmd.name()} ${cmd.usage()}` }); });
    return cmd;
  };
  // commander's options are untyped; each action names the shape its options have.
  const opts = <T extends object = object>(cmd: Command) => cmd.optsWithGlobals() as Common & T;

  command('migrate', 'create or upgrade the schema of the configured backend (a progress bar per migration), or with --status ' +
    'or --dry-run say what is pending without changing anything', 'matrix-storage --config matrix-storage.yaml migrate --status')
    .option('--status', `change nothing: exit 0 when the schema is current, ${EXIT.pending} when migrations are pending (for deploy scripts)`)
    .option('--dry-run', 'change nothing: list the migrations a run would apply')
    .option('--json', 'print the report as one JSON document')
    .action(async (_o, cmd: Command) => {
      const o = opts<{ status?: boolean; dryRun?: boolean; json?: boolean }>(cmd);
      const { config, source } = load(o);
      if (o.status || o.dryRun) {
        // Opened without migrating: a store that is behind (or not created) is refused with its status, which is the answer.
        const status = await withStorage(config, (s) => s.migrationStatus(), { migrate: false })
          .catch((e: unknown) => { if (e instanceof SchemaNotCurrentError) return e.status; throw e; });
        if (o.json) io.out(JSON.stringify({ backend: config.backend, ...status }));
        else io.out(formatMigrationStatus(status, `${config.backend} (config: ${redact(source)})`, o.dryRun === true).join('\n'));
        done(o.status && status.pending.length > 0 ? EXIT.pending : EXIT.ok);
        return;
      }
      const bar = progress(io, { label: 'migrate', quiet: o.quiet === true });
      let started = false;
      // Migrating is this command's job, whatever migrate_on_open says.
      const report = await withStorage(config, (s) => s.migrate(), {
        migrate: true,
        onMigrationProgress: (p) => {
          if (!started) { bar.start(p.total, 'migrations'); started = true; }
          bar.update(p.done, `version ${p.version}: ${p.name}`);
        },
      }).finally(() => bar.stop());
      if (o.json) io.out(JSON.stringify({ backend: config.backend, ...report }));
      else {
        io.out(`${config.backend} (config: ${redact(source)}): schema at version ${report.version}; ` +
          (report.applied.length ? `applied ${report.applied.join(', ')}` : 'already up to date'));
      }
      done(EXIT.ok);
    });

  command('health', 'one round trip to the configured store: reachable, how long it took, and whether the schema is current; ' +
    `exits 0 when ready, ${EXIT.unavailable} when unreachable, ${EXIT.pending} when the schema is behind (liveness and readiness probes)`,
  'matrix-storage --config matrix-storage.yaml health --json')
    .option('--json', 'print one JSON document')
    .action(async (_o, cmd: Command) => {
      const o = opts<{ json?: boolean }>(cmd);
      const { config } = load(o);
      const health = await storeHealth(config);
      io.out(o.json ? JSON.stringify(health) : formatHealth(health));
      done(health.ok ? EXIT.ok : health.reachable ? EXIT.pending : EXIT.unavailable);
    });

  command('generate', 'write a synthetic room as JSON lines of room version 10 PDUs (stdout, or --out FILE)',
    'matrix-storage generate --members 2000 --events 20000 --seed 1 --out room.jsonl')
    .option('--members <n>', 'distinct members over the room\'s life', wholeNumber('members'), 2000)
    .option('--events <n>', 'events in all', wholeNumber('events'), 20_000)
    .option('--seed <n>', 'the same seed gives the same bytes', wholeNumber('seed'), 1)
    .option('--fork-share <share>', 'share of messages sent on a concurrent branch that the next event merges (0 to 1)', shareOption('fork-share'), 0)
    .option('--out <file>', 'write here instead of stdout')
    .action(async (_o, cmd: Command) => {
      const o = opts<{ members: number; events: number; seed: number; forkShare: number; out?: string }>(cmd);
      const options = { members: o.members, events: o.events, seed: o.seed, forkShare: o.forkShare };
      checkArgument('generate', () => validateGenerateOptions(options));
      const bar = progress(io, { label: 'generate', quiet: o.quiet === true || o.out === undefined });
      bar.start(o.events, 'events');
      try {
        if (o.out !== undefined) {
          const n = await generateToFile(o.out, options, (i) => bar.update(i));
          bar.stop();
          io.err(`wrote ${fmtInt(n)} events to ${o.out}`);
        } else {
          await writeRoom(process.stdout, generateRoom(validateGenerateOptions(options)), () => {});
        }
      } finally {
        bar.stop();
      }
      done(EXIT.ok);
    });

  command('import', 'store a file of federation PDUs (JSON lines, a JSON array, a transaction body or JSON objects one after another) ' +
    'in file order, with state, memberships and latest events', 'matrix-storage import room.jsonl --room-version 10')
    .argument('<file>', 'the file of PDUs')
    .option('--room-version <v>', 'the version of rooms whose create event is neither stored nor in the file before their events', roomVersionOption)
    .option('--batch <n>', `events per commit, 1 to ${MAX_APPEND_BATCH} (default ${DEFAULT_IMPORT_BATCH})`, batchOption)
    .option('--json', 'print the summary as one JSON document')
    .action(async (file: string, _o, cmd: Command) => {
      const o = opts<{ roomVersion?: string; batch?: number; json?: boolean }>(cmd);
      const { config } = load(o);
      // Before the store is opened (and perhaps created): a mistyped file name must leave nothing behind.
      await detectPDUFileFormat(file).catch((e: unknown) => { throw e instanceof InvalidInputError ? new CliError(`import: ${e.message}`) : e; });
      interruptHint = 'import: interrupted; every batch committed before it is stored. Fix: run the same import again to finish ' +
        '(events already stored are counted as such, not stored twice).';
      await withStorage(inBackground(config), async (s) => {
        if (!o.quiet) io.err(`importing ${file} into ${describeBackend(config)}`);
        const summary = await runImport(s, file, { roomVersion: o.roomVersion, batch: o.batch }, io, o.quiet === true);
        io.out(o.json ? JSON.stringify({ backend: config.backend, ...summary }) : formatImportSummary(summary, config.backend));
      });
      done(EXIT.ok);
    });

  command('event-id', 'print the computed event ID of each PDU of a file, one a line, without a store',
    'matrix-storage event-id room.jsonl --room-version 11')
    .argument('<file>', 'the file of PDUs')
    .option('--room-version <v>', 'the version of rooms whose create event is not in the file before their events', roomVersionOption)
    .option('--json', 'print one JSON array of { where, eventID }')
    .action(async (file: string, _o, cmd: Command) => {
      const o = opts<{ roomVersion?: string; json?: boolean }>(cmd);
      const all: { where: string; eventID: string }[] = [];
      try {
        for await (const entry of eventIDsOfFile(file, o.roomVersion !== undefined ? { roomVersion: o.roomVersion } : {})) {
          if (o.json) all.push(entry);
          else io.out(entry.eventID);
        }
      } catch (e) {
        if (e instanceof ImportStoppedError || e instanceof InvalidInputError) throw new CliError(`event-id: ${e.message}`, EXIT.failed);
        throw e;
      }
      if (o.json) io.out(JSON.stringify(all));
      done(EXIT.ok);
    });

  command('state', 'print a room\'s state as JSON, sorted by (type, state_key): current, right before EVENT_ID, or right after it',
    'matrix-storage state \'!room:example.org\' --before \'$event\'')
    .argument('<room_id>', 'the room')
    .option('--before <event_id>', 'the state right before this event: what it was checked against (RoomserverDatabase.loadStateBeforeEvent)')
    .option('--after <event_id>', 'the state right after this event: it included if it is an accepted state event (loadStateAfterEvent)')
    .option('--at <event_id>', 'refused: "at" is read both ways; say --before or --after')
    .option('--json', 'print one compact JSON document (the default output is the same document, indented)')
    .action(async (roomID: string, _o, cmd: Command) => {
      const o = opts<{ before?: string; after?: string; at?: string; json?: boolean }>(cmd);
      if (o.at !== undefined) {
        throw new CliError('state: --at is ambiguous (the library\'s loadStateAtEvent is the state before the event). Fix: use --after ' +
          `${o.at} for the state including it (what --at printed before), or --before ${o.at} for the state it was checked against.`, EXIT.usage);
      }
      if (o.before !== undefined && o.after !== undefined) throw new CliError('state: give --before or --after, not both', EXIT.usage);
      checkArgument('state', () => {
        checkRoomID('ROOM_ID', roomID);
        if (o.before !== undefined) checkEventID('--before EVENT_ID', o.before);
        if (o.after !== undefined) checkEventID('--after EVENT_ID', o.after);
      });
      const { config } = load(o);
      const which = o.before !== undefined ? { before: o.before } : o.after !== undefined ? { after: o.after } : {};
      const state = await withStorage(config, (s) => roomState(s, roomID, which), EXISTING);
      io.out(o.json ? JSON.stringify(state) : JSON.stringify(state, null, 2));
      done(EXIT.ok);
    });

  command('keys', 'print a user\'s devices, cross-signing keys and key backup summary as JSON',
    'matrix-storage keys \'@alice:example.org\'')
    .argument('<user_id>', 'the user')
    .option('--json', 'print one compact JSON document (the default output is the same document, indented)')
    .action(async (userID: string, _o, cmd: Command) => {
      const o = opts<{ json?: boolean }>(cmd);
      checkArgument('keys', () => checkUserID('USER_ID', userID));
      const { config } = load(o);
      const summary = await withStorage(config, (s) => userKeys(s, userID), EXISTING);
      io.out(o.json ? JSON.stringify(summary) : JSON.stringify(summary, null, 2));
      done(EXIT.ok);
    });

  command('purge-send-to-device', 'delete send-to-device messages their device has not fetched within an age (send_to_device.max_age_days, ' +
    'or --older-than-days), whichever user or device they wait for; safe to interrupt and run again', 'matrix-storage purge-send-to-device --older-than-days 30')
    .option('--older-than-days <n>', 'delete messages stored more than N days ago (default: the configured send_to_device.max_age_days)', daysOption)
    .option('--json', 'print the report as one JSON document')
    .action(async (_o, cmd: Command) => {
      const o = opts<{ olderThanDays?: number; json?: boolean }>(cmd);
      const { config } = load(o);
      const report = await withStorage(config, (s) => purgeSendToDevice(s, {
        ...(o.olderThanDays !== undefined ? { olderThanDays: o.olderThanDays } : {}),
        onBatch: (n) => { if (!o.quiet) io.err(`purge-send-to-device: ${fmtInt(n)} deleted`); },
      }), EXISTING);
      io.out(o.json ? JSON.stringify(report) : formatSendToDevicePurge(report));
      done(report.age === 'off' ? EXIT.usage : EXIT.ok);
    });

  command('config', 'print the configuration in effect, secrets hidden', 'matrix-storage --config matrix-storage.yaml config --json')
    .option('--json', 'print one JSON document: { source, config }')
    .action(async (_o, cmd: Command) => {
      const o = opts<{ json?: boolean }>(cmd);
      const { config, source } = load(o);
      // The file's own keys (what can be pasted back into it); secret settings hidden by name, every other string by
      // the secrets rule (a URL's password), drivers' own sections (extra) included.
      const shown = redactSettings(configAsFile(config));
      io.out(o.json ? redact(JSON.stringify({ source, config: shown })) : `# from ${redact(source)}\n${redact(JSON.stringify(shown, null, 2))}`);
      done(EXIT.ok);
    });

  /**
   * purge-room and purge-history: the room must be stored; the user confirms what goes (`what`, in words); the
   * purge says each table's deletes as it goes, and its report is the output.
   */
  const runPurge = async (
    command: string, o: Common & { yes?: boolean; json?: boolean }, roomID: string, title: string, what: (config: StorageConfig) => string,
    purge: (s: Storage, onTable: PurgeOptions['onTable']) => Promise<PurgeReport>,
  ): Promise<void> => {
    checkArgument(command, () => checkRoomID('ROOM_ID', roomID));
    const { config } = load(o);
    const report = await withStorage(inBackground(config), async (s) => {
      if (!(await s.roomserver.roomInfo(roomID))) throw new CliError(`${command}: room ${preview(roomID)} is not in this store`);
      await confirmDeletion(io, o.yes === true, command, roomID, what(config));
      return purge(s, (t, n) => { if (!o.quiet && n > 0) io.err(`${command}: ${t}: deleting ${fmtInt(n)} rows`); })
        .catch((e: unknown) => { throw e instanceof PurgeRefusedError || e instanceof RoomBeingWrittenError ? new CliError(`${command}: ${e.message}`) : e; });
    }, EXISTING);
    io.out(o.json ? JSON.stringify(report) : formatPurgeReport(report, title).join('\n'));
    done(EXIT.ok);
  };

  command('rooms', 'list every room with its events, state, joined members and bytes, largest first',
    'matrix-storage rooms --sort bytes --limit 20')
    .option('--sort <what>', `order by ${ROOM_SORTS.join(', ')} (default bytes)`, sortOption, 'bytes' as RoomSort)
    .option('--limit <n>', 'show the first N rooms only', wholeNumber('limit'))
    .option('--json', 'print one JSON document: every room (as limited), the totals and what no room claims')
    .action(async (_o, cmd: Command) => {
      const o = opts<{ sort: RoomSort; limit?: number; json?: boolean }>(cmd);
      const { config } = load(o);
      const sizes = await withStorage(config, (s) => storeSizes(s, { sort: o.sort }), EXISTING);
      if (o.json) io.out(JSON.stringify({ ...sizes, rooms: o.limit === undefined ? sizes.rooms : sizes.rooms.slice(0, o.limit) }));
      else io.out(formatRoomSizes(sizes, o.limit).join('\n'));
      done(EXIT.ok);
    });

  command('room', 'one room: its sizes, forward extremities (latest events with depth) and its create event\'s version',
    'matrix-storage room \'!room:example.org\' --json')
    .argument('<room_id>', 'the room')
    .option('--json', 'print one JSON document')
    .action(async (roomID: string, _o, cmd: Command) => {
      const o = opts<{ json?: boolean }>(cmd);
      checkArgument('room', () => checkRoomID('ROOM_ID', roomID));
      const { config } = load(o);
      const detail = await withStorage(config, (s) => roomDetail(s, roomID), EXISTING).catch(notInStore('room'));
      io.out(o.json ? JSON.stringify(detail) : formatRoomDetail(detail).join('\n'));
      done(EXIT.ok);
    });

  command('purge-room', 'delete every trace of a room (events, state no other room uses, memberships, invites, aliases, directory entry), ' +
    'then give the space back; safe to interrupt and run again', 'matrix-storage purge-room \'!room:example.org\' --yes')
    .argument('<room_id>', 'the room')
    .option('--yes', 'do not ask for confirmation')
    .option('--json', 'print the report as one JSON document')
    .action(async (roomID: string, _o, cmd: Command) => {
      await runPurge('purge-room', opts<{ yes?: boolean; json?: boolean }>(cmd), roomID, 'purged room',
        (config) => `room ${roomID} and everything stored for it from ${describeBackend(config)}`,
        (s, onTable) => purgeRoom(s, roomID, { onTable }));
    });

  command('purge-history', 'delete a room\'s events before an event or a time, keeping the current state, the state every kept event ' +
    'needs, the create event, auth chains and the latest events', 'matrix-storage purge-history \'!room:example.org\' --before 2026-01-01T00:00:00Z --yes')
    .argument('<room_id>', 'the room')
    .requiredOption('--before <event_id|time>', 'the cut: an event ID (events stored before it), or milliseconds since 1970 or an ISO date and time (events sent before it)', cutOption)
    .option('--yes', 'do not ask for confirmation')
    .option('--json', 'print the report as one JSON document')
    .action(async (roomID: string, _o, cmd: Command) => {
      const o = opts<{ before: HistoryCut; yes?: boolean; json?: boolean }>(cmd);
      const cut = 'beforeEventID' in o.before ? o.before.beforeEventID : new Date(o.before.beforeTimestamp).toISOString();
      await runPurge('purge-history', o, roomID, 'purged history of', () => `the history of room ${roomID} before ${cut}`,
        (s, onTable) => purgeHistory(s, roomID, o.before, { onTable }));
    });

  command('copy', 'copy every table of one store into another, between any two drivers (the same one included): resumable ' +
    'after a kill, verified at the end by per-table digests and per-room state', 'matrix-storage copy --from ./data/matrix-storage.db --to postgres://matrix@localhost/matrix')
    .requiredOption('--from <store>', 'the source: a config file (.yaml, .yml, .json: any backend), a postgres:// URL, or a SQLite file')
    .requiredOption('--to <store>', 'the target, named the same ways: an empty store, or one holding this copy in progress (with --resume)')
    .option('--resume', 'finish the copy in progress in the target from the same source (a new copy starts if there is none)')
    .option('--verify-only', 'copy nothing: compare the two stores, table by table and room by room')
    .option('--no-verify', 'skip the comparison after copying')
    .option('--page-size <n>', 'rows read and written at a time (default 1,000)', pageSizeOption)
    .option('--without <what>', 'leave out one-time-keys: a backup restored later must not hand out keys already claimed (README "Backup and restore")', withoutOption)
    .option('--json', 'print the summary as one JSON document')
    .action(async (_o, cmd: Command) => {
      const o = opts<{ from: string; to: string; resume?: boolean; verifyOnly?: boolean; verify: boolean; pageSize?: number; without?: DumpTableName; json?: boolean }>(cmd);
      const without = o.without !== undefined ? [o.without] : [];
      const from = resolveEndpoint(o.from, { mustExist: true });
      const to = resolveEndpoint(o.to, { mustExist: o.verifyOnly === true });
      if (from.description === to.description) throw new CliError(`copy: --from and --to name the same store (${from.description})`, EXIT.usage);
      await withEndpoints(from, to, async (source, target) => {
        if (o.verifyOnly) {
          const report = await verifyCopy(source, target, { ...(o.pageSize ? { pageSize: o.pageSize } : {}), without });
          io.out(o.json ? JSON.stringify(report) : formatVerifyReport(report).join('\n'));
          done(report.equal ? EXIT.ok : EXIT.failed);
          return;
        }
        if (!o.quiet) io.err(`copying ${from.description} -> ${to.description}`);
        let bar = progress(io, { label: 'copy', quiet: true });
        let bytes = 0;
        let tableStarted = 0;
        try {
          const summary = await copyStore(source, target, {
            // A copy without a table is another copy: resuming it from the same source with other --without is refused.
            sourceDescription: without.length ? `${from.description} (without ${o.without})` : from.description,
            resume: o.resume === true, verify: o.verify, without,
            ...(o.pageSize ? { pageSize: o.pageSize } : {}),
            onTableStart: (table, total, already) => {
              bar.stop();
              bar = progress(io, { label: table.padEnd(20), quiet: o.quiet === true });
              bar.start(total, 'rows');
              bar.update(already);
              bytes = 0;
              tableStarted = Date.now();
            },
            onPage: (_table, rows, bytesDone) => {
              bytes = bytesDone;
              bar.update(rows, `${fmtBytes(bytes / Math.max(0.001, (Date.now() - tableStarted) / 1000))}/s`);
            },
            onTableDone: () => bar.stop(),
          });
          if (!o.quiet && summary.verification === undefined && o.verify) io.err('verification skipped');
          io.out(o.json ? JSON.stringify(summary) : formatCopySummary(summary, to.description).join('\n'));
        } catch (e) {
          if (e instanceof CopyMismatchError) {
            io.out(o.json ? JSON.stringify(e.report) : formatVerifyReport(e.report).join('\n'));
            throw new CliError(`copy: ${e.message}`, EXIT.failed);
          }
          if (e instanceof CopyRefusedError) throw new CliError(`copy: ${e.message}`, EXIT.failed);
          throw e;
        } finally {
          bar.stop();
        }
        done(EXIT.ok);
      });
    });

  command('check', 'verify a store\'s invariants (read-only): event JSON, state blocks and snapshots, latest events and current ' +
    'state, counters, memberships; exits 1 if any is violated', 'matrix-storage check ./data/matrix-storage.db --json')
    .argument('[store]', 'a config file, a postgres:// URL or a SQLite file (default: the --config store)')
    .option('--json', 'print the report as one JSON document')
    .action(async (store: string | undefined, _o, cmd: Command) => {
      const o = opts<{ json?: boolean }>(cmd);
      const endpoint = store !== undefined ? resolveEndpoint(store, { mustExist: true }) : (() => {
        const { config } = load(o);
        return { config, description: describeStore(config) };
      })();
      const report = await withStorage(inBackground(endpoint.config), (s) => checkStore(s), EXISTING);
      io.out(o.json ? JSON.stringify(report) : formatCheckReport(report, endpoint.description).join('\n'));
      done(report.ok ? EXIT.ok : EXIT.failed);
    });

  command('conformance', 'run the conformance suite against the configured deployment, each case in a scratch namespace removed ' +
    'after it (a SQLite file beside the store, a PostgreSQL schema, a Cosmos DB tenant); the deployment\'s data is never read or ' +
    'written; exits 1 if any case fails', 'matrix-storage --config matrix-storage.yaml conformance --grep "Store dump"')
    .option('--grep <pattern>', 'only the cases whose full title matches this regular expression (as mocha --grep reads it)')
    .option('--timeout <ms>', 'each case\'s time limit in milliseconds (default 60,000; 0 for none)', wholeNumber('timeout'))
    .option('--json', 'print the report as one JSON document, with every case\'s result')
    .action(async (_o, cmd: Command) => {
      const o = opts<{ grep?: string; timeout?: number; json?: boolean }>(cmd);
      const { config } = load(o);
      const quiet = o.quiet === true;
      const report = await runConformance(config, {
        ...(o.grep !== undefined ? { grep: o.grep } : {}),
        ...(o.timeout !== undefined ? { timeoutMs: o.timeout } : {}),
        onStart: ({ total, namespace }) => { if (!quiet) io.err(`conformance: ${total} cases on ${namespace}`); },
        onResult: (r) => { if (!quiet) io.err(formatCaseResult(r)); },
      }).catch((e: unknown) => {
        if (e instanceof InvalidInputError) throw new CliError(`conformance: --${e.message}`, EXIT.usage);
        throw e;
      });
      io.out(o.json ? redact(JSON.stringify(report)) : formatConformanceReport(report));
      for (const line of formatConformanceProblems(report)) io.err(line);
      if (!quiet && report.cases.length > 0) io.err(`${report.cases.length} cases in ${(report.elapsedMs / 1000).toFixed(1)} s`);
      if (report.cases.length === 0) throw new CliError(`conformance: no case matches --grep ${preview(o.grep ?? '')}: nothing was checked`, EXIT.failed);
      done(report.failed > 0 || report.leftBehind.length > 0 ? EXIT.failed : EXIT.ok);
    });

  command('demo', 'what `npm start` runs: generate a sample room if there is none, import it, summarise', 'matrix-storage demo --members 200 --events 2000')
    .option('--members <n>', 'members of the sample room', wholeNumber('members'), 2000)
    .option('--events <n>', 'events of the sample room', wholeNumber('events'), 20_000)
    .action(async (_o, cmd: Command) => {
      const o = opts<{ members: number; events: number }>(cmd);
      const { config } = load(o);
      const sample = sampleRoom(o.members, o.events);
      if (!fs.existsSync(sample)) {
        io.out(`generating a sample room (${fmtInt(o.members)} members, ${fmtInt(o.events)} events) in ${sample}`);
        const bar = progress(io, { label: 'generate', quiet: o.quiet === true });
        bar.start(o.events, 'events');
        try {
          await generateToFile(sample, { members: o.members, events: o.events, seed: 1, forkShare: DEMO_FORK_SHARE }, (i) => bar.update(i));
        } finally {
          bar.stop();
        }
      }
      await withStorage(config, async (s) => {
        io.out(`importing ${sample} into ${describeBackend(config)}`);
        const summary = await runImport(s, sample, {}, io, o.quiet === true);
        io.out(formatImportSummary(summary, config.backend));
        for (const roomID of summary.roomIDs) io.out(await roomAtAGlance(s, roomID));
      });
      done(EXIT.ok);
    });

  return program;
}


/**
 * Runs one command, writing to `io`; returns the exit code, or throws what went wrong (runCli reports it). The
 * command's output goes to io.out, progress and messages to io.err.
 */
export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => { code = c; });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return EXIT.ok;
    // No command at all: the help went to stderr; a usage error.
    if (e.code === 'commander.help' || e.code === 'commander.executeSubCommandAsync') return EXIT.usage;
    const usage = (e as CommanderError & { usageLine?: string }).usageLine ?? 'Usage: matrix-storage [options] COMMAND; see matrix-storage --help';
    throw new CliError(`${e.message.replace(/^error: /, '')}\n${usage}`, EXIT.usage);
  }
  return code;
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
  // Ctrl-C: say what the interruption left (for a long command, what to run next), then exit as a shell expects.
  process.once('SIGINT', () => {
    process.stderr.write(`\nmatrix-storage: ${interruptHint}\n`);
    process.exit(130);
  });
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  process.exitCode = await runCli(argv);
}

// `tsx src/cli/main.ts ...` (the npm scripts) runs it; importing the module (tests, bin.ts) does not.
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.dirname, 'main.ts')) void runProcess(process.argv.slice(2));


import fs from 'node:fs';
import readline from 'node:readline';
import type { Storage } from '../../index.js';
import { parseEvent } from '../../types/event.js';
import { StorageError, StoreUnavailableError } from '../../types/errors.js';
import type { RequestStats, StoreStats } from '../../storage/tables/index.js';
import { CliError, fmtBytes, fmtInt, fmtSeconds } from '../output.js';

export interface ImportSummary {
  readonly lines: number;
  /** Events newly applied by this run. */
  readonly applied: number;
  /** Events that were already stored and applied (a re-run of the same file). */
  readonly alreadyStored: number;
  readonly elapsedMs: number;
  readonly eventsPerSecond: number;
  readonly stats: StoreStats;
  /** The import's requests (statements on SQLite and PostgreSQL) and what they cost, where the driver counts them. */
  readonly requests: RequestStats | undefined;
  readonly roomIDs: readonly string[];
}

/**
 * Stores a room's events in file order (taken as the room's order), keeping the state at every event, memberships
 * and latest events. Each line is stored in its own transaction: a bad line stops the import with its number,
 * everything before it stays stored and nothing of it is.
 */
export async function importFile(storage: Storage, file: string, progress: (line: string) => void = () => {}): Promise<ImportSummary> {
  if (!fs.existsSync(file)) throw new CliError(`import: no such file: ${file}`);
  const rl = readline.createInterface({ input: fs.createReadStream(file, 'utf8'), crlfDelay: Infinity });
  storage.requestStats?.reset();
  const started = Date.now();
  let lastReport = started;
  let lineNo = 0;
  let applied = 0;
  let alreadyStored = 0;
  const rooms = new Set<string>();
  for await (const line of rl) {
    lineNo++;
    if (line.trim() === '') continue;
    try {
      const event = parseEvent(line);
      const res = await storage.roomserver.appendEvent(event);
      rooms.add(event.roomID);
      if (res.applied) applied++;
      else alreadyStored++;
    } catch (e) {
      rl.close();
      if (e instanceof StoreUnavailableError) {
        // Not the line's fault: the store went away. What is stored stays, and the same import resumes.
        throw new StoreUnavailableError(`import: ${file} stopped at line ${lineNo}: ${e.message} Lines before it are stored; ` +
          'run the same import again to go on from there.', e.retryable, { cause: e });
      }
      const why = e instanceof StorageError ? `${e.message} (${e.code})` : (e as Error).message;
      throw new CliError(`import: ${file} line ${lineNo}: ${why}. Lines before it are stored; nothing of line ${lineNo} is.`);
    }
    const now = Date.now();
    if (now - lastReport >= 1000) {
      lastReport = now;
      progress(`  ${fmtInt(lineNo)} lines, ${fmtInt(((applied + alreadyStored) * 1000) / (now - started))} events/s`);
    }
  }
  const elapsedMs = Math.max(1, Date.now() - started);
  const requests = storage.requestStats?.snapshot();
  return {
    requests,
    lines: lineNo, applied, alreadyStored, elapsedMs,
    eventsPerSecond: ((applied + alreadyStored) * 1000) / elapsedMs,
    stats: await storage.stats.collect(),
    roomIDs: [...rooms],
  };
}

export function formatImportSummary(s: ImportSummary, engine: string): string {
  const total = s.applied + s.alreadyStored;
  return [
    `imported ${fmtInt(total)} events in ${fmtSeconds(s.elapsedMs)}: ${fmtInt(s.eventsPerSecond)} events/s (${engine})`,
    `  newly applied ${fmtInt(s.applied)}, already stored ${fmtInt(s.alreadyStored)}`,
    `  store: ${fmtInt(s.stats.rooms)} rooms, ${fmtInt(s.stats.events)} events, ${fmtInt(s.stats.stateSnapshots)} state snapshots, ` +
      `${fmtInt(s.stats.stateBlocks)} state blocks`,
    `  state tuples stored: ${fmtInt(s.stats.stateTuples)} (${(s.stats.stateTuples / Math.max(1, s.stats.events)).toFixed(2)} per event), ` +
      `state bytes: ${fmtBytes(s.stats.stateBytes)}`,
    `  database size: ${fmtBytes(s.stats.totalBytes)}`,
    ...(s.requests ? [
      `  requests: ${fmtInt(s.requests.requests)} (${(s.requests.requests / Math.max(1, total)).toFixed(1)} per event)` +
        // SQLite and PostgreSQL count their statements but have no request charge: no RU figure for them.
        (s.requests.requestCharge > 0
          ? `, request charge: ${fmtInt(s.requests.requestCharge)} RU (${(s.requests.requestCharge / Math.max(1, total)).toFixed(1)} per event)`
          : ''),
    ] : []),
  ].join('\n');
}

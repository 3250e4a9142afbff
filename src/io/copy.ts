import type { Storage } from '../index.js';
import { PREASSIGNED_EVENT_TYPES } from '../types/nids.js';
import { StorageError } from '../types/errors.js';
import { DUMP_TABLES, type CopyProgress, type DumpTableName, type StoreDump } from '../storage/tables/dump.js';
import { pagesOf, rowBytes } from './dump-rows.js';
import { verifyCopy, type VerifyOptions, type VerifyReport } from './verify.js';

/**
 * `matrix-storage copy`: every table of one store into another, between any two drivers, the same driver
 * included. Rows keep their NIDs and stream positions (see storage/tables/dump.ts), so every reference between
 * tables holds in the copy, and the counters are raised to the source's: the copy works on as a live store.
 *
 * Tables go in DUMP_TABLES order, a page at a time (memory stays bounded whatever the store's size), each page
 * through the target driver's batch write. After each page the target records where the copy has got to, so a
 * copy killed at any moment is finished by the same command with `resume`: the page in flight is written again,
 * which changes nothing (writes are idempotent), and nothing before it is read again. The source must not be
 * written to while it is copied (the verification at the end finds it if it was).
 */
export interface CopyOptions {
  /** The source as recorded in the target's progress (a description without secrets, see io/endpoints.ts). */
  readonly sourceDescription: string;
  /** Finish a copy in progress from the same source; without it a target holding any data is refused. */
  readonly resume?: boolean;
  /** Rows per page (default 1,000). */
  readonly pageSize?: number;
  /**
   * Tables left out of the copy and its verification (see COPY_EXCLUSIONS): a backup taken with them left out can be
   * restored without handing out keys that were already used.
   */
  readonly without?: readonly DumpTableName[];
  /** Compare source and target at the end (default true). */
  readonly verify?: boolean;
  readonly verifyOptions?: VerifyOptions;
  /** A table starts (its rows in the source, those already copied), a page was written, a table is done. */
  readonly onTableStart?: (table: DumpTableName, total: number, done: number) => void;
  readonly onPage?: (table: DumpTableName, rowsDone: number, bytesDone: number) => void;
  readonly onTableDone?: (table: TableCopyReport) => void;
  /** Called after each page's progress is recorded: tests stop a copy there, as a kill would. */
  readonly afterPage?: (table: DumpTableName, pages: number) => void | Promise<void>;
}

export interface TableCopyReport {
  readonly table: DumpTableName;
  /** Rows written by this run, and the table's rows in all (earlier runs of a resumed copy included). */
  readonly rows: number;
  readonly totalRows: number;
  readonly bytes: number;
  readonly elapsedMs: number;
}

export interface CopySummary {
  readonly source: string;
  /** True when this run finished a copy that an earlier run started. */
  readonly resumed: boolean;
  /** True when the target already held this source's finished copy: nothing was written. */
  readonly alreadyComplete: boolean;
  readonly tables: readonly TableCopyReport[];
  /** Rows and bytes written by this run, and how long the copying (verification aside) took. */
  readonly rows: number;
  readonly bytes: number;
  readonly elapsedMs: number;
  readonly bytesPerSecond: number;
  readonly verification: VerifyReport | undefined;
}

/**
 * What `copy --without` may leave out, by the name the command takes. One-time keys: each is handed out once (a
 * claim deletes it), so a copy restored after some were claimed would hand them out again, and the clients that
 * received them could not decrypt what was sent with the second claim; without them, claims fall back to the
 * device's fallback key (copied with its used mark as it is) until the device uploads new one-time keys, which it
 * does when the server reports its count low.
 */
export const COPY_EXCLUSIONS: Readonly<Record<string, DumpTableName>> = { 'one-time-keys': 'one_time_keys' };

/** A copy that cannot start: a target that holds other data, a copy in progress from another source, ... */
export class CopyRefusedError extends StorageError {
  readonly code = 'COPY_REFUSED';
}

/** The verification at the end of a copy (or `--verify-only`) found a difference; `report` says what. */
export class CopyMismatchError extends StorageError {
  readonly code = 'COPY_MISMATCH';
  constructor(readonly report: VerifyReport) {
    super(`source and target differ: ${report.differences.slice(0, 5).join('; ')}${report.differences.length > 5 ? `; and ${report.differences.length - 5} more` : ''}`);
  }
}

export function dumpOf(storage: Storage, role: string): StoreDump {
  if (!storage.dump) throw new CopyRefusedError(`the ${role} (${storage.config.backend}) has no store dump: its driver cannot be copied from or to`);
  return storage.dump;
}

const DEFAULT_PAGE_SIZE = 1000;

export async function copyStore(source: Storage, target: Storage, options: CopyOptions): Promise<CopySummary> {
  const from = dumpOf(source, 'source');
  const to = dumpOf(target, 'target');
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  const started = Date.now();
  let progress = await startOrResume(to, options);
  const resumed = progress.table !== DUMP_TABLES[0] || progress.cursor !== undefined || Object.keys(progress.rows).length > 0;
  const reports: TableCopyReport[] = [];
  const alreadyComplete = progress.table === 'done';

  const without = new Set(options.without ?? []);
  for (let i = DUMP_TABLES.indexOf(progress.table as DumpTableName); i >= 0 && i < DUMP_TABLES.length; i++) {
    const name = DUMP_TABLES[i]!;
    if (without.has(name)) {
      progress = { ...progress, table: DUMP_TABLES[i + 1] ?? 'counters', cursor: undefined };
      await to.writeProgress(progress);
      continue;
    }
    const tableStarted = Date.now();
    const before = progress.rows[name] ?? 0;
    options.onTableStart?.(name, await from.table(name).count(), before);
    let rows = 0;
    let bytes = 0;
    let pages = 0;
    for await (const page of pagesOf(from, name, pageSize, progress.cursor)) {
      await to.table(name).write(page.rows as never);
      rows += page.rows.length;
      for (const row of page.rows) bytes += rowBytes(row);
      const following = page.next === undefined ? (DUMP_TABLES[i + 1] ?? 'counters') : name;
      progress = { ...progress, table: following, cursor: page.next, rows: { ...progress.rows, [name]: before + rows } };
      await to.writeProgress(progress);
      options.onPage?.(name, before + rows, bytes);
      await options.afterPage?.(name, ++pages);
    }
    const report = { table: name, rows, totalRows: before + rows, bytes, elapsedMs: Date.now() - tableStarted };
    reports.push(report);
    options.onTableDone?.(report);
  }
  if (progress.table === 'counters') {
    // After every row: a counter raised first would not be wrong, but this way a resumed copy raises them once.
    await to.raiseCounters(await from.counters());
    progress = { ...progress, table: 'done', cursor: undefined };
    await to.writeProgress(progress);
  }
  const elapsedMs = Date.now() - started;
  const rows = reports.reduce((n, r) => n + r.rows, 0);
  const bytes = reports.reduce((n, r) => n + r.bytes, 0);
  const verification = options.verify === false ? undefined
    : await verifyCopy(source, target, { ...options.verifyOptions, without: [...without, ...(options.verifyOptions?.without ?? [])] });
  if (verification && !verification.equal) throw new CopyMismatchError(verification);
  return {
    source: options.sourceDescription, resumed: resumed && !alreadyComplete, alreadyComplete, tables: reports,
    rows, bytes, elapsedMs, bytesPerSecond: bytes / Math.max(0.001, elapsedMs / 1000), verification,
  };
}

/**
 * The progress to go on from: a new copy into an empty target, or the target's copy in progress from the same
 * source when resuming. Anything else is refused before a row is written.
 */
async function startOrResume(to: StoreDump, options: CopyOptions): Promise<CopyProgress> {
  const recorded = await to.readProgress();
  if (recorded) {
    if (recorded.source !== options.sourceDescription) {
      throw new CopyRefusedError(`the target holds a copy from another store (${recorded.source}, started ${recorded.startedAt}); ` +
        'copy from that store with --resume to finish it, or copy into an empty store');
    }
    if (!options.resume) {
      throw new CopyRefusedError(recorded.table === 'done'
        ? `the target already holds a finished copy of this store (started ${recorded.startedAt}); run copy --verify-only to compare them`
        : `the target holds an unfinished copy of this store (started ${recorded.startedAt}, at table ${recorded.table}); run the same command with --resume to finish it`);
    }
    return recorded;
  }
  const holding = await rowsHeld(to);
  if (holding.length > 0) {
    throw new CopyRefusedError(`the target is not empty (${holding.slice(0, 4).join(', ')}${holding.length > 4 ? ', ...' : ''}); copy needs an empty store, or --resume with a copy in progress from the same source`);
  }
  // Recorded before the first row is written: from here on, the target's data is this copy's.
  const progress: CopyProgress = { source: options.sourceDescription, startedAt: new Date().toISOString(), table: DUMP_TABLES[0]!, cursor: undefined, rows: {} };
  await to.writeProgress(progress);
  return progress;
}

/** The tables of a store that hold rows a new store does not (the seeded event types and empty state key aside). */
export async function rowsHeld(dump: StoreDump): Promise<string[]> {
  const seeded: Partial<Record<DumpTableName, number>> = { event_types: PREASSIGNED_EVENT_TYPES.length, event_state_keys: 1 };
  const held: string[] = [];
  for (const name of DUMP_TABLES) {
    const n = await dump.table(name).count();
    if (n > (seeded[name] ?? 0)) held.push(`${name}: ${n} rows`);
  }
  return held;
}

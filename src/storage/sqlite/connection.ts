import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { SchemaNotCurrentError, StorageError, StoreUnavailableError } from '../../types/errors.js';
import { CommitHooks } from '../shared/commit-hooks.js';
import { Mutex } from '../shared/mutex.js';
import { RequestAccounting, statementOperation } from '../shared/request-accounting.js';
import type { Tx, UnitOfWork } from '../tables/index.js';
import { migrate, MIGRATIONS } from './migrations.js';
import { statusOf } from '../shared/migration-status.js';
import type { MigrationProgress } from '../../di/driver.js';

export interface SqliteOptions {
  /** A file path, or ":memory:". */
  readonly path: string;
  /** How long a writer waits for another process's lock before giving up (SQLITE_BUSY). */
  readonly busyTimeoutMs: number;
  readonly onMigrationProgress?: (p: MigrationProgress) => void;
  /** Create the file and migrate its schema on open; false: open an existing file as it is, writing nothing. */
  readonly migrate?: boolean;
}

/** The DI token the SQLite tables take their connection by (it is also the driver's UnitOfWork). */
export const SQLITE_CONNECTION = Symbol.for('matrix-storage.sqlite.Connection');

/** A Tx on SQLite: which transaction it belongs to (none for autocommit), and whether it is still open. */
class SqliteTx {
  open = true;
  readonly onCommit = new CommitHooks();
  /** See UnitOfWork.lastWrites: awaited before the transaction (or its savepoint) is released. */
  last: Promise<unknown> | undefined;
  constructor(readonly inTransaction: boolean) {}
}

/**
 * Why a SQLite file cannot be used, as one line naming it and the fix (StoreUnavailableError); anything else is
 * returned unchanged. A schema from a newer build is a ConfigError raised by the migrations themselves.
 */
function unusableFile(e: unknown, file: string): unknown {
  const code = (e as { code?: string })?.code ?? '';
  const at = `SQLite at ${file}`;
  const unusable = (why: string, fix: string) => new StoreUnavailableError(`${at}: ${why}. Fix: ${fix}.`, false, { cause: e });
  switch (code) {
    case 'EISDIR': return unusable('the path is a directory', 'set sqlite.path (or MATRIX_STORAGE_SQLITE_PATH) to a file inside it, e.g. ./data/matrix-storage.db');
    case 'EACCES': case 'EPERM': case 'EROFS': return unusable('permission denied', 'choose a path this user may write, or fix the permissions of its directory');
    case 'ENOTDIR': case 'EEXIST': return unusable('a part of the path is a file, not a directory', 'correct sqlite.path');
    case 'SQLITE_NOTADB': return unusable('the file is not a SQLite database', 'point sqlite.path at a matrix-storage database, or at a path where none exists yet');
    case 'SQLITE_CORRUPT': return unusable('the database file is corrupt', 'restore it from a backup');
    case 'SQLITE_CANTOPEN': return unusable('the file cannot be opened', 'check that its directory exists and may be written');
    case 'SQLITE_READONLY': return unusable('the file is read-only', 'make it writable for this user');
    case 'SQLITE_BUSY': return new StoreUnavailableError(`${at}: another process holds the database locked. It is safe to retry; or raise sqlite.busy_timeout_ms.`, true, { cause: e });
    default: return e;
  }
}

/** A caller's transaction waiting for the connection. */
interface WaitingTransaction {
  readonly fn: (tx: Tx) => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (reason: unknown) => void;
}

/** The most transactions one commit takes, so that autocommit calls waiting between transactions are not starved. */
const MAX_GROUP = 32;

/** Thrown when a Tx is used after its transaction ended: a bug in the caller, never a data problem. */
export class TransactionClosedError extends StorageError {
  readonly code = 'TX_CLOSED';
}

/**
 * A prepared statement that counts each execution under its table and verb. SQLite runs in this process, so an
 * execution is the closest thing it has to a round trip: what the benchmarks and `matrix-storage import` report
 * as requests, to compare with PostgreSQL's statements.
 */
export class CountedStatement {
  constructor(
    private readonly statement: Database.Statement,
    private readonly operation: string,
    private readonly accounting: RequestAccounting,
  ) {}

  run(...params: unknown[]): Database.RunResult {
    this.accounting.record(this.operation, 0);
    return this.statement.run(...params);
  }

  get(...params: unknown[]): unknown {
    this.accounting.record(this.operation, 0);
    return this.statement.get(...params);
  }

  all(...params: unknown[]): unknown[] {
    this.accounting.record(this.operation, 0);
    return this.statement.all(...params);
  }
}

/**
 * One SQLite connection: the single writer. better-sqlite3 is synchronous, so a statement never interleaves with
 * another; what can interleave is an async transaction's awaits. A mutex therefore holds the connection for a
 * whole transaction (`BEGIN IMMEDIATE`, which also takes SQLite's write lock against other processes up front),
 * and autocommit calls wait for it rather than slipping into someone else's transaction.
 */
export class SqliteConnection implements UnitOfWork {
  readonly engine = 'sqlite';
  readonly atomicTransactions = true;
  readonly db: Database.Database;
  readonly autocommit: Tx = new SqliteTx(false) as unknown as Tx;
  private readonly mutex = new Mutex();
  private active: SqliteTx | undefined;
  /** Transactions asked for and not started yet, first come first served. */
  private readonly waiting: WaitingTransaction[] = [];
  private draining = false;
  private readonly statements = new Map<string, CountedStatement>();
  /** Every statement executed, by table and verb ("roomserver_events SELECT", "BEGIN", "COMMIT"), charged 0. */
  readonly accounting = new RequestAccounting();
  /** Migrations applied when this connection opened the file (reported by `matrix-storage migrate`). */
  appliedOnOpen: number[] = [];

  private constructor(db: Database.Database) {
    this.db = db;
  }

  static open(options: SqliteOptions): SqliteConnection {
    try {
      return SqliteConnection.openFile(options);
    } catch (e) {
      throw unusableFile(e, options.path);
    }
  }

  private static openFile(options: SqliteOptions): SqliteConnection {
    const migrating = options.migrate ?? true;
    if (!migrating && options.path !== ':memory:' && !fs.existsSync(options.path)) {
      // Opening would create an empty store: a mistyped path must not look like an empty one.
      throw new SchemaNotCurrentError(`no SQLite database at ${path.resolve(options.path)}. Fix: correct sqlite.path (or ` +
        'MATRIX_STORAGE_SQLITE_PATH) if it is mistyped, or run `matrix-storage migrate` to create a store there.',
      statusOf(MIGRATIONS, new Set()));
    }
    if (options.path !== ':memory:') {
      if (migrating) fs.mkdirSync(path.dirname(path.resolve(options.path)), { recursive: true });
      if (fs.existsSync(options.path) && fs.statSync(options.path).isDirectory()) {
        throw Object.assign(new Error('it is a directory'), { code: 'EISDIR' });
      }
    }
    const db = new Database(options.path);
    db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs)}`);
    // WAL lets readers in other processes go on while we write; NORMAL sync is durable across application
    // crashes (a power cut can lose the last transactions, never corrupt the file).
    switchToWAL(db, options.busyTimeoutMs);
    db.pragma('synchronous = NORMAL');
    // Checkpoint the WAL into the database every 4,000 pages (16 MiB) rather than SQLite's 1,000: a page written
    // by many commits in a row (an index's hot pages on import) is copied back once per checkpoint, not four times.
    // Measured on import: the commits' share of the time fell from 24 to 17 µs per event.
    db.pragma('wal_autocheckpoint = 4000');
    db.pragma('foreign_keys = ON');
    const conn = new SqliteConnection(db);
    if (migrating) conn.appliedOnOpen = migrate(db, options.onMigrationProgress);
    return conn;
  }

  /** A prepared statement, prepared once per connection, whose executions are counted. */
  stmt(sql: string): CountedStatement {
    let s = this.statements.get(sql);
    if (!s) {
      s = new CountedStatement(this.db.prepare(sql), statementOperation(sql), this.accounting);
      this.statements.set(sql, s);
    }
    return s;
  }

  /**
   * Runs `work` all or nothing: in a savepoint inside a transaction, else in a transaction of its own (what
   * better-sqlite3's transaction functions do). For a table call whose several statements must not half-apply.
   */
  atomically<T>(work: () => T): T {
    return this.db.transaction(work)();
  }

  /** Runs a transaction-control statement (BEGIN IMMEDIATE, COMMIT, ROLLBACK), counted like any other. */
  private control(sql: string): void {
    this.accounting.record(sql.split(' ')[0]!, 0);
    this.db.exec(sql);
  }

  /** Runs one table call's statements under `tx`: directly inside its transaction, else between transactions. */
  async run<T>(tx: Tx, work: (conn: SqliteConnection) => T): Promise<T> {
    const t = tx as unknown as SqliteTx;
    if (t.inTransaction) {
      if (!t.open || t !== this.active) throw new TransactionClosedError('this transaction has already ended');
      return work(this);
    }
    if (!this.mutex.locked) return work(this);
    const release = await this.mutex.acquire();
    try {
      return work(this);
    } finally {
      release();
    }
  }

  lastWrites(tx: Tx, writes: Promise<unknown>): void {
    (tx as unknown as SqliteTx).last = writes;
  }

  afterCommit(tx: Tx, hook: () => void): void {
    const t = tx as unknown as SqliteTx;
    if (t.inTransaction) t.onCommit.add(hook);
    else hook();
  }

  /**
   * Runs `fn` in a transaction. Callers that arrive while another transaction runs are grouped into one commit
   * (group commit: SQLite has one writer, and its COMMIT, a WAL append and sync, is most of a small transaction's
   * cost). Each grouped caller runs alone, in turn, inside its own savepoint: one that fails is rolled back to it
   * and rejected without touching the others. Every caller's promise settles only once the group has committed
   * (its afterCommit hooks run then too); a failed COMMIT rejects all of them, and each may simply be retried.
   * (So a transaction must not wait for another one that was started after it: it would wait for its own commit.)
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ fn: fn as (tx: Tx) => Promise<unknown>, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) void this.drain();
    });
  }

  /** Runs the waiting transactions, a group per commit, until none waits. */
  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.waiting.length > 0) {
        const release = await this.mutex.acquire();
        const done: { caller: WaitingTransaction; tx: SqliteTx; result: unknown }[] = [];
        try {
          this.control('BEGIN IMMEDIATE');
        } catch (e) {
          release();
          this.waiting.shift()!.reject(e);
          continue;
        }
        try {
          while (this.waiting.length > 0 && done.length < MAX_GROUP) {
            const caller = this.waiting.shift()!;
            // The first of a group needs no savepoint: if it fails, the whole (empty) transaction is rolled back.
            const savepoint = done.length > 0;
            const tx = new SqliteTx(true);
            this.active = tx;
            try {
              if (savepoint) this.control('SAVEPOINT grouped');
              const result = await caller.fn(tx as unknown as Tx);
              await tx.last;
              if (savepoint) this.control('RELEASE grouped');
              done.push({ caller, tx, result });
            } catch (e) {
              if (savepoint) {
                this.control('ROLLBACK TO grouped');
                this.control('RELEASE grouped');
              } else if (this.db.inTransaction) {
                this.control('ROLLBACK');
                this.control('BEGIN IMMEDIATE');
              }
              caller.reject(e);
            } finally {
              tx.open = false;
              this.active = undefined;
            }
          }
          this.control('COMMIT');
        } catch (e) {
          if (this.db.inTransaction) this.control('ROLLBACK');
          for (const d of done) d.caller.reject(e);
          continue;
        } finally {
          release();
        }
        for (const d of done) {
          d.tx.onCommit.run();
          d.caller.resolve(d.result);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  async close(): Promise<void> {
    const release = await this.mutex.acquire();
    try {
      if (this.db.open) this.db.close();
    } finally {
      release();
    }
  }
}

/**
 * `journal_mode = WAL`, tried again while another process holds the file (up to the busy timeout). Switching needs
 * an exclusive lock, and SQLite answers SQLITE_BUSY at once, without waiting, to one of two processes that open a
 * new file at the same moment (each holds a shared lock and wants the other's gone); the other then switches it.
 */
function switchToWAL(db: Database.Database, busyTimeoutMs: number): void {
  const deadline = Date.now() + busyTimeoutMs;
  for (let wait = 5; ; wait = Math.min(wait * 2, 200)) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() + wait > deadline) throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
    }
  }
}

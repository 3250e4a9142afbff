import type pg from 'pg';
import { StorageError } from '../../types/errors.js';
import { RequestAccounting, statementOperation } from '../shared/request-accounting.js';
import { CommitHooks } from '../shared/commit-hooks.js';
import type { Tx, UnitOfWork } from '../tables/index.js';
import { pgTypes } from './values.js';
import { connectionFailure, describeTarget } from './errors.js';

export interface PostgresOptions {
  /** postgres://user:password@host:port/dbname */
  readonly url: string;
  /** The most connections the pool opens. */
  readonly poolSize: number;
  /** The schema every table lives in, set as search_path on each pooled connection. A plain identifier. */
  readonly schema: string;
}

/** The DI token the PostgreSQL tables take their connection by (it is also the driver's UnitOfWork). */
export const POSTGRES_CONNECTION = Symbol.for('matrix-storage.postgres.Connection');

/** Thrown when a Tx is used after its transaction ended: a bug in the caller, never a data problem. */
export class TransactionClosedError extends StorageError {
  readonly code = 'TX_CLOSED';
}

/** COMMIT answered ROLLBACK: a statement of the transaction failed (its own error was reported where it was awaited). */
export class TransactionRolledBackError extends StorageError {
  readonly code = 'ROLLED_BACK';
}

/** A Tx on PostgreSQL: the pooled client its transaction runs on (none for autocommit), and whether it is open. */
class PostgresTx {
  open = true;
  readonly onCommit = new CommitHooks();
  /** Statements sent on this transaction's client and not answered yet (see `send`). */
  inFlight = 0;
  /** See UnitOfWork.lastWrites: COMMIT goes right behind them. */
  last: Promise<unknown> | undefined;
  constructor(readonly client: pg.PoolClient | undefined) {}
}

/** Values a statement binds: what pg accepts (numbers, strings, booleans, Buffers, arrays of them, null). */
export type Params = readonly unknown[];

/**
 * A pg.Pool and the unit of work over it. `transaction(fn)` takes one client from the pool and runs fn between
 * BEGIN and COMMIT (ROLLBACK if fn rejects) on it; every table call with that Tx goes to that client, in order.
 * `autocommit` runs each statement on whichever pooled client is free, in its own implicit transaction.
 *
 * Statements are sent as named prepared statements (one name per distinct SQL text), so each pooled connection
 * parses a statement once, however often it runs; it is planned on every run (plan_cache_mode=force_custom_plan).
 * Measured, not assumed: with PostgreSQL's default plan cache, a statement prepared while its table was nearly empty
 * kept a generic sequential-scan plan as the table grew (nothing re-plans it until ANALYZE, which autovacuum had not
 * run a minute into an import), and the previous_events lookup read 81 million rows over a 20,000-event import.
 */
export class PostgresConnection implements UnitOfWork {
  readonly engine = 'postgres';
  readonly atomicTransactions = true;
  readonly pool: pg.Pool;
  readonly autocommit: Tx = new PostgresTx(undefined) as unknown as Tx;
  readonly schema: string;
  /** Migrations applied when this connection opened the store (reported by `matrix-storage migrate`). */
  appliedOnOpen: number[] = [];
  /**
   * Every statement sent, by table and verb ("roomserver_events SELECT", "COMMIT"), charged 0: what
   * `matrix-storage import` reports as requests per event. BEGIN is counted but travels with the next statement.
   */
  readonly accounting = new RequestAccounting(true);
  private readonly names = new Map<string, { name: string; operation: string }>();
  private closed = false;
  /** host:port/db (schema), for messages: never the password. */
  readonly target: string;

  /** `pgModule`: the pg package, loaded when the driver opens (an optional package: di/optional-packages.ts). */
  constructor(pgModule: typeof pg, options: PostgresOptions) {
    this.schema = options.schema;
    this.target = describeTarget(options.url, options.schema);
    // The schema is a validated plain identifier (config/schema.ts): it needs no quoting. Sent as startup options
    // (with the plan cache mode, see above), so they cost no round trip and hold on every connection the pool ever
    // opens. pg lets an `options` parameter in the URL replace the one given here, so the URL's (if any) is taken
    // out and kept in front of ours.
    const url = new URL(options.url);
    const urlOptions = url.searchParams.get('options');
    url.searchParams.delete('options');
    this.pool = new pgModule.Pool({
      connectionString: url.toString(),
      max: options.poolSize,
      types: pgTypes(pgModule),
      options: [urlOptions, `-c search_path=${options.schema}`, '-c plan_cache_mode=force_custom_plan'].filter(Boolean).join(' '),
      application_name: 'matrix-storage',
      // Pipelining: statements issued while others are in flight on the same client go out at once instead of
      // each waiting for the previous answer (see transaction()).
      pipeline: true,
    });
    // An idle client whose server went away emits 'error' on the pool; without a listener that kills the process.
    // The next statement on the pool reports the problem instead.
    this.pool.on('error', () => {});
  }

  /** Runs one statement under `tx`: on its transaction's client, or on the pool for autocommit. */
  async query<R extends pg.QueryResultRow = Record<string, unknown>>(tx: Tx, text: string, values: Params = []): Promise<pg.QueryResult<R>> {
    const client = this.clientOf(tx);
    const { name, operation } = this.statement(text);
    this.accounting.record(operation, 0);
    const config = { name, text, values: values as unknown[] };
    try {
      if (client === undefined) {
        this.accounting.roundTrip();
        return await this.pool.query<R>(config);
      }
      return await this.send(tx as unknown as PostgresTx, () => client.query<R>(config));
    } catch (e) {
      throw connectionFailure(e, this.target);
    }
  }

  /**
   * Sends a statement on a transaction's client, counting round trips: a statement sent while another is in flight
   * travels in the same pipeline; one sent when none is waits a full round trip for its answer.
   */
  private async send<T>(t: PostgresTx, query: () => Promise<T>): Promise<T> {
    if (t.inFlight++ === 0) this.accounting.roundTrip();
    try {
      return await query();
    } finally {
      t.inFlight--;
    }
  }

  /** A client of the pool's, its connection failures turned into StoreUnavailableError. */
  async connect(): Promise<pg.PoolClient> {
    try {
      return await this.pool.connect();
    } catch (e) {
      throw connectionFailure(e, this.target);
    }
  }

  /**
   * The client a Tx runs on (undefined: the pool). TransactionClosedError if the Tx can no longer be used; a table
   * call that answers without a statement (an empty bulk read) still calls this, so a stale Tx never goes unnoticed.
   */
  clientOf(tx: Tx): pg.PoolClient | undefined {
    const t = tx as unknown as PostgresTx;
    if (!(t instanceof PostgresTx)) throw new TransactionClosedError('this Tx does not belong to a PostgreSQL store');
    if (this.closed) throw new TransactionClosedError('this store has been closed');
    if (t.client === undefined) {
      if (t !== (this.autocommit as unknown as PostgresTx)) throw new TransactionClosedError('this Tx belongs to another store');
      return undefined;
    }
    if (!t.open) throw new TransactionClosedError('this transaction has already ended');
    return t.client;
  }

  /** The answer to a call that needs no statement (an empty bulk read), once `tx` is known to be usable. */
  nothing<T>(tx: Tx, answer: T): T {
    this.clientOf(tx);
    return answer;
  }

  /** The prepared statement's name for a SQL text, and the operation it is counted under. */
  private statement(text: string): { name: string; operation: string } {
    let known = this.names.get(text);
    if (known === undefined) {
      known = { name: `ms${this.names.size + 1}`, operation: statementOperation(text) };
      this.names.set(text, known);
    }
    return known;
  }

  lastWrites(tx: Tx, writes: Promise<unknown>): void {
    const t = tx as unknown as PostgresTx;
    writes.catch(() => {}); // awaited in transaction(), after COMMIT is sent
    t.last = writes;
  }

  afterCommit(tx: Tx, hook: () => void): void {
    const t = tx as unknown as PostgresTx;
    if (t.client) t.onCommit.add(hook);
    else hook();
  }

  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.closed) throw new TransactionClosedError('this store has been closed');
    const client = await this.connect();
    const tx = new PostgresTx(client);
    let broken: Error | undefined;
    // A checked-out client has no 'error' listener of the pool's: if its connection drops (the server restarts, a
    // network cut), pg emits 'error' on it, which with no listener kills the process. Here it only marks the client
    // broken; the statement in flight rejects by itself, and the client is destroyed instead of going back.
    const onError = (err: Error) => { broken = err; };
    client.on('error', onError);
    // BEGIN is not awaited: pipelined, it travels with the transaction's first statement, saving a round trip. The
    // server runs messages in order, so that statement runs inside the transaction; BEGIN's answer is checked
    // before COMMIT (BEGIN on a clean pooled connection has nothing it could fail on but the connection itself).
    this.accounting.record('BEGIN', 0);
    const begin = this.send(tx, () => client.query('BEGIN'));
    begin.catch(() => {});
    // Whether the transaction is over already (COMMIT answered ROLLBACK): then no ROLLBACK is sent.
    let rolledBack = false;
    try {
      const result = await fn(tx as unknown as Tx);
      // Closed before COMMIT or ROLLBACK is sent: a statement that a still-running branch of fn issues late must be
      // refused, not queued behind the transaction's end, where it would run on its own and stay.
      tx.open = false;
      await begin.catch((e) => { throw connectionFailure(e, this.target); });
      this.accounting.record('COMMIT', 0);
      // Sent at once, behind the last writes if fn handed any (still in flight): the server runs it after them, and
      // if one of them failed the transaction is aborted and COMMIT answers ROLLBACK.
      const commit = this.send(tx, () => client.query('COMMIT'));
      commit.catch(() => {});
      if (tx.last) {
        try {
          await tx.last;
        } catch (e) {
          await commit.catch(() => {});
          rolledBack = true;
          throw e;
        }
      }
      const answer = await commit.catch((e) => { throw connectionFailure(e, this.target); });
      rolledBack = answer.command !== 'COMMIT';
      if (rolledBack) throw new TransactionRolledBackError('the transaction could not commit: a statement of it failed, and the server rolled it back');
      tx.onCommit.run();
      return result;
    } catch (e) {
      tx.open = false;
      try {
        if (!rolledBack) {
          this.accounting.record('ROLLBACK', 0);
          await client.query('ROLLBACK');
        }
      } catch (rollbackError) {
        // The connection itself failed: do not hand it back to the pool.
        broken = rollbackError as Error;
      }
      throw e;
    } finally {
      tx.open = false;
      client.off('error', onError);
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

/**
 * The unit of work every table call runs in.
 *
 * `transaction(fn)` hands `fn` a Tx that table calls take: on PostgreSQL one transaction on one pooled client,
 * on SQLite `BEGIN IMMEDIATE` on the single writer connection, on Cosmos DB a context that only carries the
 * request-charge account (Cosmos has no cross-partition transaction; the shared layer orders writes so that it
 * does not need one). `autocommit` is the Tx for a call that stands alone.
 */
/*
 * Conventions for every table interface:
 * - "sorted" strings are in code-point order (SQLite BINARY, PostgreSQL COLLATE "C", JS `<` on
 *   well-formed strings outside the surrogate range): never a locale's collation, which differs between servers.
 * - Every method reports failure by rejecting its promise, never by throwing synchronously, bad input included.
 */
declare const txBrand: unique symbol;
export interface Tx {
  readonly [txBrand]: true;
}

export interface UnitOfWork {
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  readonly autocommit: Tx;
  /**
   * Runs `hook` once `tx` has committed, and never if it rolls back: at once for autocommit, and at once on an
   * engine with no rollback (Cosmos DB). For in-process caches of what a transaction wrote or read.
   */
  afterCommit(tx: Tx, hook: () => void): void;
  /** Which engine this is, for messages and for the few places that must know (none in storage/shared). */
  readonly engine: string;
  /**
   * Whether a transaction's statements run in the order issued and a failed one undoes them all (SQL). The write
   * path then issues a sequence's last, committing write together with the writes it depends on (one round trip);
   * without it (Cosmos DB) it waits for those writes to land before making them visible.
   */
  readonly atomicTransactions: boolean;
  /**
   * Hands a transaction (of `transaction`, not autocommit) its last writes, already issued: the transaction waits
   * for them before it commits; where statements run in the order sent and a failed one fails the transaction
   * (PostgreSQL) it sends COMMIT right behind them instead, saving a round trip. Either way, if one of them fails
   * nothing of the transaction commits and it rejects with that error.
   */
  lastWrites(tx: Tx, writes: Promise<unknown>): void;
  close(): Promise<void>;
}

import type { Tx } from './unit-of-work.js';

export interface TransactionKey {
  readonly transactionID: string;
  readonly sessionID: number;
  readonly userID: string;
}

/** transactions: client transaction IDs, so that a retried send maps to the event it already created. */
export interface TransactionsTable {
  /** Plain insert: ConflictError on a duplicate key. */
  insertTransaction(tx: Tx, key: TransactionKey, eventID: string): Promise<void>;
  /** NotFoundError if missing. */
  selectTransactionEventID(tx: Tx, key: TransactionKey): Promise<string>;
  /** The same, null if missing: for the write path, where a miss is the expected answer. */
  selectTransactionEventIDIfAny(tx: Tx, key: TransactionKey): Promise<string | null>;
}

import { inject, injectable } from 'inversify';
import { duplicate, notFound } from '../shared/contracts.js';
import { sha256 } from '../shared/state-codec.js';
import type { TransactionKey, TransactionsTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';
import { changed } from './values.js';

/**
 * The key's content address: SHA-256 of the three parts as a JSON array, an encoding in which no two keys meet
 * (whatever separators they contain). A client's transaction ID has no length limit, so the text cannot be the
 * B-tree key itself (see migrations.ts).
 */
export const transactionKeyHash = (key: TransactionKey): Buffer =>
  sha256(Buffer.from(JSON.stringify([key.transactionID, key.sessionID, key.userID]), 'utf8'));

@injectable()
export class PostgresTransactionsTable implements TransactionsTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  /** DO NOTHING and a row count rather than a unique violation, which would abort the caller's transaction. */
  async insertTransaction(tx: Tx, key: TransactionKey, eventID: string): Promise<void> {
    const r = await this.conn.query(tx, `INSERT INTO roomserver_transactions (transaction_key_hash, transaction_id, session_id, user_id, event_id)
      VALUES ($1, $2, $3, $4, $5) ON CONFLICT (transaction_key_hash) DO NOTHING`,
    [transactionKeyHash(key), key.transactionID, key.sessionID, key.userID, eventID]);
    if (changed(r) === 0) throw duplicate('transaction', key);
  }

  async selectTransactionEventID(tx: Tx, key: TransactionKey): Promise<string> {
    const id = await this.selectTransactionEventIDIfAny(tx, key);
    if (id === null) throw notFound('transaction', key);
    return id;
  }

  async selectTransactionEventIDIfAny(tx: Tx, key: TransactionKey): Promise<string | null> {
    const r = await this.conn.query<{ id: string }>(tx, `SELECT event_id AS id FROM roomserver_transactions WHERE transaction_key_hash = $1
      AND transaction_id = $2 AND session_id = $3 AND user_id = $4`, [transactionKeyHash(key), key.transactionID, key.sessionID, key.userID]);
    return r.rows[0]?.id ?? null;
  }
}

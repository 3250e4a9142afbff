import { inject, injectable } from 'inversify';
import { duplicate, notFound } from '../shared/contracts.js';
import type { TransactionKey, TransactionsTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { isUniqueViolation } from './values.js';

@injectable()
export class SqliteTransactionsTable implements TransactionsTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertTransaction(tx: Tx, key: TransactionKey, eventID: string): Promise<void> {
    return this.conn.run(tx, (c) => {
      try {
        c.stmt('INSERT INTO roomserver_transactions (transaction_id, session_id, user_id, event_id) VALUES (?, ?, ?, ?)')
          .run(key.transactionID, key.sessionID, key.userID, eventID);
      } catch (e) {
        if (isUniqueViolation(e)) throw duplicate('transaction', key);
        throw e;
      }
    });
  }

  async selectTransactionEventID(tx: Tx, key: TransactionKey): Promise<string> {
    const id = await this.selectTransactionEventIDIfAny(tx, key);
    if (id === null) throw notFound('transaction', key);
    return id;
  }

  selectTransactionEventIDIfAny(tx: Tx, key: TransactionKey): Promise<string | null> {
    return this.conn.run(tx, (c) => {
      const row = c.stmt('SELECT event_id AS id FROM roomserver_transactions WHERE transaction_id = ? AND session_id = ? AND user_id = ?')
        .get(key.transactionID, key.sessionID, key.userID) as { id: string } | undefined;
      return row ? row.id : null;
    });
  }
}

import { inject, injectable } from 'inversify';
import { duplicate, notFound } from '../shared/contracts.js';
import type { TransactionKey, TransactionsTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { docId } from './ids.js';

/** transactions on Cosmos DB: per user (`txn|<user ID>`), a document per (session, transaction ID). */
@injectable()
export class CosmosTransactionsTable implements TransactionsTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private ref(key: TransactionKey) {
    return { id: docId(key.sessionID, key.transactionID), pk: this.conn.pk('txn', key.userID) };
  }

  async insertTransaction(_tx: Tx, key: TransactionKey, eventID: string): Promise<void> {
    // The key's parts are kept as fields too: the id and partition key may hold them only hashed (see ids.ts).
    const doc = { ...this.ref(key), k: 'transaction', eventID, userID: key.userID, sessionID: key.sessionID, transactionID: key.transactionID };
    if (!(await this.conn.requests.create('transactions.insert', doc))) throw duplicate('transaction', key);
  }

  async selectTransactionEventID(tx: Tx, key: TransactionKey): Promise<string> {
    const id = await this.selectTransactionEventIDIfAny(tx, key);
    if (id === null) throw notFound('transaction', key);
    return id;
  }

  async selectTransactionEventIDIfAny(_tx: Tx, key: TransactionKey): Promise<string | null> {
    const { id, pk } = this.ref(key);
    const doc = await this.conn.requests.read<{ eventID: string }>('transactions.select', id, pk);
    return doc ? doc.eventID : null;
  }
}

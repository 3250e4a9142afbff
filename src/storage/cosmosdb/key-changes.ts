import { inject, injectable } from 'inversify';
import { OFFSET_NEWEST } from '../../types/keys.js';
import type { KeyChangesTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { docId } from './ids.js';
import { codePointCompare } from './order.js';

/**
 * key_changes on Cosmos DB: the stream of users whose device lists changed, in one tenant-wide partition
 * `keychanges` (a small document per user), so a range of change IDs is a single-partition query. Change IDs come
 * from a counter taken one value at a time; a user's document only ever moves to a higher ID (ETag-conditional).
 */
@injectable()
export class CosmosKeyChangesTable implements KeyChangesTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  async insertKeyChange(_tx: Tx, userID: string): Promise<number> {
    const r = this.conn.requests;
    const changeID = await this.conn.sequence('order').nextValue();
    const id = docId(userID);
    const pk = this.conn.pk('keychanges');
    const doc = { id, pk, k: 'key_change', userID, changeID };
    for (;;) {
      const existing = await r.read<{ changeID: number }>('keyChanges.insert', id, pk);
      if (existing && existing.changeID >= changeID) return changeID;
      if (existing ? await r.replaceIfMatch('keyChanges.insert', doc, existing._etag) : await r.create('keyChanges.insert', doc)) return changeID;
    }
  }

  async selectKeyChanges(_tx: Tx, fromOffset: number, toOffset: number): Promise<{ userIDs: string[]; latestOffset: number }> {
    const rows = await this.conn.requests.query<{ userID: string; changeID: number }>('keyChanges.select', this.conn.pk('keychanges'),
      `SELECT c.userID, c.changeID FROM c WHERE c.pk = @pk AND c.k = 'key_change' AND c.changeID > @from AND (@to = ${OFFSET_NEWEST} OR c.changeID <= @to)`,
      [{ name: '@from', value: fromOffset }, { name: '@to', value: toOffset }]);
    return {
      userIDs: rows.map((r) => r.userID).sort(codePointCompare),
      latestOffset: rows.reduce((max, r) => Math.max(max, r.changeID), fromOffset),
    };
  }
}

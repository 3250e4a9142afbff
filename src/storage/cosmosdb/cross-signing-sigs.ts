import { inject, injectable } from 'inversify';
import type { CrossSigningSigsTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { docId } from './ids.js';
import { codePointCompare } from './order.js';

interface SigDoc {
  id: string;
  originUserID: string;
  originKeyID: string;
  targetKeyID: string;
  signature: string;
}

/**
 * cross_signing_sigs on Cosmos DB: in the TARGET user's key partition `keys|<user ID>` (signatures are read per
 * target key), one document per (origin user, target key), so an upsert replaces that origin's signature.
 */
@injectable()
export class CosmosCrossSigningSigsTable implements CrossSigningSigsTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private sigs(targetUserID: string, targetKeyID: string): Promise<SigDoc[]> {
    return this.conn.requests.query<SigDoc>('crossSigningSigs.select', this.conn.pk('keys', targetUserID),
      "SELECT c.id, c.originUserID, c.originKeyID, c.targetKeyID, c.signature FROM c WHERE c.pk = @pk AND c.k = 'css' AND c.targetKeyID = @key",
      [{ name: '@key', value: targetKeyID }]);
  }

  async selectCrossSigningSigsForTarget(_tx: Tx, targetUserID: string, targetKeyID: string): Promise<Map<string, Map<string, string>>> {
    const out = new Map<string, Map<string, string>>();
    for (const s of (await this.sigs(targetUserID, targetKeyID)).sort((a, b) => codePointCompare(a.originUserID, b.originUserID))) {
      out.set(s.originUserID, (out.get(s.originUserID) ?? new Map()).set(s.originKeyID, s.signature));
    }
    return out;
  }

  async upsertCrossSigningSigsForTarget(
    _tx: Tx, originUserID: string, originKeyID: string, targetUserID: string, targetKeyID: string, signature: string,
  ): Promise<void> {
    await this.conn.requests.upsert('crossSigningSigs.upsert', {
      id: docId('css', originUserID, targetKeyID), pk: this.conn.pk('keys', targetUserID), k: 'css', originUserID, originKeyID, targetKeyID, signature,
      // The target user kept as a field too: the partition key may hold it only hashed (see ids.ts).
      targetUserID,
    });
  }

  async deleteCrossSigningSigsForTarget(_tx: Tx, targetUserID: string, targetKeyID: string): Promise<void> {
    for (const s of await this.sigs(targetUserID, targetKeyID)) {
      await this.conn.requests.delete('crossSigningSigs.delete', s.id, this.conn.pk('keys', targetUserID));
    }
  }
}

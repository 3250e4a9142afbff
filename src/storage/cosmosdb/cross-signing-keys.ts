import { inject, injectable } from 'inversify';
import { CorruptionError, InvalidInputError } from '../../types/errors.js';
import { isCrossSigningKeyPurpose, type CrossSigningKeyPurpose } from '../../types/keys.js';
import type { CrossSigningKeysTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';

/** cross_signing_keys on Cosmos DB: `csk|<purpose>` documents in the user's key partition `keys|<user ID>`. */
@injectable()
export class CosmosCrossSigningKeysTable implements CrossSigningKeysTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  async selectCrossSigningKeysForUser(_tx: Tx, userID: string): Promise<Map<CrossSigningKeyPurpose, string>> {
    const rows = await this.conn.requests.query<{ purpose: number; data: string }>('crossSigningKeys.select', this.conn.pk('keys', userID),
      "SELECT c.purpose, c.data FROM c WHERE c.pk = @pk AND c.k = 'csk'");
    const out = new Map<CrossSigningKeyPurpose, string>();
    for (const r of rows.sort((a, b) => a.purpose - b.purpose)) {
      if (!isCrossSigningKeyPurpose(r.purpose)) throw new CorruptionError(`cross-signing key of ${userID} has unknown purpose ${r.purpose}`);
      out.set(r.purpose, r.data);
    }
    return out;
  }

  async upsertCrossSigningKeysForUser(_tx: Tx, userID: string, purpose: CrossSigningKeyPurpose, keyData: string): Promise<void> {
    if (!isCrossSigningKeyPurpose(purpose)) throw new InvalidInputError(`cross-signing key purposes are 1, 2 or 3, got ${String(purpose)}`);
    // The user kept as a field too: the partition key may hold it only hashed (see ids.ts).
    await this.conn.requests.upsert('crossSigningKeys.upsert', { id: `csk|${purpose}`, pk: this.conn.pk('keys', userID), k: 'csk', purpose, data: keyData, userID });
  }
}

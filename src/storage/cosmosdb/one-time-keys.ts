import { inject, injectable } from 'inversify';
import { InvalidInputError } from '../../types/errors.js';
import { preview } from '../../types/input.js';
import { unique } from '../shared/contracts.js';
import type { OneTimeKeys, OneTimeKeysCount, OneTimeKeysTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { docId } from './ids.js';
import { codePointCompare } from './order.js';

const split = (name: string): [string, string] | undefined => {
  const colon = name.indexOf(':');
  return colon < 0 ? undefined : [name.slice(0, colon), name.slice(colon + 1)];
};

/** How many candidates a claim looks at, so that concurrent claimers mostly pick different keys. */
const CLAIM_CANDIDATES = 16;

/**
 * one_time_keys on Cosmos DB: a partition per device (`otk|<user>|<device>`), a document per key. A claim picks
 * one of the first few keys of the algorithm at random and deletes it: the delete succeeds for exactly one
 * claimer, so a key is never handed out twice; a claimer that loses (404) picks again.
 */
@injectable()
export class CosmosOneTimeKeysTable implements OneTimeKeysTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private pk(userID: string, deviceID: string) {
    return this.conn.pk('otk', userID, deviceID);
  }

  async insertOneTimeKeys(tx: Tx, keys: OneTimeKeys): Promise<OneTimeKeysCount> {
    const rows = [...keys.keyJSON].map(([name, json]) => {
      const parts = split(name);
      if (!parts) throw new InvalidInputError(`one-time key names are "algorithm:keyID", got ${preview(name)}`);
      return [...parts, json] as const;
    });
    const pk = this.pk(keys.userID, keys.deviceID);
    for (const [algorithm, keyID, json] of rows) {
      await this.conn.requests.upsert('oneTimeKeys.insert', { id: docId(algorithm, keyID), pk, k: 'otk', algorithm, keyID, json });
    }
    return this.countOneTimeKeys(tx, keys.userID, keys.deviceID);
  }

  async selectOneTimeKeys(_tx: Tx, userID: string, deviceID: string, keyIDsWithAlgorithms: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const name of unique(keyIDsWithAlgorithms)) {
      const parts = split(name);
      if (!parts) continue;
      const doc = await this.conn.requests.read<{ json: string }>('oneTimeKeys.select', docId(...parts), this.pk(userID, deviceID));
      if (doc) out.set(name, doc.json);
    }
    return out;
  }

  async countOneTimeKeys(_tx: Tx, userID: string, deviceID: string): Promise<OneTimeKeysCount> {
    const rows = await this.conn.requests.query<{ algorithm: string }>('oneTimeKeys.count', this.pk(userID, deviceID),
      "SELECT c.algorithm FROM c WHERE c.pk = @pk AND c.k = 'otk'");
    const counts = new Map<string, number>();
    for (const r of rows.sort((a, b) => codePointCompare(a.algorithm, b.algorithm))) counts.set(r.algorithm, (counts.get(r.algorithm) ?? 0) + 1);
    return { userID, deviceID, keyCount: counts };
  }

  async selectAndDeleteOneTimeKey(_tx: Tx, userID: string, deviceID: string, algorithm: string): Promise<readonly [string, string] | null> {
    const pk = this.pk(userID, deviceID);
    for (;;) {
      const candidates = await this.conn.requests.query<{ id: string; keyID: string; json: string }>('oneTimeKeys.claim', pk,
        `SELECT TOP ${CLAIM_CANDIDATES} c.id, c.keyID, c.json FROM c WHERE c.pk = @pk AND c.k = 'otk' AND c.algorithm = @algorithm`,
        [{ name: '@algorithm', value: algorithm }]);
      if (candidates.length === 0) return null;
      for (let i = candidates.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [candidates[i], candidates[j]] = [candidates[j]!, candidates[i]!];
      }
      for (const c of candidates) {
        if (await this.conn.requests.delete('oneTimeKeys.claim', c.id, pk)) return [`${algorithm}:${c.keyID}`, c.json] as const;
      }
    }
  }
}

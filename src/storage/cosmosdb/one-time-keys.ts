import { randomUUID } from 'node:crypto';
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

/** A claimed key document older than this was left by a claimer that died before deleting it: safe to remove. */
const STALE_CLAIM_MS = 5 * 60_000;

/** Only keys nobody has claimed: a claimed document is already handed out, whether or not it is deleted yet. */
const UNCLAIMED = 'NOT IS_DEFINED(c.claim)';

/**
 * one_time_keys on Cosmos DB: a partition per device (`otk|<user>|<device>`), a document per key.
 *
 * A claim must hand every key out exactly once, even when responses are lost (a request times out after the
 * server applied it, and the retry meets the changed document). So claiming is two steps:
 * 1. the commit point: a patch that writes the claimer's random token into the key document, on condition that
 *    its ETag is the one the claimer read (exactly one claimer can win it). A claimer that cannot tell whether its
 *    patch applied (the retry got 412) reads the document back: its own token there means the key is its own;
 * 2. cleanup: the claimed document is deleted (on its claimed ETag, so that a key uploaded again under the same ID
 *    in between is kept). Losing this step loses nothing: claimed documents are invisible to counts, reads and
 *    claims, and one left by a claimer that died is removed by a later claim that finds no free key.
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
      // An upsert: uploading a key ID again replaces the document, claim and all, with a fresh, unclaimed key.
      // The user and device kept as fields too: the partition key may hold them only hashed (see ids.ts).
      await this.conn.requests.upsert('oneTimeKeys.insert', {
        id: docId(algorithm, keyID), pk, k: 'otk', algorithm, keyID, json, userID: keys.userID, deviceID: keys.deviceID,
      });
    }
    return this.countOneTimeKeys(tx, keys.userID, keys.deviceID);
  }

  async selectOneTimeKeys(_tx: Tx, userID: string, deviceID: string, keyIDsWithAlgorithms: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const name of unique(keyIDsWithAlgorithms)) {
      const parts = split(name);
      if (!parts) continue;
      const doc = await this.conn.requests.read<KeyDoc>('oneTimeKeys.select', docId(...parts), this.pk(userID, deviceID));
      if (doc && doc.claim === undefined) out.set(name, doc.json);
    }
    return out;
  }

  async countOneTimeKeys(_tx: Tx, userID: string, deviceID: string): Promise<OneTimeKeysCount> {
    const rows = await this.conn.requests.query<{ algorithm: string }>('oneTimeKeys.count', this.pk(userID, deviceID),
      `SELECT c.algorithm FROM c WHERE c.pk = @pk AND c.k = 'otk' AND ${UNCLAIMED}`);
    const counts = new Map<string, number>();
    for (const r of rows.sort((a, b) => codePointCompare(a.algorithm, b.algorithm))) counts.set(r.algorithm, (counts.get(r.algorithm) ?? 0) + 1);
    return { userID, deviceID, keyCount: counts };
  }

  async selectAndDeleteOneTimeKey(_tx: Tx, userID: string, deviceID: string, algorithm: string): Promise<readonly [string, string] | null> {
    const pk = this.pk(userID, deviceID);
    const r = this.conn.requests;
    for (;;) {
      const candidates = await r.query<KeyDoc & { _etag: string }>('oneTimeKeys.claim', pk,
        `SELECT TOP ${CLAIM_CANDIDATES} c.id, c.keyID, c.json, c._etag FROM c WHERE c.pk = @pk AND c.k = 'otk' AND c.algorithm = @algorithm AND ${UNCLAIMED}`,
        [{ name: '@algorithm', value: algorithm }]);
      if (candidates.length === 0) {
        await this.removeStaleClaims(pk, algorithm);
        return null;
      }
      for (let i = candidates.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [candidates[i], candidates[j]] = [candidates[j]!, candidates[i]!];
      }
      for (const c of candidates) {
        const token = randomUUID();
        let claimed = await r.patch<KeyDoc>('oneTimeKeys.claim', c.id, pk,
          [{ op: 'set', path: '/claim', value: token }, { op: 'set', path: '/claimedAt', value: Date.now() }], { ifMatch: c._etag });
        if (!claimed) {
          // Another claimer won it, it is gone, or our own patch applied and only its answer was lost: look.
          const now = await r.read<KeyDoc>('oneTimeKeys.claim', c.id, pk);
          if (now?.claim !== token) continue;
          claimed = now;
        }
        await r.deleteIfMatch('oneTimeKeys.claim', c.id, pk, claimed._etag);
        return [`${algorithm}:${c.keyID}`, c.json] as const;
      }
    }
  }

  /** Deletes claimed documents whose claimer never deleted them (it died between the two steps). */
  private async removeStaleClaims(pk: string, algorithm: string): Promise<void> {
    const r = this.conn.requests;
    const stale = await r.query<{ id: string; _etag: string }>('oneTimeKeys.claim', pk,
      "SELECT c.id, c._etag FROM c WHERE c.pk = @pk AND c.k = 'otk' AND c.algorithm = @algorithm AND IS_DEFINED(c.claim) AND c.claimedAt < @before",
      [{ name: '@algorithm', value: algorithm }, { name: '@before', value: Date.now() - STALE_CLAIM_MS }]);
    for (const doc of stale) await r.deleteIfMatch('oneTimeKeys.claim', doc.id, pk, doc._etag);
  }
}

interface KeyDoc {
  id: string;
  keyID: string;
  json: string;
  /** The token of the claimer that took this key (absent while the key is free). */
  claim?: string;
  claimedAt?: number;
}

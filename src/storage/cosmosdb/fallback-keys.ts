import { inject, injectable } from 'inversify';
import { StoreUnavailableError } from '../../types/errors.js';
import type { FallbackKeysTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { docId } from './ids.js';
import { codePointCompare } from './order.js';
import type { DocMeta } from './requests.js';

interface FallbackDoc {
  userID: string;
  deviceID: string;
  algorithm: string;
  keyID: string;
  json: string;
  used: boolean;
  tsAdded: number;
}

/** The same key: a re-upload of it keeps its used mark, and a claim that marked it may hand it out. */
const sameKey = (a: { keyID: string; json: string }, b: { keyID: string; json: string }) => a.keyID === b.keyID && a.json === b.json;

/**
 * fallback_keys on Cosmos DB: a document per (device, algorithm), `fbk` in the user's key partition (`keys|<user>`,
 * beside the user's device keys), so a device's fallback keys are one single-partition query away.
 *
 * A claim hands a key out only once it is marked used (the commit point): it reads the document and, if the key is
 * not used yet, patches `used` on the ETag it read, so a key uploaded in between is never marked by a claim of the
 * one before. A claimer whose patch got no answer (or whose retry met the changed document) reads the document
 * back: the same key, used, means its claim took (a used key may be handed out again, as the spec says); another
 * key means an upload came between, and the claim starts again on it. A claim that fails before the mark hands
 * nothing out and leaves the key as it was.
 */
@injectable()
export class CosmosFallbackKeysTable implements FallbackKeysTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private pk(userID: string) {
    return this.conn.pk('keys', userID);
  }

  /**
   * A read, then an upsert of each key that differs from the stored one: the same key uploaded again is left as it
   * is, used mark and all. Two uploads at once: the last write stands, unused, as it would on SQL.
   */
  async upsertFallbackKeys(_tx: Tx, userID: string, deviceID: string, keys: readonly (readonly [string, string, string])[]): Promise<void> {
    const r = this.conn.requests;
    const pk = this.pk(userID);
    const stored = await r.readMany<FallbackDoc>('fallbackKeys.upsert', keys.map(([algorithm]) => ({ id: docId('fbk', deviceID, algorithm), pk })));
    const changed = keys.filter(([, keyID, json], i) => !stored[i] || !sameKey(stored[i]!, { keyID, json }));
    const tsAdded = Math.floor(Date.now() / 1000);
    await r.upsertMany('fallbackKeys.upsert', changed.map(([algorithm, keyID, json]) => ({
      id: docId('fbk', deviceID, algorithm), pk, k: 'fbk', userID, deviceID, algorithm, keyID, json, used: false, tsAdded,
    })));
  }

  async selectUnusedFallbackKeyAlgorithms(_tx: Tx, userID: string, deviceID: string): Promise<string[]> {
    const rows = await this.conn.requests.query<{ algorithm: string }>('fallbackKeys.selectUnused', this.pk(userID),
      "SELECT c.algorithm FROM c WHERE c.pk = @pk AND c.k = 'fbk' AND c.deviceID = @device AND c.used = false",
      [{ name: '@device', value: deviceID }]);
    return rows.map((row) => row.algorithm).sort(codePointCompare);
  }

  async claimFallbackKey(_tx: Tx, userID: string, deviceID: string, algorithm: string): Promise<readonly [string, string] | null> {
    const r = this.conn.requests;
    const id = docId('fbk', deviceID, algorithm);
    const pk = this.pk(userID);
    for (;;) {
      const doc = await r.read<FallbackDoc>('fallbackKeys.claim', id, pk);
      if (!doc) return null;
      if (doc.used || await this.markUsed(id, pk, doc)) return [`${algorithm}:${doc.keyID}`, doc.json] as const;
    }
  }

  /** The commit point: true once this key is marked used; false if another key replaced it (or it went) first. */
  private async markUsed(id: string, pk: string, doc: FallbackDoc & DocMeta): Promise<boolean> {
    const r = this.conn.requests;
    let unanswered: unknown;
    try {
      if (await r.patch('fallbackKeys.claim', id, pk, [{ op: 'set', path: '/used', value: true }], { ifMatch: doc._etag })) return true;
    } catch (e) {
      if (!(e instanceof StoreUnavailableError && e.retryable)) throw e;
      unanswered = e;
    }
    const now = await r.read<FallbackDoc>('fallbackKeys.claim', id, pk);
    if (now?.used === true && sameKey(now, doc)) return true;
    // Not marked. A patch that got no answer at all failed before the commit point: the claim fails, the key stays.
    if (unanswered !== undefined) throw unanswered;
    return false;
  }

  async deleteFallbackKeys(_tx: Tx, userID: string, deviceID: string): Promise<void> {
    const pk = this.pk(userID);
    const docs = await this.conn.requests.query<{ id: string }>('fallbackKeys.delete', pk,
      "SELECT c.id FROM c WHERE c.pk = @pk AND c.k = 'fbk' AND c.deviceID = @device", [{ name: '@device', value: deviceID }]);
    await this.conn.requests.deleteMany('fallbackKeys.delete', docs.map((d) => ({ id: d.id, pk })));
  }
}

import { randomUUID } from 'node:crypto';
import { inject, injectable } from 'inversify';
import { InvalidInputError, StorageError, StoreUnavailableError } from '../../types/errors.js';
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
 * How many claimed documents wait for their delete before they are deleted together, in one bulk request (a claim
 * that finds no free key deletes every one waiting).
 */
const CLEANUP_BATCH = 16;

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
 *    in between is kept), later and in bulk with others (see `cleanUp`), so that a claim costs a query and a patch.
 *    Losing this step loses nothing: claimed documents are invisible to counts, reads and claims. A claim past
 *    step 1 hands its key out whatever becomes of its delete, and a document left by a claimer that died (or whose
 *    delete was still waiting when its process ended) is removed by a later claim that finds no free key.
 * A claim that fails before step 1 applied leaves the key claimable.
 */
@injectable()
export class CosmosOneTimeKeysTable implements OneTimeKeysTable {
  /** Claimed documents waiting for their delete (see `cleanUp`), by partition and id. */
  private readonly waitingDeletes = new Map<string, { pk: string; id: string; etag: string }>();

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
        await this.cleanUpWaiting(true);
        await this.removeStaleClaims(pk, algorithm);
        return null;
      }
      for (let i = candidates.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [candidates[i], candidates[j]] = [candidates[j]!, candidates[i]!];
      }
      for (const c of candidates) {
        const claimed = await this.reserve(pk, c);
        if (!claimed) continue;
        // Past the commit point: the key is this claim's and is handed out, whatever becomes of the cleanup.
        await this.cleanUp(pk, c.id, claimed._etag);
        return [`${algorithm}:${c.keyID}`, c.json] as const;
      }
    }
  }

  /**
   * The commit point: writes a fresh token into the candidate on its ETag. Answers the claimed document if this
   * claim won it, undefined if another claimer did or it is gone. When the patch's answer is lost (its retry met
   * the changed document, or no try was answered at all), the document says whether it applied: our token there
   * means the key is ours. A claim that fails here (the read back failing too) has not handed the key out and
   * throws; the key stays with whoever the document names.
   */
  private async reserve(pk: string, c: KeyDoc & { _etag: string }): Promise<(KeyDoc & { _etag: string }) | undefined> {
    const r = this.conn.requests;
    const token = randomUUID();
    let unanswered: unknown;
    try {
      const patched = await r.patch<KeyDoc>('oneTimeKeys.claim', c.id, pk,
        [{ op: 'set', path: '/claim', value: token }, { op: 'set', path: '/claimedAt', value: Date.now() }], { ifMatch: c._etag });
      if (patched) return patched;
    } catch (e) {
      if (!(e instanceof StoreUnavailableError && e.retryable)) throw e;
      unanswered = e;
    }
    const now = await r.read<KeyDoc>('oneTimeKeys.claim', c.id, pk);
    if (now?.claim === token) return now;
    // Not ours. A patch that got no answer at all failed before the commit point: the claim fails, the key is left.
    if (unanswered !== undefined) throw unanswered;
    return undefined;
  }

  /**
   * Queues a claimed document's delete (on its claimed ETag, so that a key uploaded again under the same ID in
   * between is kept), and sends the waiting ones together once there are CLEANUP_BATCH. Best effort: a claimed
   * document is invisible to counts, reads and claims, so one this cannot delete now (the store is unreachable)
   * loses nothing: it waits for the next batch, and one whose claimer died is removed by a later claim that finds no
   * free key.
   */
  private async cleanUp(pk: string, id: string, etag: string): Promise<void> {
    this.waitingDeletes.set(`${pk}\u0000${id}`, { pk, id, etag });
    await this.cleanUpWaiting(false);
  }

  /** Deletes the claimed documents waiting for it in one bulk request (`all`, or once CLEANUP_BATCH wait); best effort. */
  private async cleanUpWaiting(all: boolean): Promise<void> {
    const waiting = [...this.waitingDeletes];
    if (waiting.length === 0 || (!all && waiting.length < CLEANUP_BATCH)) return;
    for (const [key] of waiting) this.waitingDeletes.delete(key);
    try {
      await this.conn.requests.deleteManyIfMatch('oneTimeKeys.claim', waiting.map(([, d]) => d));
    } catch (e) {
      if (!(e instanceof StorageError)) throw e;
      for (const [key, d] of waiting) if (!this.waitingDeletes.has(key)) this.waitingDeletes.set(key, d);
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

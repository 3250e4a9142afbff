import { randomUUID } from 'node:crypto';
import { inject, injectable } from 'inversify';
import { InvalidInputError, StorageError, StoreUnavailableError } from '../../types/errors.js';
import { preview } from '../../types/input.js';
import { unique } from '../shared/contracts.js';
import type { OneTimeKeys, OneTimeKeysCount, OneTimeKeysTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import type { Doc } from './requests.js';
import { docId } from './ids.js';
import { codePointCompare } from './order.js';

const split = (name: string): [string, string] | undefined => {
  const colon = name.indexOf(':');
  return colon < 0 ? undefined : [name.slice(0, colon), name.slice(colon + 1)];
};

/** How many candidates a claim looks at, so that concurrent claimers mostly pick different keys. */
const CLAIM_CANDIDATES = 16;

/**
 * How many claimed documents of other devices may wait for their delete before a claim's request carries them all
 * (a claim always carries its own device's, and a claim that finds no free key deletes every one waiting).
 */
const CLEANUP_BATCH = 16;

/** A claimed key document older than this was left by a claimer that died before deleting it: safe to remove. */
const STALE_CLAIM_MS = 5 * 60_000;

/** Only keys nobody has claimed: a claimed document is already handed out, whether or not it is deleted yet. */
const UNCLAIMED = 'NOT IS_DEFINED(c.claim)';

/** A claimed document waiting for its delete, on the ETag its claim gave it. */
interface WaitingDelete { pk: string; id: string; etag: string }

/**
 * one_time_keys on Cosmos DB: a partition per device (`otk|<user>|<device>`), a document per key.
 *
 * A claim must hand every key out exactly once, even when answers are lost (a request times out after the server
 * applied it, and the retry meets the changed document). So claiming is two steps:
 * 1. the commit point: a replace that writes the claimer's random token into the key document, on condition that
 *    its ETag is the one the claimer read (exactly one claimer can win it; a replace, not a patch, because it is
 *    sent in bulk and the emulator takes no patch there). A claimer that cannot tell whether its replace applied
 *    (it got 412, which in bulk may be a retry meeting its own change, or no try was answered) reads the document
 *    back: its own token there means the key is its own;
 * 2. cleanup: the claimed document is deleted (on its claimed ETag, so that a key uploaded again under the same ID
 *    in between is kept) by a later claim: the replace goes through the bulk path, and the deletes waiting for it
 *    go in the same bulk request (its device's, and every device's once CLEANUP_BATCH wait; see `carriedDeletes`),
 *    so that a claim costs a query and one request. Losing this step loses nothing: claimed documents are
 *    invisible to counts, reads and claims. A claim past step 1 hands its key out whatever becomes of the deletes
 *    it carries, and a document left by a claimer that died (or whose delete was still waiting when its process
 *    ended) is removed by a later claim that finds no free key.
 * A claim that fails before step 1 applied leaves the key claimable.
 */
@injectable()
export class CosmosOneTimeKeysTable implements OneTimeKeysTable {
  /** Claimed documents waiting for their delete (see `carriedDeletes`), by partition and id. */
  private readonly waitingDeletes = new Map<string, WaitingDelete>();

  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private pk(userID: string, deviceID: string) {
    return this.conn.pk('otk', userID, deviceID);
  }

  /**
   * A key's document. The user and device kept as fields too: the partition key may hold them only hashed (see
   * ids.ts). A claim rewrites it whole, with its token.
   */
  private keyDoc(userID: string, deviceID: string, algorithm: string, keyID: string, json: string): KeyDoc & Doc {
    return { id: docId(algorithm, keyID), pk: this.pk(userID, deviceID), k: 'otk', algorithm, keyID, json, userID, deviceID };
  }

  async insertOneTimeKeys(tx: Tx, keys: OneTimeKeys): Promise<OneTimeKeysCount> {
    const rows = [...keys.keyJSON].map(([name, json]) => {
      const parts = split(name);
      if (!parts) throw new InvalidInputError(`one-time key names are "algorithm:keyID", got ${preview(name)}`);
      return [...parts, json] as const;
    });
    for (const [algorithm, keyID, json] of rows) {
      // An upsert: uploading a key ID again replaces the document, claim and all, with a fresh, unclaimed key.
      await this.conn.requests.upsert('oneTimeKeys.insert', this.keyDoc(keys.userID, keys.deviceID, algorithm, keyID, json));
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
    for (;;) {
      const candidates = await this.conn.requests.query<Candidate>('oneTimeKeys.claim', pk,
        `SELECT TOP ${CLAIM_CANDIDATES} c.id, c.keyID, c.json, c._etag FROM c WHERE c.pk = @pk AND c.k = 'otk' AND c.algorithm = @algorithm AND ${UNCLAIMED}`,
        [{ name: '@algorithm', value: algorithm }]);
      if (candidates.length === 0) {
        await this.deleteClaimed([...this.waitingDeletes.values()]);
        await this.removeStaleClaims(pk, algorithm);
        return null;
      }
      for (let i = candidates.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [candidates[i], candidates[j]] = [candidates[j]!, candidates[i]!];
      }
      for (const c of candidates) {
        const claimedETag = await this.reserve(this.keyDoc(userID, deviceID, algorithm, c.keyID, c.json), c._etag);
        if (claimedETag === undefined) continue;
        // Past the commit point: the key is this claim's and is handed out; its delete waits for a later claim.
        this.waitingDeletes.set(`${pk}\u0000${c.id}`, { pk, id: c.id, etag: claimedETag });
        return [`${algorithm}:${c.keyID}`, c.json] as const;
      }
    }
  }

  /**
   * The commit point: writes a fresh token into the candidate on the ETag it was read with, in one bulk request
   * with the deletes this claim carries. Answers the claimed document's ETag if this claim won it, undefined if
   * another claimer did or it is gone. When the replace's answer is lost (its retry met the changed document, or no
   * try was answered at all), the document says whether it applied: our token there means the key is ours. A claim
   * that fails here (the read back failing too) has not handed the key out and throws; the key stays with whoever
   * the document names.
   */
  private async reserve(candidate: KeyDoc & Doc, etag: string): Promise<string | undefined> {
    const r = this.conn.requests;
    const token = randomUUID();
    // Both calls queue their operations before either awaits: they go out in one bulk request.
    const replaced = r.replaceIfMatchInBulk('oneTimeKeys.claim', { ...candidate, claim: token, claimedAt: Date.now() }, etag)
      .then((written) => ({ written }), (failure: unknown) => ({ failure }));
    const [answer] = await Promise.all([replaced, this.deleteClaimed(this.carriedDeletes(candidate.pk))]);
    if ('written' in answer && answer.written !== undefined) return answer.written;
    if ('failure' in answer && !(answer.failure instanceof StoreUnavailableError && answer.failure.retryable)) throw answer.failure;
    const now = await r.read<KeyDoc>('oneTimeKeys.claim', candidate.id, candidate.pk);
    if (now?.claim === token) return now._etag;
    // Not ours. A replace that got no answer at all failed before the commit point: the claim fails, the key is left.
    if ('failure' in answer) throw answer.failure;
    return undefined;
  }

  /**
   * The waiting deletes a claim in `pk` carries in its request: those of its own partition, which its request goes
   * to anyway, and all of them once CLEANUP_BATCH wait (on an account of several physical partitions, the ones of
   * other partition key ranges go in a request each, in parallel: hence the batch).
   */
  private carriedDeletes(pk: string): WaitingDelete[] {
    const all = this.waitingDeletes.size >= CLEANUP_BATCH;
    return [...this.waitingDeletes.values()].filter((d) => all || d.pk === pk);
  }

  /**
   * Deletes claimed documents, each on its claimed ETag (so that a key uploaded again under the same ID in between
   * is kept), in one bulk request (with whatever else is sent in bulk in this turn). Best effort: a claimed
   * document is invisible to counts, reads and claims, so one this cannot delete now (the store is unreachable)
   * loses nothing: it waits for the next claim, and one whose claimer died is removed by a later claim that finds
   * no free key.
   */
  private async deleteClaimed(deletes: readonly WaitingDelete[]): Promise<void> {
    if (deletes.length === 0) return;
    const keyOf = (d: WaitingDelete) => `${d.pk}\u0000${d.id}`;
    for (const d of deletes) this.waitingDeletes.delete(keyOf(d));
    try {
      await this.conn.requests.deleteManyIfMatch('oneTimeKeys.claim', deletes);
    } catch (e) {
      if (!(e instanceof StorageError)) throw e;
      for (const d of deletes) if (!this.waitingDeletes.has(keyOf(d))) this.waitingDeletes.set(keyOf(d), d);
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

/** A free key a claim may take, with the ETag its replace is conditional on. */
type Candidate = Pick<KeyDoc, 'id' | 'keyID' | 'json'> & { _etag: string };

interface KeyDoc {
  id: string;
  algorithm: string;
  keyID: string;
  json: string;
  userID: string;
  deviceID: string;
  /** The token of the claimer that took this key (absent while the key is free). */
  claim?: string;
  claimedAt?: number;
}

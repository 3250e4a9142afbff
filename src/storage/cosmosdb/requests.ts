import type { Container, ItemDefinition, JSONObject, JSONValue, OperationInput, OperationResponse, PatchOperation, PriorityLevel, SqlParameter } from '@azure/cosmos';
import { StorageError, StoreUnavailableError } from '../../types/errors.js';
import type { RequestAccounting } from '../shared/request-accounting.js';
import { failureOf, statusOf } from './failures.js';

/** Cosmos system properties every document read back carries. */
export interface DocMeta {
  readonly id: string;
  readonly pk: string;
  readonly _etag: string;
}

/** Every document this driver writes: an id, the partition key value, and a kind. */
export interface Doc extends ItemDefinition {
  id: string;
  pk: string;
  /** The document's kind (one per logical table), so a query can never pick up another table's documents. */
  k: string;
}

/** A Cosmos DB request failed in a way retries could not fix. The message never holds the account key. */
export class CosmosRequestError extends StorageError {
  readonly code = 'COSMOS';
  constructor(message: string, readonly status: number | string | undefined, options?: { cause?: unknown }) {
    super(message, options);
  }
}

interface CosmosError { requestCharge?: number }

/** A single request worth retrying here: transient, but not a 429, which the SDK has retried already (retryOptions). */
const retriedHere = (e: unknown) => {
  const f = failureOf(e);
  return f.transient && f.status !== 429;
};

/** The most operations the SDK sends in one bulk request (Cosmos DB's limit for a batch). */
const BULK_OPERATIONS = 100;
/** What a bulk operation may end with: done (200, 201, 204), absent (404), exists (409), changed meanwhile (412). */
const FINAL_STATUSES = new Set([200, 201, 204, 404, 409, 412]);
/** A bulk operation's outcome, with the document's ETag where one was read or written. */
type BulkResult = { statusCode: number; resourceBody?: JSONObject; eTag?: string };

/** Statuses worth sending the operation again for: throttled, unavailable, timed out, retry-with. */
const TRANSIENT_STATUSES = new Set([429, 503, 408, 449, 410]);
/** A bulk operation waiting to be sent, and how to answer its caller. */
interface QueuedOperation { operation: string; op: OperationInput; resolve: (r: BulkResult) => void; reject: (e: unknown) => void }

/** `items` in runs of at most `size`, in order. */
function chunked<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

export interface RetryPolicy {
  /**
   * Attempts for a transient failure (503, timeout, reset) on top of the first. A single request's 429s are the
   * SDK's (retryOptions); a bulk request still throttled once the SDK gave up is tried again here, after its retry-after.
   */
  readonly transientRetries: number;
  readonly baseDelayMs: number;
}

/**
 * Every request to the container goes through here: it adds up request charges per operation, retries transient
 * failures, and turns the SDK's status codes into the few outcomes the tables need. Retrying a write is safe
 * because every write this driver makes is idempotent (creates whose conflict the caller resolves, upserts,
 * deletes, ETag-conditional replaces); the only exception, counter increments, at worst leaves a gap.
 */
export class CosmosRequests {
  constructor(
    private readonly container: Container,
    private readonly accounting: RequestAccounting,
    private readonly retry: RetryPolicy,
    /** The account endpoint, for messages (user info and secrets already removed). */
    private readonly target: string,
    /** Options every request carries: its priority, where one is configured (priority-based execution). */
    private readonly base: { priorityLevel?: PriorityLevel } = {},
  ) {}

  /**
   * Runs one request, retrying transient failures. Reads (point reads, query pages) are retried by the SDK itself
   * on resets, timeouts and 503s (ten tries, a second apart): retrying them again here would only multiply an
   * outage's wait, so `write` says whether the driver's own retries apply.
   */
  private async attempt<T>(operation: string, run: () => Promise<T & { requestCharge?: number }>, write = true): Promise<T> {
    const retries = write ? this.retry.transientRetries : 0;
    for (let n = 0; ; n++) {
      try {
        const res = await run();
        this.accounting.record(operation, res.requestCharge ?? 0);
        return res;
      } catch (e) {
        this.accounting.record(operation, (e as CosmosError)?.requestCharge ?? 0);
        if (n < retries && retriedHere(e)) {
          await new Promise((r) => setTimeout(r, this.retry.baseDelayMs * 2 ** n));
          continue;
        }
        throw e;
      }
    }
  }

  private fail(operation: string, e: unknown): never {
    const { status, transient } = failureOf(e);
    const why = (e as Error)?.message?.split('\n')[0] ?? String(e);
    if (transient) {
      // Retried as configured and still failing: the account cannot be reached (or is overloaded) right now.
      throw new StoreUnavailableError(`Cosmos DB at ${this.target}: ${operation} still failed after retries (status ${status ?? 'unknown'}: ${why}). ` +
        'It is safe to retry: every write is idempotent. Fix: check the network and the account, or raise cosmosdb.transient_retries / max_retry_attempts.', true, { cause: e });
    }
    if (status === 401 || status === 403) {
      throw new StoreUnavailableError(`Cosmos DB at ${this.target} refused the credentials (status ${status}). Fix: check cosmosdb.key / COSMOS_KEY (or the connection string).`, false, { cause: e });
    }
    throw new CosmosRequestError(`Cosmos DB ${operation} failed (status ${status ?? 'unknown'}): ${why}`, status, { cause: e });
  }

  /** A point read; undefined if absent. */
  async read<T>(operation: string, id: string, pk: string): Promise<(T & DocMeta) | undefined> {
    try {
      const res = await this.attempt(operation, () => this.container.item(id, pk).read<T & DocMeta>(this.base), false);
      return res.resource;
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      this.fail(operation, e);
    }
  }

  /**
   * Creates the document; false if one with that id already exists in the partition (nothing written). Through the
   * bulk path, like upsert: writes that callers issue at the same moment (a redaction's record and its target's list,
   * two new users' mappings) go out in one request.
   */
  async create(operation: string, doc: Doc): Promise<boolean> {
    const [created] = await this.createMany(operation, [doc]);
    return created!;
  }

  async upsert(operation: string, doc: Doc): Promise<void> {
    await this.upsertMany(operation, [doc]);
  }

  /** Replaces the document if its ETag is still `etag`; false if someone changed (or deleted) it first. */
  async replaceIfMatch(operation: string, doc: Doc, etag: string): Promise<boolean> {
    try {
      await this.attempt(operation, () => this.container.item(doc.id, doc.pk).replace(doc, { ...this.base, accessCondition: { type: 'IfMatch', condition: etag } }));
      return true;
    } catch (e) {
      if (statusOf(e) === 412 || statusOf(e) === 404) return false;
      this.fail(operation, e);
    }
  }

  /**
   * Applies patch operations; undefined if the document is missing, or if `ifMatch` is given and the document's
   * ETag differs. (No `condition` filter: the emulator evaluates one against whichever document of the container
   * has the same id, not the one patched, so nothing here depends on it; see `patchWhen`.)
   */
  async patch<T>(
    operation: string, id: string, pk: string, operations: PatchOperation[], options: { ifMatch?: string } = {},
  ): Promise<(T & DocMeta) | undefined> {
    try {
      const requestOptions = options.ifMatch ? { ...this.base, accessCondition: { type: 'IfMatch', condition: options.ifMatch } } : this.base;
      const res = await this.attempt(operation, () => this.container.item(id, pk).patch<T & DocMeta>(operations, requestOptions));
      return res.resource;
    } catch (e) {
      if (statusOf(e) === 404 || statusOf(e) === 412) return undefined;
      this.fail(operation, e);
    }
  }

  /**
   * Patches the document if `when` holds for it, atomically: read, decide, patch on the ETag read, again on a race.
   * 'missing' if there is no such document, 'declined' if `when` is false.
   */
  async patchWhen<T>(
    operation: string, id: string, pk: string, when: (doc: T & DocMeta) => boolean, operations: (doc: T & DocMeta) => PatchOperation[],
  ): Promise<'patched' | 'declined' | 'missing'> {
    for (;;) {
      const doc = await this.read<T>(operation, id, pk);
      if (!doc) return 'missing';
      if (!when(doc)) return 'declined';
      if (await this.patch(operation, id, pk, operations(doc), { ifMatch: doc._etag })) return 'patched';
    }
  }

  /** Deletes the document if its ETag is still `etag`; false if it is gone or changed (then it is left alone). */
  async deleteIfMatch(operation: string, id: string, pk: string, etag: string): Promise<boolean> {
    try {
      await this.attempt(operation, () => this.container.item(id, pk).delete({ ...this.base, accessCondition: { type: 'IfMatch', condition: etag } }));
      return true;
    } catch (e) {
      if (statusOf(e) === 404 || statusOf(e) === 412) return false;
      this.fail(operation, e);
    }
  }

  /**
   * Point reads of many documents in bulk: about one request per 100 (the SDK sends a partition range's operations
   * together, 100 at most each). Answers in input order, undefined for a document that is absent.
   */
  async readMany<T>(operation: string, refs: readonly { id: string; pk: string }[]): Promise<((T & DocMeta) | undefined)[]> {
    const results = await this.bulk(operation, refs.map((r) => ({ operationType: 'Read' as const, id: r.id, partitionKey: r.pk })));
    return results.map((r) => (r.statusCode === 200 ? r.resourceBody as unknown as T & DocMeta : undefined));
  }

  /** Creates in bulk, as `create` does one: for each document, true if created, false if one with its id existed. */
  async createMany(operation: string, docs: readonly Doc[]): Promise<boolean[]> {
    const results = await this.bulk(operation, docs.map((d) => ({ operationType: 'Create' as const, partitionKey: d.pk, resourceBody: d as unknown as JSONValue as never })));
    return results.map((r) => r.statusCode === 201);
  }

  /** Upserts in bulk. */
  async upsertMany(operation: string, docs: readonly Doc[]): Promise<void> {
    await this.bulk(operation, docs.map((d) => ({ operationType: 'Upsert' as const, partitionKey: d.pk, resourceBody: d as unknown as JSONValue as never })));
  }

  /** Replaces in bulk, each on condition that its ETag is still the one given: true where it was. */
  async replaceManyIfMatch(operation: string, docs: readonly { doc: Doc; etag: string }[]): Promise<boolean[]> {
    const results = await this.bulk(operation, docs.map(({ doc, etag }) => ({
      operationType: 'Replace' as const, id: doc.id, partitionKey: doc.pk, resourceBody: doc as unknown as JSONValue as never, ifMatch: etag,
    })));
    return results.map((r) => r.statusCode === 200);
  }

  /**
   * `replaceIfMatch` through the bulk path, so that it goes out in one request with the other bulk operations of
   * this turn: the document's new ETag, or undefined if someone changed (or deleted) it first. A bulk request whose
   * answer was lost is sent again, and a replace that applied on the lost try meets its own change then (412):
   * undefined too, so a caller that must know reads the document back (as it must, too, for a replace answered
   * without its ETag, which Cosmos DB's bulk answers carry but nothing here depends on).
   */
  async replaceIfMatchInBulk(operation: string, doc: Doc, etag: string): Promise<string | undefined> {
    const [result] = await this.bulk(operation, [{
      operationType: 'Replace' as const, id: doc.id, partitionKey: doc.pk, resourceBody: doc as unknown as JSONValue as never, ifMatch: etag,
    }]);
    if (result!.statusCode !== 200) return undefined;
    return result!.eTag ?? (result!.resourceBody as { _etag?: string } | undefined)?._etag;
  }

  /** Deletes in bulk, each on condition that its ETag is still the one given: true where it was (and is now gone). */
  async deleteManyIfMatch(operation: string, refs: readonly { id: string; pk: string; etag: string }[]): Promise<boolean[]> {
    const results = await this.bulk(operation, refs.map((r) => ({ operationType: 'Delete' as const, id: r.id, partitionKey: r.pk, ifMatch: r.etag })));
    return results.map((r) => r.statusCode === 204);
  }

  /** Deletes in bulk: true where the document was there. */
  async deleteMany(operation: string, refs: readonly { id: string; pk: string }[]): Promise<boolean[]> {
    const results = await this.bulk(operation, refs.map((r) => ({ operationType: 'Delete' as const, id: r.id, partitionKey: r.pk })));
    return results.map((r) => r.statusCode === 204);
  }

  /**
   * A transactional batch: operations on one logical partition in one request, applied all or none on Azure. (The
   * emulator applies them in order and stops at the first that fails, keeping those before it: callers order a
   * batch so that this is safe too; see CosmosRoomCommit.) Transient failures are retried as a single request's are;
   * the caller reads back what a retry finds changed (an answer lost after the batch applied). Answers each
   * operation's status, with the document written where there is one.
   */
  async batch(operation: string, pk: string, ops: readonly OperationInput[]): Promise<{ statusCode: number; resourceBody?: JSONObject }[]> {
    if (ops.length > BULK_OPERATIONS) throw new CosmosRequestError(`a transactional batch holds at most ${BULK_OPERATIONS} operations, not ${ops.length}`, undefined);
    try {
      const res = await this.attempt(operation, async () => {
        // Fresh operation objects per try: the SDK rewrites an operation's partition key in place as it sends it.
        const r = await this.container.items.batch(ops.map((op) => ({ ...op })), pk, this.base);
        const result = r.result ?? [];
        return { result, requestCharge: result.reduce((sum, o) => sum + (o.requestCharge ?? 0), 0) };
      });
      return res.result.map((o) => ({ statusCode: o.statusCode, ...(o.resourceBody ? { resourceBody: o.resourceBody } : {}) }));
    } catch (e) {
      this.fail(operation, e);
    }
  }

  /** Bulk operations asked for in this turn of the event loop, sent together at its end (see `bulk`). */
  private queued: QueuedOperation[] = [];

  /**
   * Runs operations in bulk and answers each with its final status (2xx, 404, 409 or 412; any other is an error).
   * Bulk calls made in the same turn of the event loop (the reads a caller issues together, say) go out together:
   * 100 operations per request, as the partition range's limit allows. Transient failures are retried as single
   * requests are, up to `transientRetries` times: a bulk request that fails as a whole (429, 503, 408, a timeout, a
   * reset) is sent again, after the server's retry-after for a 429; within an answered bulk request each operation
   * is judged by its own status, and only those that failed transiently are sent again. That is safe because every
   * operation this driver sends in bulk may be repeated (a create whose 409 the caller resolves, an upsert, a read,
   * a conditional replace, a delete whose 404 means done). What still fails after the retries is a retryable
   * StoreUnavailableError.
   *
   * Through `items.bulk`, deprecated in favour of `executeBulkOperations`, on purpose: in the 4.9 SDK the newer call
   * holds a batch of fewer than 100 operations back for a second (its partial-batch interval), so every small bulk
   * read would wait 1 s. `items.bulk` sends at once; it takes at most 100 operations per partition range, hence the
   * chunks. It keeps only the message of a request that failed as a whole: `bulkFailureTag` (an SDK plugin) puts
   * the status there, for `failureOf` to read.
   */
  private bulk(operation: string, ops: readonly OperationInput[]): Promise<BulkResult[]> {
    if (ops.length === 0) return Promise.resolve([]);
    const answers = ops.map((op) => new Promise<BulkResult>((resolve, reject) => this.queued.push({ operation, op, resolve, reject })));
    if (this.queued.length === ops.length) setImmediate(() => void this.flush());
    return Promise.all(answers);
  }

  private async flush(): Promise<void> {
    let pending = this.queued;
    this.queued = [];
    try {
      for (let n = 0; pending.length > 0; n++) {
        const round = await Promise.all(chunked(pending, BULK_OPERATIONS).map((chunk) => this.sendBulk(chunk)));
        const again = round.flatMap((r) => r.again);
        if (again.length === 0) return;
        const lastError = round.find((r) => r.again.length > 0)!.error;
        if (n >= this.retry.transientRetries) {
          for (const item of again) this.settleFailed(item, lastError);
          return;
        }
        const retryAfterMs = Math.max(0, ...round.map((r) => r.retryAfterMs));
        await new Promise((r) => setTimeout(r, Math.max(retryAfterMs, this.retry.baseDelayMs * 2 ** n)));
        pending = again;
      }
    } catch (e) {
      // Nothing above throws by design; should something, no caller is left waiting (a settled promise ignores it).
      for (const item of pending) item.reject(e);
    }
  }

  /**
   * Sends one bulk request and settles what it can: final statuses resolve, permanent failures reject. Answers the
   * operations to send again (failed transiently), the error to report should they fail for good, and the wait the
   * server asked for.
   */
  private async sendBulk(chunk: readonly QueuedOperation[]): Promise<{ again: QueuedOperation[]; error: unknown; retryAfterMs: number }> {
    // One request, counted under the operation of its first item (the others ride along; see the charges below).
    const operation = chunk[0]!.operation;
    let results: OperationResponse[];
    try {
      results = await this.container.items.bulk(chunk.map((item) => item.op), { continueOnError: true }, this.base);
    } catch (e) {
      this.accounting.record(operation, (e as CosmosError)?.requestCharge ?? 0);
      const failure = failureOf(e);
      if (failure.transient) return { again: [...chunk], error: e, retryAfterMs: failure.retryAfterMs ?? 0 };
      for (const item of chunk) this.settleFailed(item, e);
      return { again: [], error: e, retryAfterMs: 0 };
    }
    // The request under its first operation; each other operation's charge under its own (see chargeAlong).
    const charges = new Map<string, number>([[operation, 0]]);
    results.forEach((r, j) => charges.set(chunk[j]!.operation, (charges.get(chunk[j]!.operation) ?? 0) + (r.requestCharge ?? 0)));
    for (const [op, charge] of charges) {
      if (op === operation) this.accounting.record(op, charge);
      else this.accounting.chargeAlong(op, charge);
    }
    const again: QueuedOperation[] = [];
    let error: unknown;
    let retryAfterMs = 0;
    results.forEach((r, j) => {
      const item = chunk[j]!;
      const status = r.statusCode;
      if (FINAL_STATUSES.has(status)) {
        item.resolve({ statusCode: status, ...(r.resourceBody ? { resourceBody: r.resourceBody } : {}), ...(r.eTag ? { eTag: r.eTag } : {}) });
      } else if (TRANSIENT_STATUSES.has(status)) {
        // The service gives a throttled operation its own wait, next to its status.
        const wait = (r as { retryAfterMilliseconds?: number }).retryAfterMilliseconds;
        error = Object.assign(new Error(`status ${status} for one operation of a bulk request`), { code: status });
        retryAfterMs = Math.max(retryAfterMs, wait ?? 0);
        again.push(item);
      } else {
        this.settleFailed(item, Object.assign(new Error(`unexpected status ${status}`), { code: status }));
      }
    });
    return { again, error, retryAfterMs };
  }

  /** Rejects the operation with what `fail` makes of the error. */
  private settleFailed(item: QueuedOperation, e: unknown): void {
    try {
      this.fail(item.operation, e);
    } catch (failure) {
      item.reject(failure);
    }
  }

  /** Deletes the document; false if it was not there. */
  async delete(operation: string, id: string, pk: string): Promise<boolean> {
    try {
      await this.attempt(operation, () => this.container.item(id, pk).delete(this.base));
      return true;
    } catch (e) {
      if (statusOf(e) === 404) return false;
      this.fail(operation, e);
    }
  }

  /**
   * A query inside one logical partition. The partition key is both in the WHERE clause (`c.pk = @pk`, which the
   * query must contain) and in the request options, and every page is read, following continuation tokens.
   */
  async query<T>(operation: string, pk: string, sql: string, parameters: SqlParameter[] = []): Promise<T[]> {
    return this.queryAll<T>(operation, sql, [{ name: '@pk', value: pk }, ...parameters], pk);
  }

  /**
   * A query across every partition of this tenant: only for rare paths (store statistics), never a hot one. The
   * query must filter on `STARTSWITH(c.pk, @tenant)` so that other tenants' documents are never read.
   */
  async crossPartitionQuery<T>(operation: string, tenantPrefix: string, sql: string, parameters: SqlParameter[] = []): Promise<T[]> {
    if (!/STARTSWITH\(c\.pk, @tenant\)/.test(sql)) throw new Error(`cross-partition query for ${operation} must filter on the tenant`);
    return this.queryAll<T>(operation, sql, [{ name: '@tenant', value: tenantPrefix }, ...parameters], undefined);
  }

  private async queryAll<T>(operation: string, sql: string, parameters: SqlParameter[], pk: string | undefined): Promise<T[]> {
    if (pk !== undefined && !/\bc\.pk = @pk\b/.test(sql)) throw new Error(`query for ${operation} must filter on c.pk = @pk`);
    const iterator = this.container.items.query<T>({ query: sql, parameters }, pk !== undefined ? { ...this.base, partitionKey: pk } : this.base);
    const out: T[] = [];
    try {
      while (iterator.hasMoreResults()) {
        const page = await this.attempt(operation, () => iterator.fetchNext(), false);
        out.push(...page.resources);
      }
    } catch (e) {
      this.fail(operation, e);
    }
    return out;
  }
}

export type { JSONValue };

import type { Container, ItemDefinition, JSONObject, JSONValue, OperationInput, OperationResponse, PatchOperation, SqlParameter } from '@azure/cosmos';
import { StorageError, StoreUnavailableError } from '../../types/errors.js';
import type { RequestAccounting } from '../shared/request-accounting.js';

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

interface CosmosError { code?: number | string; substatus?: number; name?: string; requestCharge?: number; message?: string }
const statusOf = (e: unknown) => (e as CosmosError)?.code;

/** Transient failures worth another try: 503 (service unavailable), 408 and client-side timeouts, connection resets. */
function isTransient(e: unknown): boolean {
  const err = e as CosmosError & { code?: string | number };
  if (err?.name === 'TimeoutError') return true;
  return [503, 408, 449, 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNREFUSED', 'UND_ERR_SOCKET'].includes(err?.code as never);
}

/** The most operations the SDK sends in one bulk request (Cosmos DB's limit for a batch). */
const BULK_OPERATIONS = 100;
/** What a bulk operation may end with: done (200, 201, 204), absent (404), exists (409), changed meanwhile (412). */
const FINAL_STATUSES = new Set([200, 201, 204, 404, 409, 412]);
/** A bulk operation's outcome. */
type BulkResult = { statusCode: number; resourceBody?: JSONObject };

/** Statuses worth sending the operation again for: throttled, unavailable, timed out, retry-with. */
const TRANSIENT_STATUSES = new Set([429, 503, 408, 449, 410]);

export interface RetryPolicy {
  /** Attempts for a transient failure (503, timeout, reset) on top of the first. 429s are the SDK's (retryOptions). */
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
        if (n < retries && isTransient(e)) {
          await new Promise((r) => setTimeout(r, this.retry.baseDelayMs * 2 ** n));
          continue;
        }
        throw e;
      }
    }
  }

  private fail(operation: string, e: unknown): never {
    const status = statusOf(e);
    const why = (e as Error)?.message?.split('\n')[0] ?? String(e);
    if (isTransient(e) || status === 429) {
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
      const res = await this.attempt(operation, () => this.container.item(id, pk).read<T & DocMeta>(), false);
      return res.resource;
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      this.fail(operation, e);
    }
  }

  /** Creates the document; false if one with that id already exists in the partition (nothing written). */
  async create(operation: string, doc: Doc): Promise<boolean> {
    try {
      await this.attempt(operation, () => this.container.items.create(doc));
      return true;
    } catch (e) {
      if (statusOf(e) === 409) return false;
      this.fail(operation, e);
    }
  }

  async upsert(operation: string, doc: Doc): Promise<void> {
    try {
      await this.attempt(operation, () => this.container.items.upsert(doc));
    } catch (e) {
      this.fail(operation, e);
    }
  }

  /** Replaces the document if its ETag is still `etag`; false if someone changed (or deleted) it first. */
  async replaceIfMatch(operation: string, doc: Doc, etag: string): Promise<boolean> {
    try {
      await this.attempt(operation, () => this.container.item(doc.id, doc.pk).replace(doc, { accessCondition: { type: 'IfMatch', condition: etag } }));
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
      const requestOptions = options.ifMatch ? { accessCondition: { type: 'IfMatch', condition: options.ifMatch } } : {};
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
      await this.attempt(operation, () => this.container.item(id, pk).delete({ accessCondition: { type: 'IfMatch', condition: etag } }));
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

  /** Deletes in bulk: true where the document was there. */
  async deleteMany(operation: string, refs: readonly { id: string; pk: string }[]): Promise<boolean[]> {
    const results = await this.bulk(operation, refs.map((r) => ({ operationType: 'Delete' as const, id: r.id, partitionKey: r.pk })));
    return results.map((r) => r.statusCode === 204);
  }

  /** Bulk operations asked for in this turn of the event loop, sent together at its end (see `bulk`). */
  private queued: { operation: string; op: OperationInput; resolve: (r: BulkResult) => void; reject: (e: unknown) => void }[] = [];

  /**
   * Runs operations in bulk and answers each with its final status (2xx, 404, 409 or 412; any other is an error).
   * Bulk calls made in the same turn of the event loop (the reads a caller issues together, say) go out together:
   * 100 operations per request, as the partition range's limit allows. Operations that failed transiently (429,
   * 503, 408, a reset) are sent again, as single requests are: every operation this driver sends in bulk is safe to
   * repeat (a create whose 409 the caller resolves, an upsert, a read, a conditional replace, a delete whose 404
   * means done).
   *
   * Through `items.bulk`, deprecated in favour of `executeBulkOperations`, on purpose: in the 4.9 SDK the newer call
   * holds a batch of fewer than 100 operations back for a second (its partial-batch interval), so every small bulk
   * read would wait 1 s. `items.bulk` sends at once; it takes at most 100 operations per partition range, hence the
   * chunks.
   */
  private bulk(operation: string, ops: readonly OperationInput[]): Promise<BulkResult[]> {
    if (ops.length === 0) return Promise.resolve([]);
    const answers = ops.map((op) => new Promise<BulkResult>((resolve, reject) => this.queued.push({ operation, op, resolve, reject })));
    if (this.queued.length === ops.length) setImmediate(() => void this.flush());
    return Promise.all(answers);
  }

  private async flush(): Promise<void> {
    const items = this.queued;
    this.queued = [];
    let pending = items.map((_, i) => i);
    try {
      for (let n = 0; pending.length > 0; n++) {
        const chunks: number[][] = [];
        for (let i = 0; i < pending.length; i += BULK_OPERATIONS) chunks.push(pending.slice(i, i + BULK_OPERATIONS));
        const retry: number[] = [];
        let lastError: unknown;
        await Promise.all(chunks.map(async (chunk) => {
          // One request, charged to the operation of its first item (the others ride along).
          const operation = items[chunk[0]!]!.operation;
          let results: OperationResponse[];
          try {
            results = await this.container.items.bulk(chunk.map((i) => items[i]!.op), { continueOnError: true });
          } catch (e) {
            this.accounting.record(operation, (e as CosmosError)?.requestCharge ?? 0);
            if (!isTransient(e) && statusOf(e) !== 429) this.fail(operation, e);
            lastError = e;
            retry.push(...chunk);
            return;
          }
          this.accounting.record(operation, results.reduce((sum, r) => sum + (r.requestCharge ?? 0), 0));
          results.forEach((r, j) => {
            const item = items[chunk[j]!]!;
            const status = r.statusCode;
            if (FINAL_STATUSES.has(status)) item.resolve({ statusCode: status, ...(r.resourceBody ? { resourceBody: r.resourceBody } : {}) });
            else if (TRANSIENT_STATUSES.has(status)) {
              lastError = Object.assign(new Error(`status ${status}`), { code: status });
              retry.push(chunk[j]!);
            } else {
              try {
                this.fail(item.operation, Object.assign(new Error(`unexpected status ${status}`), { code: status }));
              } catch (e) {
                item.reject(e);
              }
            }
          });
        }));
        if (retry.length > 0) {
          if (n >= this.retry.transientRetries) this.fail(items[retry[0]!]!.operation, lastError);
          await new Promise((r) => setTimeout(r, this.retry.baseDelayMs * 2 ** n));
        }
        pending = retry.sort((a, b) => a - b);
      }
    } catch (e) {
      for (const i of pending) items[i]!.reject(e);
      // A failure before the retry loop settled everything (fail() threw for a whole chunk): the rest get it too.
      for (const item of items) item.reject(e);
    }
  }

  /** Deletes the document; false if it was not there. */
  async delete(operation: string, id: string, pk: string): Promise<boolean> {
    try {
      await this.attempt(operation, () => this.container.item(id, pk).delete());
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
    const iterator = this.container.items.query<T>({ query: sql, parameters }, pk !== undefined ? { partitionKey: pk } : {});
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

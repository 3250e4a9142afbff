import type { CosmosConnection } from './connection.js';

/**
 * A document holding a set of values in an array (`values`), where SQL has a row per (key, value): previous
 * events, the redactions of an event. Adding is idempotent and safe under concurrency: a create for a new set,
 * else a read and an append patched on the ETag read, again on a race.
 */
export async function addToSetDocument(conn: CosmosConnection, operation: string, kind: string, key: string, value: string | number): Promise<void> {
  const r = conn.requests;
  const pk = conn.pk(kind, key);
  // Most sets are new when first added to (an event is usually named as previous by one event): try that first.
  for (;;) {
    // `key` kept as a field too: the partition key may hold it only hashed (see ids.ts).
    if (await r.create(operation, { id: kind, pk, k: kind, key, values: [value] })) return;
    const outcome = await r.patchWhen<{ values: (string | number)[] }>(operation, kind, pk, (doc) => !doc.values.includes(value),
      () => [{ op: 'add', path: '/values/-', value }]);
    if (outcome !== 'missing') return;
  }
}

/** readSetDocument for many keys, in bulk; answers in the order of `keys`. */
export async function readSetDocuments(conn: CosmosConnection, operation: string, kind: string, keys: readonly string[]): Promise<((string | number)[] | undefined)[]> {
  const docs = await conn.requests.readMany<{ values: (string | number)[] }>(operation, keys.map((k) => ({ id: kind, pk: conn.pk(kind, k) })));
  return docs.map((d) => d?.values);
}

/** The set's values in the order they were added, or undefined if nothing was ever added. */
export async function readSetDocument(conn: CosmosConnection, operation: string, kind: string, key: string): Promise<(string | number)[] | undefined> {
  const doc = await conn.requests.read<{ values: (string | number)[] }>(operation, kind, conn.pk(kind, key));
  return doc?.values;
}

import type { CosmosConnection } from './connection.js';

/**
 * A document holding a set of values in an array (`values`), where SQL has a row per (key, value): previous
 * events, the redactions of an event. Adding is idempotent and safe under concurrency:
 * - a number is appended by one conditional patch (the server appends it only if it is not there yet);
 * - a string by a read and an ETag-conditional replace, retried on a race. (A patch condition would have to spell
 *   the string inside the condition text, and the emulator lowercases condition text: never depend on that.)
 */
export async function addToSetDocument(conn: CosmosConnection, operation: string, kind: string, key: string, value: string | number): Promise<void> {
  const r = conn.requests;
  const pk = conn.pk(kind, key);
  // Most sets are new when first added to (an event is usually named as previous by one event): try that first.
  if (await r.create(operation, { id: kind, pk, k: kind, values: [value] })) return;
  for (;;) {
    if (typeof value === 'number') {
      const patched = await r.patch(operation, kind, pk, [{ op: 'add', path: '/values/-', value }],
        { condition: `FROM c WHERE NOT ARRAY_CONTAINS(c["values"], ${Math.trunc(value)})` });
      if (patched) return;
    }
    const doc = await r.read<{ values: (string | number)[] }>(operation, kind, pk);
    if (doc?.values.includes(value)) return;
    if (!doc) {
      if (await r.create(operation, { id: kind, pk, k: kind, values: [value] })) return;
    } else if (typeof value === 'string' && (await r.replaceIfMatch(operation, { id: kind, pk, k: kind, values: [...doc.values, value] }, doc._etag))) {
      return;
    }
  }
}

/** The set's values in the order they were added, or undefined if nothing was ever added. */
export async function readSetDocument(conn: CosmosConnection, operation: string, kind: string, key: string): Promise<(string | number)[] | undefined> {
  const doc = await conn.requests.read<{ values: (string | number)[] }>(operation, kind, conn.pk(kind, key));
  return doc?.values;
}

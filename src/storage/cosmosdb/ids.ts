import { createHash } from 'node:crypto';

/**
 * Matrix identifiers -> Cosmos DB ids and partition key values.
 *
 * Cosmos ids may not contain `/` or `\`, `?` and `#` break REST paths, and an id is at most 1023 bytes. The
 * encoding escapes those characters and `%` itself percent-style, so it is injective: two different identifiers
 * never share an id (the old port mapped `/ \ ? #` all to `,`, so `a/b` and `a,b` collided). An encoded value
 * longer than MAX_PLAIN_BYTES is replaced by `~` + the SHA-256 of the original (base64url): collision-free in
 * practice, and `~` cannot start a plain encoding of a Matrix ID because every plain value is escaped below.
 */
const ESCAPED = /[%/\\?#~\u0000-\u001f\u007f]/g;
const MAX_PLAIN_BYTES = 400;

export function encodeKey(value: string): string {
  const plain = value.replace(ESCAPED, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  if (Buffer.byteLength(plain, 'utf8') <= MAX_PLAIN_BYTES) return plain;
  return `~${createHash('sha256').update(value, 'utf8').digest('base64url')}`;
}

/**
 * A partition key value: the tenant first, so tenants sharing a container never meet, then a kind and keys.
 * `|` separates parts and never appears inside an encoded part... except that Matrix IDs may contain `|`; so each
 * part is encoded with encodeKey plus `|` escaped, keeping the whole value injective.
 */
export function partitionKey(tenant: string, kind: string, ...parts: (string | number)[]): string {
  return [tenant, kind, ...parts.map((p) => (typeof p === 'number' ? String(p) : encodePart(p)))].join('|');
}

const encodePart = (s: string) => encodeKey(s).replace(/\|/g, '%7C');

/** A document id from parts (each encoded), for documents whose partition already names most of the key. */
export function docId(...parts: (string | number)[]): string {
  return parts.map((p) => (typeof p === 'number' ? String(p) : encodePart(p))).join('|');
}

/**
 * The inverse of a part's encoding (encodeKey, `|` escaped): undefined for a part too long to have been kept as it
 * was (`~` + a hash). For the rare reader (a dump) that must recover a key a document carries only in its partition
 * key or id.
 */
export function decodePart(part: string): string | undefined {
  if (part.startsWith('~')) return undefined;
  return part.replace(/%([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** A partition key value of `tenant` split into its kind and its (still encoded) parts; undefined if not the tenant's. */
export function splitPartitionKey(tenant: string, pk: string): { kind: string; parts: string[] } | undefined {
  const prefix = partitionKey(tenant, '');
  if (!pk.startsWith(prefix)) return undefined;
  const [kind, ...parts] = pk.slice(prefix.length).split('|');
  return { kind: kind!, parts };
}

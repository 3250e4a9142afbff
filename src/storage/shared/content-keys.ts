import { CorruptionError } from '../../types/errors.js';
import { contentKey, nextContentKey } from './state-codec.js';

/**
 * Linear probing over 32-bit content keys (state-codec.ts contentKey), for the SQL drivers' state blocks and
 * snapshots. A content is stored under the first key, from its own onwards, that is free or already holds that
 * same content; a writer compares the content before taking a key's row as its own. So a collision costs one more
 * probe and never mixes two contents up.
 *
 * Rows deleted by a purge leave holes a later probe stops at: a content stored past a collision whose first key
 * was then freed may be stored a second time, under another NID. Both copies hold the same state, so readers are
 * unaffected; only "the same content, the same NID" can fail, and only after a collision and a purge.
 */

/** More probes than this for one content means the keys are not what this code wrote. */
export const MAX_PROBES = 64;

function tooMany(what: string, key: number): CorruptionError {
  return new CorruptionError(`${what}: ${MAX_PROBES} content keys from ${key} onwards all hold other content`);
}

/** The row a content key holds: its NID and its content. */
export interface StoredContent<N> {
  readonly nid: N;
  readonly content: Uint8Array;
}

/**
 * One probe that looks before it writes: the NID of the row at the key if it holds this content, undefined if it
 * holds other content, else what `insert` answers (an insert that converges on a row a concurrent writer has just
 * stored, or answers undefined for one holding other content). Storing what is stored thus reserves no NID: an
 * INSERT that meets a conflict takes a value from the NID sequence (PostgreSQL) or the AUTOINCREMENT counter
 * (SQLite) all the same.
 */
export function storeAtFreeKey<N>(content: Uint8Array, stored: StoredContent<N> | undefined, insert: () => N | undefined): N | undefined {
  if (stored) return Buffer.compare(stored.content, content) === 0 ? stored.nid : undefined;
  return insert();
}

/** `tryKey` stores the content under a key, or finds it there, and returns its NID; undefined: the key holds other content. */
export function probeSync<N>(what: string, key: number, tryKey: (key: number) => N | undefined): N {
  for (let k = key, i = 0; i < MAX_PROBES; i++, k = nextContentKey(k)) {
    const nid = tryKey(k);
    if (nid !== undefined) return nid;
  }
  throw tooMany(what, key);
}

export async function probe<N>(what: string, key: number, tryKey: (key: number) => Promise<N | undefined>): Promise<N> {
  for (let k = key, i = 0; i < MAX_PROBES; i++, k = nextContentKey(k)) {
    const nid = await tryKey(k);
    if (nid !== undefined) return nid;
  }
  throw tooMany(what, key);
}

/**
 * The keys rows written with given NIDs take (a copy, a migration): each row's first key, from its own onwards,
 * that neither a stored row with another NID (`holders`: key -> NID, for the keys asked) nor an earlier row of
 * the same call holds. Rows must be in the order they were first stored, so the keys follow the original probes.
 */
export async function assignContentKeys(what: string, rows: readonly { readonly nid: number; readonly key: number }[],
  holders: (keys: readonly number[]) => Promise<ReadonlyMap<number, number>>): Promise<number[]> {
  const keys = rows.map((r) => r.key);
  const claimed = new Map<number, number>();
  let pending = rows.map((_, i) => i);
  for (let round = 0; pending.length > 0; round++) {
    if (round >= MAX_PROBES) throw tooMany(what, rows[pending[0]!]!.key);
    const held = await holders([...new Set(pending.map((i) => keys[i]!))]);
    const next: number[] = [];
    for (const i of pending) {
      const nid = rows[i]!.nid;
      const owner = claimed.get(keys[i]!) ?? held.get(keys[i]!);
      if (owner === undefined || owner === nid) claimed.set(keys[i]!, nid);
      else {
        keys[i] = nextContentKey(keys[i]!);
        next.push(i);
      }
    }
    pending = next;
  }
  return keys;
}

/**
 * Stores many contents at once where an engine writes a set in one statement (PostgreSQL): `bulk` stores the first
 * content of each key, in key order (so concurrent writers of the same contents lock rows in one order and never
 * deadlock), and answers key -> NID for those that landed (a key holding other content answers nothing); the rest,
 * a second content with a key taken in the same call or a collision with a stored row, probe one at a time with
 * `single`. Returns each item's NID, in the order given; an item given twice gets one NID.
 */
export async function storeManyByContentKey<N>(what: string, contents: readonly Buffer[],
  bulk: (first: readonly { readonly key: number; readonly index: number }[]) => Promise<ReadonlyMap<number, N>>,
  single: (index: number, key: number) => Promise<N | undefined>): Promise<N[]> {
  const firstIndex = new Map<string, number>();
  contents.forEach((c, i) => { if (!firstIndex.has(c.toString('hex'))) firstIndex.set(c.toString('hex'), i); });
  const byKey = new Map<number, number>();
  const later: number[] = [];
  for (const index of firstIndex.values()) {
    const key = contentKey(contents[index]!);
    if (byKey.has(key)) later.push(index);
    else byKey.set(key, index);
  }
  const first = [...byKey].sort(([a], [b]) => a - b).map(([key, index]) => ({ key, index }));
  const stored = first.length > 0 ? await bulk(first) : new Map<number, N>();
  const nids = new Map<number, N>();
  for (const { key, index } of first) {
    const nid = stored.get(key);
    if (nid !== undefined) nids.set(index, nid);
    else later.push(index);
  }
  for (const index of later) nids.set(index, await probe(what, contentKey(contents[index]!), (k) => single(index, k)));
  return contents.map((c) => nids.get(firstIndex.get(c.toString('hex'))!)!);
}

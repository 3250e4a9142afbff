import type { PackedEntries } from './state-codec.js';

/**
 * Resolving a snapshot's blocks into one state, on packed entries (state-codec.ts): every block is sorted by
 * tuple, so the state is a merge, not a hash map. Blocks are folded from the newest: each older block is merged
 * under what the newer ones resolved to, the newer entry winning a tuple both hold. A snapshot's blocks shrink
 * geometrically towards its end (tiered merging), so the fold costs about one pass over the largest block, with
 * no per-entry object and no string key (the earlier resolver built a "type,key" string and a map entry for every
 * entry it read: most of a cold 100,000-entry load).
 */

/** -1, 0 or 1: entry `i` of `a` against entry `j` of `b`, by (type, state key). */
function compareAt(a: PackedEntries, i: number, b: PackedEntries, j: number): number {
  const dt = a[i]! - b[j]!;
  if (dt !== 0) return dt < 0 ? -1 : 1;
  const dk = a[i + 1]! - b[j + 1]!;
  return dk === 0 ? 0 : dk < 0 ? -1 : 1;
}

/** `newer` over `older`: every tuple of both, newer's entry where both have one. */
function mergeUnder(older: PackedEntries, newer: PackedEntries): PackedEntries {
  if (older.length === 0) return newer;
  if (newer.length === 0) return older;
  const out = new Float64Array(older.length + newer.length);
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < older.length && j < newer.length) {
    const c = compareAt(older, i, newer, j);
    const from = c < 0 ? older : newer;
    const at = c < 0 ? i : j;
    out[n] = from[at]!;
    out[n + 1] = from[at + 1]!;
    out[n + 2] = from[at + 2]!;
    n += 3;
    if (c <= 0) i += 3;
    if (c >= 0) j += 3;
  }
  out.set(older.subarray(i), n);
  n += older.length - i;
  out.set(newer.subarray(j), n);
  n += newer.length - j;
  return out.subarray(0, n);
}

/**
 * The blocks, oldest first, applied in order (a later block's entry wins its tuple); tombstones (event NID 0)
 * kept unless `dropTombstones`. Sorted by tuple. The result may be one of the inputs: treat it as read-only.
 */
export function resolvePacked(blocks: readonly PackedEntries[], dropTombstones: boolean): PackedEntries {
  let state: PackedEntries = blocks.length > 0 ? blocks[blocks.length - 1]! : new Float64Array(0);
  for (let b = blocks.length - 2; b >= 0; b--) state = mergeUnder(blocks[b]!, state);
  return dropTombstones ? withoutTombstones(state) : state;
}

function withoutTombstones(packed: PackedEntries): PackedEntries {
  let tombstones = 0;
  for (let i = 2; i < packed.length; i += 3) if (packed[i] === 0) tombstones++;
  if (tombstones === 0) return packed;
  const out = new Float64Array(packed.length - tombstones * 3);
  for (let i = 0, n = 0; i < packed.length; i += 3) {
    if (packed[i + 2] === 0) continue;
    out[n] = packed[i]!;
    out[n + 1] = packed[i + 1]!;
    out[n + 2] = packed[i + 2]!;
    n += 3;
  }
  return out;
}

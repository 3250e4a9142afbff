/**
 * When to merge a snapshot's trailing state blocks.
 *
 * A snapshot is an ordered list of blocks; a state change appends a small delta block. Left alone, the list
 * grows by one block per state event (slow reads); rewritten in full each time, every event costs the whole state
 * (huge writes). Tiered merging sits between the two, like an LSM tree: a block's tier is floor(log_fanIn(size));
 * once `fanIn` trailing blocks sit at or below the tier of the newest one, they are merged into one block. A tuple
 * is thus rewritten about log_fanIn(n) times over its life, and a snapshot holds about (fanIn-1)·log_fanIn(n)
 * blocks. Past `maxBlocks`, everything is merged into one block.
 *
 * The policy only looks at block sizes, so the same base and delta always give the same blocks: content
 * addressing then stores identical states once, whichever process computed them.
 */
export interface StatePolicy {
  readonly fanIn: number;
  readonly maxBlocks: number;
}

/** A snapshot never holds more blocks than this, on any driver. */
export const MAX_SNAPSHOT_BLOCKS = 64;

export const DEFAULT_STATE_POLICY: StatePolicy = { fanIn: 8, maxBlocks: MAX_SNAPSHOT_BLOCKS };

export function tierOf(size: number, fanIn: number): number {
  let tier = 0;
  for (let cap = fanIn; size >= cap; cap *= fanIn) tier++;
  return tier;
}

/**
 * Given the sizes of a snapshot's blocks (oldest first), returns the index from which the trailing blocks should
 * be merged into one, or -1 when nothing should be merged.
 */
export function mergeStart(sizes: readonly number[], policy: StatePolicy): number {
  const n = sizes.length;
  if (n > policy.maxBlocks) return 0;
  if (n < 2) return -1;
  const tier = tierOf(sizes[n - 1]!, policy.fanIn);
  let start = n - 1;
  while (start > 0 && tierOf(sizes[start - 1]!, policy.fanIn) <= tier) start--;
  return n - start >= policy.fanIn ? start : -1;
}

export function checkStatePolicy(policy: StatePolicy): StatePolicy {
  if (!Number.isInteger(policy.fanIn) || policy.fanIn < 2) throw new RangeError(`state fan-in must be an integer >= 2, got ${policy.fanIn}`);
  if (!Number.isInteger(policy.maxBlocks) || policy.maxBlocks < 1 || policy.maxBlocks > MAX_SNAPSHOT_BLOCKS) {
    throw new RangeError(`max blocks per snapshot must be from 1 to ${MAX_SNAPSHOT_BLOCKS}, got ${policy.maxBlocks}`);
  }
  return policy;
}

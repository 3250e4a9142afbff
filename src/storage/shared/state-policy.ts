/**
 * When to merge a snapshot's trailing state blocks.
 *
 * A snapshot is an ordered list of blocks; a state change appends a small delta block. Left alone, the list
 * grows by one block per state event (slow reads); rewritten in full each time, every event costs the whole state
 * (huge writes). Tiered merging sits between the two, like an LSM tree: a block's tier is floor(log_fanIn(size));
 * once `fanIn` trailing blocks sit at or below the tier of the newest one, they are merged into one block. A tuple
 * is thus rewritten about log_fanIn(n) times over its life, and a snapshot holds about (fanIn-1)·log_fanIn(n)
 * blocks. Past `maxBlocks`, the smallest trailing blocks are merged until the snapshot is back under the cap.
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

/**
 * Chosen from `npm run bench` (bench/state-storage.ts). Fan-in 8 writes 1.00 state tuples per event with at most 33
 * blocks on the generated room of 20,000 members and 200,000 events, and 1.16 with 37 blocks at 100,000 members and
 * 1,000,000 events: within the targets of 1.5 tuples and 40 blocks. Fan-in 4 writes 1.67 there (over the target);
 * fan-in 16 needs 50 blocks, or, capped at 40, writes fewer tuples (1.00) but 26% more state bytes (block and
 * snapshot payloads; 11% more on disk at 20,000 members). The cap of 40 makes the read bound hold in rooms of any
 * length: it never acts in these rooms at fan-in 8, and where it acts it merges only the smallest blocks (fan-in 8
 * capped at 30 writes 1.0004 tuples per event instead of 1.00).
 */
export const DEFAULT_STATE_POLICY: StatePolicy = { fanIn: 8, maxBlocks: 40 };

export function tierOf(size: number, fanIn: number): number {
  let tier = 0;
  for (let cap = fanIn; size >= cap; cap *= fanIn) tier++;
  return tier;
}

/**
 * Given the sizes of a snapshot's blocks (oldest first), returns the index from which the trailing blocks should
 * be merged into one, or -1 when nothing should be merged.
 *
 * First the tier rule: the trailing run of blocks at or below the newest block's tier, once it holds `fanIn`
 * blocks. Then the cap: past `maxBlocks`, the shortest trailing run of two blocks or more, its tier raised one
 * block at a time: the small recent blocks, not the whole state. (Merging everything into one block at the cap, the
 * earlier rule, rewrote the whole state each time the cap was reached: at fan-in 8 with a cap of 20 on the
 * generated room of 20,000 members, 6.1 tuples per event against 1.10 now; see bench/state-storage.ts.) A run that
 * starts at the first block drops the tombstones it holds; any other keeps them, since they hide older blocks.
 */
export function mergeStart(sizes: readonly number[], policy: StatePolicy): number {
  const n = sizes.length;
  if (n < 2) return -1;
  const tier = (i: number) => tierOf(sizes[i]!, policy.fanIn);
  let top = tier(n - 1);
  let start = n - 1;
  const extend = () => {
    while (start > 0 && tier(start - 1) <= top) start--;
  };
  extend();
  if (n - start >= policy.fanIn) return start;
  if (n <= policy.maxBlocks) return -1;
  while (n - start < 2) {
    top = tier(start - 1);
    extend();
  }
  return start;
}

export function checkStatePolicy(policy: StatePolicy): StatePolicy {
  if (!Number.isInteger(policy.fanIn) || policy.fanIn < 2) throw new RangeError(`state fan-in must be an integer >= 2, got ${policy.fanIn}`);
  if (!Number.isInteger(policy.maxBlocks) || policy.maxBlocks < 1 || policy.maxBlocks > MAX_SNAPSHOT_BLOCKS) {
    throw new RangeError(`max blocks per snapshot must be from 1 to ${MAX_SNAPSHOT_BLOCKS}, got ${policy.maxBlocks}`);
  }
  return policy;
}

import type { StateBlockNID } from '../../types/nids.js';
import type { StateEntry } from '../../types/state.js';

/**
 * State blocks never change once written (they are content-addressed), so a block read once can be served from
 * memory for ever after: no invalidation, across processes too. The cache is bounded by the number of entries it
 * holds and evicts the least recently used block.
 */
export class BlockCache {
  private readonly blocks = new Map<StateBlockNID, readonly StateEntry[]>();
  private entries = 0;

  constructor(private readonly maxEntries: number) {}

  get(nid: StateBlockNID): readonly StateEntry[] | undefined {
    const block = this.blocks.get(nid);
    if (block) {
      // Re-insert to mark as most recently used (Map keeps insertion order).
      this.blocks.delete(nid);
      this.blocks.set(nid, block);
    }
    return block;
  }

  set(nid: StateBlockNID, block: readonly StateEntry[]): void {
    if (this.maxEntries <= 0 || block.length > this.maxEntries) return;
    const old = this.blocks.get(nid);
    if (old) {
      this.blocks.delete(nid);
      this.entries -= old.length;
    }
    this.blocks.set(nid, block);
    this.entries += block.length;
    for (const [victim, entries] of this.blocks) {
      if (this.entries <= this.maxEntries) break;
      this.blocks.delete(victim);
      this.entries -= entries.length;
    }
  }
}

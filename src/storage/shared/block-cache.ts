import type { StateBlockNID, StateSnapshotNID } from '../../types/nids.js';
import type { StateEntry } from '../../types/state.js';

/**
 * State blocks and snapshots never change once written (they are content-addressed), so one read once can be
 * served from memory for ever after: no invalidation, across processes too. A cache is bounded by the number of
 * items its lists hold (state entries; block NIDs) and evicts the least recently used list.
 */
export class ImmutableListCache<K, V extends readonly unknown[]> {
  private readonly lists = new Map<K, V>();
  private items = 0;

  constructor(private readonly maxItems: number) {}

  get(key: K): V | undefined {
    const list = this.lists.get(key);
    if (list) {
      // Re-insert to mark as most recently used (Map keeps insertion order).
      this.lists.delete(key);
      this.lists.set(key, list);
    }
    return list;
  }

  set(key: K, list: V): void {
    if (this.maxItems <= 0 || list.length > this.maxItems) return;
    const old = this.lists.get(key);
    if (old) {
      this.lists.delete(key);
      this.items -= old.length;
    }
    this.lists.set(key, list);
    this.items += list.length;
    for (const [victim, items] of this.lists) {
      if (this.items <= this.maxItems) break;
      this.lists.delete(victim);
      this.items -= items.length;
    }
  }
}

/** State block NID -> its entries, bounded by state entries. */
export class BlockCache extends ImmutableListCache<StateBlockNID, readonly StateEntry[]> {}

/** State snapshot NID -> its ordered block NIDs, bounded by block NIDs. */
export class SnapshotCache extends ImmutableListCache<StateSnapshotNID, readonly StateBlockNID[]> {}

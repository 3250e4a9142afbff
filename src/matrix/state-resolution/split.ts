/**
 * The split of state sets into the unconflicted state map and the conflicted state set. In v2 a key is
 * unconflicted when every set has it with the same value (a key some sets lack is conflicted); in v1 when every
 * set that has it agrees (a key some sets lack is not a conflict).
 */
export function splitStateSets<V>(
  stateSets: readonly ReadonlyMap<string, V>[], algorithm: 'v1' | 'v2',
): { unconflicted: Map<string, V>; conflicted: Map<string, Set<V>> } {
  const values = new Map<string, Set<V>>();
  const holders = new Map<string, number>();
  for (const set of stateSets) {
    for (const [key, value] of set) {
      const seen = values.get(key);
      if (seen) seen.add(value);
      else values.set(key, new Set([value]));
      holders.set(key, (holders.get(key) ?? 0) + 1);
    }
  }
  const unconflicted = new Map<string, V>();
  const conflicted = new Map<string, Set<V>>();
  for (const [key, set] of values) {
    const everywhere = algorithm === 'v1' || holders.get(key) === stateSets.length;
    if (set.size === 1 && everywhere) unconflicted.set(key, set.values().next().value!);
    else conflicted.set(key, set);
  }
  return { unconflicted, conflicted };
}

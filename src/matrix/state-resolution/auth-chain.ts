import { authEventIDsOf } from '../auth/views.js';
import type { RoomVersionRules } from '../room-versions.js';
import type { EventCache } from './events.js';

/** The auth DAG as the pure functions here read it: an event ID's auth event IDs. */
export type AuthGraph = (eventID: string) => readonly string[];

/**
 * Loads `startIDs` and every event of their auth chains, a breadth-first level per loader call: one call for the
 * start events, then one per generation of auth events not yet seen.
 */
export async function loadAuthAncestry(cache: EventCache, rules: RoomVersionRules, startIDs: Iterable<string>): Promise<void> {
  const seen = new Set(startIDs);
  let frontier = [...seen];
  while (frontier.length > 0) {
    await cache.fetch(frontier);
    const next: string[] = [];
    for (const id of frontier) {
      for (const authID of authEventIDsOf(rules, cache.get(id))) {
        if (!seen.has(authID)) {
          seen.add(authID);
          next.push(authID);
        }
      }
    }
    frontier = next;
  }
}

/** The union of the auth chains of `startIDs`: every event reachable through auth events (a start event only when another reaches it). */
export function authChain(graph: AuthGraph, startIDs: Iterable<string>): Set<string> {
  const chain = new Set<string>();
  const stack = [...startIDs].flatMap((id) => graph(id));
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (chain.has(id)) continue;
    chain.add(id);
    for (const authID of graph(id)) if (!chain.has(authID)) stack.push(authID);
  }
  return chain;
}

/**
 * The auth difference of state sets: the events in some sets' full auth chains but not in all. A set's chain here
 * includes the set's own events, as Synapse computes it; the full conflicted set, which adds the conflicted
 * events anyway, differs only in keeping out an unconflicted event that some other set's events descend from.
 */
export function authDifference(graph: AuthGraph, stateSets: readonly (readonly string[])[]): Set<string> {
  if (stateSets.length === 0) return new Set();
  const chains = stateSets.map((ids) => {
    const chain = authChain(graph, ids);
    for (const id of ids) chain.add(id);
    return chain;
  });
  const difference = new Set<string>();
  for (const chain of chains) {
    for (const id of chain) if (!chains.every((c) => c.has(id))) difference.add(id);
  }
  return difference;
}

/**
 * The conflicted state subgraph (state resolution v2.1): every event on an auth-event path from one conflicted
 * event to another, both ends included. Found as the events reachable from a conflicted event that themselves
 * reach one: the walk down records who cites whom, the walk back up from the conflicted events follows that.
 */
export function conflictedSubgraph(graph: AuthGraph, conflicted: ReadonlySet<string>): Set<string> {
  const citedBy = new Map<string, string[]>();
  const reached = new Set<string>(conflicted);
  const stack = [...conflicted];
  while (stack.length > 0) {
    const id = stack.pop()!;
    for (const authID of graph(id)) {
      const citers = citedBy.get(authID);
      if (citers) citers.push(id);
      else citedBy.set(authID, [id]);
      if (!reached.has(authID)) {
        reached.add(authID);
        stack.push(authID);
      }
    }
  }
  const subgraph = new Set<string>();
  const up = [...conflicted];
  while (up.length > 0) {
    const id = up.pop()!;
    if (subgraph.has(id)) continue;
    subgraph.add(id);
    for (const citer of citedBy.get(id) ?? []) if (!subgraph.has(citer)) up.push(citer);
  }
  return subgraph;
}

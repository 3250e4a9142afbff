import type { RoomEvent } from '../../types/event.js';
import { authEventIDsOf, CREATE, JOIN_RULES, MEMBER, POWER_LEVELS, stringField } from '../auth/views.js';
import type { RoomVersionRules } from '../room-versions.js';
import { type AuthGraph, authDifference, conflictedSubgraph, loadAuthAncestry } from './auth-chain.js';
import { type EventCache, type StateMap, stateMapKey } from './events.js';
import { iterativeAuthChecks, senderPowerFromAuthEvents } from './iterative-auth.js';
import { mainlineSort, powerOrderCompare, topologicalSort } from './sorting.js';
import { splitStateSets } from './split.js';

/**
 * A power event: one that may take an ability away. m.room.power_levels, m.room.join_rules, a kick or a ban (an
 * m.room.member leave or ban whose sender is not its target), and m.room.create, which Synapse and ruma count too
 * (it is only ever conflicted against a forged create event, where sorting it first is what keeps it).
 */
export function isPowerEvent(event: RoomEvent): boolean {
  if (event.stateKey === undefined) return false;
  if (event.type === POWER_LEVELS || event.type === JOIN_RULES) return event.stateKey === '';
  if (event.type === CREATE) return event.stateKey === '';
  if (event.type !== MEMBER || event.stateKey === event.sender) return false;
  const membership = stringField(event.content, 'membership');
  return membership === 'leave' || membership === 'ban';
}

/** The m.room.power_levels event among an event's auth events. */
function powerLevelsAuthEvent(rules: RoomVersionRules, cache: EventCache, event: RoomEvent): RoomEvent | undefined {
  for (const id of authEventIDsOf(rules, event)) {
    const authEvent = cache.peek(id);
    if (authEvent?.type === POWER_LEVELS && authEvent.stateKey === '') return authEvent;
  }
  return undefined;
}

/**
 * Mainline positions based on the power levels event `resolvedPowerLevels` (P0): the position of an event is the
 * index in P's mainline of the first power levels event met walking its auth events' power levels events (the
 * event itself not included), or Infinity when that walk meets none of the mainline.
 */
function mainlinePositions(rules: RoomVersionRules, cache: EventCache, resolvedPowerLevels: string | undefined): (id: string) => number {
  const mainline = new Map<string, number>();
  for (let p = resolvedPowerLevels === undefined ? undefined : cache.get(resolvedPowerLevels); p; p = powerLevelsAuthEvent(rules, cache, p)) {
    if (mainline.has(p.eventID)) break;
    mainline.set(p.eventID, mainline.size);
  }
  const memo = new Map<string, number>();
  return (id) => {
    const walked: string[] = [];
    let position = Infinity;
    for (let e = powerLevelsAuthEvent(rules, cache, cache.get(id)); e; e = powerLevelsAuthEvent(rules, cache, e)) {
      const known = mainline.get(e.eventID) ?? memo.get(e.eventID);
      if (known !== undefined) {
        position = known;
        break;
      }
      walked.push(e.eventID);
    }
    // Every power levels event walked through leads to the same mainline event.
    for (const w of walked) memo.set(w, position);
    return position;
  };
}

/**
 * State resolution v2 (room versions 2 to 11) and v2.1 (room version 12, MSC4297: the iterative auth checks of
 * the power events start from an empty state, and the conflicted state subgraph joins the full conflicted set).
 */
export async function resolveV2(rules: RoomVersionRules, stateSets: readonly StateMap[], cache: EventCache): Promise<Map<string, string>> {
  const { unconflicted, conflicted } = splitStateSets(stateSets, 'v2');
  if (conflicted.size === 0) return unconflicted;
  const setIDs = stateSets.map((s) => [...s.values()]);
  await loadAuthAncestry(cache, rules, setIDs.flat());
  const graph: AuthGraph = (id) => authEventIDsOf(rules, cache.get(id));

  const conflictedIDs = new Set([...conflicted.values()].flatMap((ids) => [...ids]));
  const full = new Set([...conflictedIDs, ...authDifference(graph, setIDs)]);
  if (rules.stateResolution === 'v2.1') for (const id of conflictedSubgraph(graph, conflictedIDs)) full.add(id);

  // The power events of the full conflicted set, with the events of their auth chains that are in it too.
  const powerEvents = new Set<string>();
  const stack = [...full].filter((id) => isPowerEvent(cache.get(id)));
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (powerEvents.has(id)) continue;
    powerEvents.add(id);
    for (const authID of graph(id)) if (full.has(authID) && !powerEvents.has(authID)) stack.push(authID);
  }
  const powerFacts = new Map<string, { power: number; originServerTS: number }>();
  const factsOf = (id: string) => {
    let f = powerFacts.get(id);
    if (!f) {
      const event = cache.get(id);
      f = { power: senderPowerFromAuthEvents(rules, cache, event), originServerTS: event.originServerTS };
      powerFacts.set(id, f);
    }
    return f;
  };
  const sortedPower = topologicalSort(powerEvents, graph, powerOrderCompare(factsOf));
  const initial = rules.stateResolution === 'v2.1' ? new Map<string, string>() : unconflicted;
  const partial = iterativeAuthChecks(rules, cache, sortedPower, initial);

  const others = [...full].filter((id) => !powerEvents.has(id));
  const position = mainlinePositions(rules, cache, partial.get(stateMapKey(POWER_LEVELS, '')));
  const sortedOthers = mainlineSort(others, position, (id) => cache.get(id).originServerTS);
  const resolved = iterativeAuthChecks(rules, cache, sortedOthers, partial);
  for (const [key, id] of unconflicted) resolved.set(key, id);
  return resolved;
}

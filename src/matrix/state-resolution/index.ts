import { checkFunction, checkList, checkMap } from '../../types/input.js';
import { roomVersionRules } from '../room-versions.js';
import { EventCache, type EventLoader, type StateMap } from './events.js';
import { resolveV1 } from './v1.js';
import { resolveV2 } from './v2.js';

/**
 * The resolution of a room's state sets by its version's algorithm: v1 (room version 1), v2 (2 to 11) or v2.1
 * (12). Pure: it reads events through `loadEvents` only, a batch per call (the state sets' events together,
 * then their auth chains a generation at a time), and writes nothing. An event it needs that the loader does
 * not hold is an UnknownEventsError naming it. The result does not depend on the order of `stateSets`; one set
 * (or sets that agree) resolves to itself without a load.
 *
 * Events the loader gives are taken as accepted: a caller gives none it rejected, and verified their
 * signatures before (the auth rules never check a PDU's signatures).
 */
export async function resolveState(roomVersion: string, stateSets: readonly StateMap[], loadEvents: EventLoader): Promise<Map<string, string>> {
  const rules = roomVersionRules(roomVersion);
  checkList('stateSets', stateSets, checkMap);
  checkFunction('loadEvents', loadEvents);
  const cache = new EventCache(loadEvents, `state resolution (room version ${rules.id})`);
  return rules.stateResolution === 'v1' ? resolveV1(rules, stateSets, cache) : resolveV2(rules, stateSets, cache);
}

export { EventCache, stateKeyOf, stateMapKey, type EventLoader, type StateMap } from './events.js';
export { authChain, authDifference, conflictedSubgraph, loadAuthAncestry, type AuthGraph } from './auth-chain.js';
export { mainlineSort, powerOrderCompare, topologicalSort } from './sorting.js';
export { splitStateSets } from './split.js';
export { isPowerEvent } from './v2.js';

import type { RoomEvent } from '../../types/event.js';
import { checkEventAuthWith, selectAuthEventTypes } from '../auth/rules.js';
import { PowerLevels } from '../auth/power-levels.js';
import { authEventIDsOf, CREATE, creatorsOf, POWER_LEVELS } from '../auth/views.js';
import type { RoomVersionRules } from '../room-versions.js';
import { type EventCache, stateKeyOf, stateMapKey } from './events.js';

/** An event's auth events (loaded ones), keyed by (type, state key): the create event implied from v12 included. */
export function authEventsByKey(rules: RoomVersionRules, cache: EventCache, event: RoomEvent): Map<string, RoomEvent> {
  const byKey = new Map<string, RoomEvent>();
  for (const id of authEventIDsOf(rules, event)) {
    const authEvent = cache.peek(id);
    if (authEvent?.stateKey !== undefined) byKey.set(stateKeyOf(authEvent), authEvent);
  }
  return byKey;
}

/** The power level of an event's sender as its own auth events set it (what the power ordering sorts by). */
export function senderPowerFromAuthEvents(rules: RoomVersionRules, cache: EventCache, event: RoomEvent): number {
  const byKey = authEventsByKey(rules, cache, event);
  const create = byKey.get(stateMapKey(CREATE, ''));
  return new PowerLevels(rules, byKey.get(stateMapKey(POWER_LEVELS, '')), creatorsOf(rules, create)).userLevel(event.sender);
}

/**
 * The iterative auth checks: each event, in order, is checked against the state built so far, where that state
 * has the (type, state key) the rules need, and against its own auth events where it has not; an allowed event
 * enters the state, a refused one is left out.
 */
export function iterativeAuthChecks(rules: RoomVersionRules, cache: EventCache, ordered: readonly string[], initial: ReadonlyMap<string, string>): Map<string, string> {
  const state = new Map(initial);
  for (const id of ordered) {
    const event = cache.get(id);
    const authState = authEventsByKey(rules, cache, event);
    for (const { type, stateKey } of selectAuthEventTypes(rules, event)) {
      const key = stateMapKey(type, stateKey);
      const current = state.get(key);
      if (current !== undefined) authState.set(key, cache.get(current));
    }
    const result = checkEventAuthWith(rules, event, (type, stateKey) => authState.get(stateMapKey(type, stateKey)));
    if (result.allowed && event.stateKey !== undefined) state.set(stateKeyOf(event), id);
  }
  return state;
}

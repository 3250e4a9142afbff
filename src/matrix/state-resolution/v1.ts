import crypto from 'node:crypto';
import type { RoomEvent } from '../../types/event.js';
import { checkEventAuthWith } from '../auth/rules.js';
import { JOIN_RULES, MEMBER, POWER_LEVELS } from '../auth/views.js';
import type { RoomVersionRules } from '../room-versions.js';
import { type EventCache, type StateMap, stateMapKey } from './events.js';
import { splitStateSets } from './split.js';

const sha1 = (id: string) => crypto.createHash('sha1').update(id, 'utf8').digest('hex');

/** Ascending depth, then descending SHA-1 of the event ID: the order the auth events' conflicts are replayed in. */
function byDepthThenDescendingHash(a: RoomEvent, b: RoomEvent): number {
  if (a.depth !== b.depth) return a.depth - b.depth;
  const ha = sha1(a.eventID);
  const hb = sha1(b.eventID);
  return ha === hb ? 0 : ha > hb ? -1 : 1;
}

/**
 * State resolution v1 (room version 1). R starts as the unconflicted state. The conflicts of m.room.power_levels,
 * then of each m.room.join_rules and m.room.member key, are replayed in ascending depth: the first event enters R,
 * each next one enters if R allows it, and the first refused one ends that key. Any other conflicted key takes
 * its deepest event (the smallest SHA-1 of its ID breaking ties) that R allows; when R allows none, the
 * shallowest, as Synapse does (the spec leaves that case open).
 */
export async function resolveV1(rules: RoomVersionRules, stateSets: readonly StateMap[], cache: EventCache): Promise<Map<string, string>> {
  const { unconflicted, conflicted } = splitStateSets(stateSets, 'v1');
  if (conflicted.size === 0) return unconflicted;
  await cache.fetch([...unconflicted.values(), ...[...conflicted.values()].flatMap((ids) => [...ids])]);
  const resolved = new Map(unconflicted);
  const allows = (event: RoomEvent) =>
    checkEventAuthWith(rules, event, (type, stateKey) => {
      const id = resolved.get(stateMapKey(type, stateKey));
      return id === undefined ? undefined : cache.get(id);
    }).allowed;

  const replayAuthConflict = (key: string) => {
    const events = [...conflicted.get(key)!].map((id) => cache.get(id)).sort(byDepthThenDescendingHash);
    resolved.set(key, events[0]!.eventID);
    for (const event of events.slice(1)) {
      if (!allows(event)) break;
      resolved.set(key, event.eventID);
    }
  };
  const keys = [...conflicted.keys()].sort();
  const typeOf = (key: string) => key.slice(0, key.indexOf('\u0000'));
  if (conflicted.has(stateMapKey(POWER_LEVELS, ''))) replayAuthConflict(stateMapKey(POWER_LEVELS, ''));
  for (const key of keys) if (typeOf(key) === JOIN_RULES) replayAuthConflict(key);
  for (const key of keys) if (typeOf(key) === MEMBER) replayAuthConflict(key);
  for (const key of keys) {
    const type = typeOf(key);
    if (type === JOIN_RULES || type === MEMBER || key === stateMapKey(POWER_LEVELS, '')) continue;
    const events = [...conflicted.get(key)!].map((id) => cache.get(id)).sort((a, b) => byDepthThenDescendingHash(b, a));
    resolved.set(key, (events.find(allows) ?? events[events.length - 1]!).eventID);
  }
  return resolved;
}

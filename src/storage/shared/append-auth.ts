import { authEventTypes, checkEventAuth } from '../../matrix/auth/rules.js';
import type { AuthResult } from '../../matrix/auth/views.js';
import type { RoomEvent } from '../../types/event.js';
import type { EventNID } from '../../types/nids.js';
import type { Tx } from '../tables/index.js';
import type { NidMaps } from './nid-assigner.js';
import type { RoomGraph } from './room-graph.js';
import type { StatePlan, StateRef } from './state-storage.js';

/**
 * The auth rules of the event's room version, checked against the state before the event (the spec's check "against
 * the state before the event"): the events of the (type, state key) pairs the rules read are looked up in that state
 * (a tuple at a time, from its newest block down) and loaded together. Signatures are not checked: the homeserver
 * verifies them before it inputs an event.
 */
export async function checkAgainstState(tx: Tx, nids: NidMaps, graph: RoomGraph, plan: StatePlan, roomVersion: string,
  event: RoomEvent, before: StateRef): Promise<AuthResult> {
  const wanted = authEventTypes(roomVersion, event);
  const [types, keys] = await Promise.all([
    nids.eventTypes(tx, [...new Set(wanted.map((w) => w.type))]),
    nids.stateKeys(tx, [...new Set(wanted.map((w) => w.stateKey))]),
  ]);
  const found = await Promise.all(wanted.map((w) => (before === 0 ? 0
    : plan.lookup(before, { eventTypeNID: types.get(w.type)!, eventStateKeyNID: keys.get(w.stateKey)! }))));
  const events = await graph.eventsByNID(found.filter((n) => n !== 0) as EventNID[]);
  const state = new Map<string, RoomEvent>();
  wanted.forEach((w, i) => {
    const e = events.get(found[i] as EventNID);
    if (e) state.set(`${w.type}\u0000${w.stateKey}`, e);
  });
  return checkEventAuth(roomVersion, event, (type, stateKey) => state.get(`${type}\u0000${stateKey}`));
}

import { expect } from 'chai';
import { parseEvent, type RoomEvent } from '../../src/types/event.js';
import type { Storage } from '../../src/index.js';
import type { EventNID, EventStateKeyNID, EventTypeNID, RoomNID } from '../../src/types/nids.js';
import type { StateEntry } from '../../src/types/state.js';

/**
 * Builds a valid event with the ID the test chooses; fields not given get plausible defaults. It is read as room
 * version 10 (`roomVersion`), or, for a create event, as the version its content declares.
 */
export function makeEvent(fields: {
  id: string; room?: string; type?: string; stateKey?: string; sender?: string; depth?: number;
  prev?: string[]; content?: Record<string, unknown>; redacts?: string; roomVersion?: string;
}): RoomEvent {
  const o: Record<string, unknown> = {
    event_id: fields.id,
    room_id: fields.room ?? '!room:example.org',
    type: fields.type ?? 'm.room.message',
    sender: fields.sender ?? '@alice:example.org',
    depth: fields.depth ?? 1,
    origin_server_ts: 1_700_000_000_000,
    prev_events: fields.prev ?? [],
    auth_events: [],
    content: fields.content ?? { body: `text of ${fields.id}`, msgtype: 'm.text' },
  };
  if (fields.stateKey !== undefined) o.state_key = fields.stateKey;
  if (fields.redacts !== undefined) o.redacts = fields.redacts;
  const isCreate = o.type === 'm.room.create' && fields.stateKey === '';
  return parseEvent(JSON.stringify(o), isCreate ? {} : { roomVersion: fields.roomVersion ?? '10' });
}

export const entry = (eventTypeNID: number, eventStateKeyNID: number, eventNID: number): StateEntry => ({
  eventTypeNID: eventTypeNID as EventTypeNID, eventStateKeyNID: eventStateKeyNID as EventStateKeyNID, eventNID: eventNID as EventNID,
});

/** Plain (type, key, event) triples: comparing these keeps assertions independent of extra fields. */
export const triples = (entries: readonly StateEntry[]) => entries.map((e) => [e.eventTypeNID, e.eventStateKeyNID, e.eventNID]);

/** Asserts that the call returns a promise (no synchronous throw) that rejects with `type`, its message matching. */
export async function rejectsAsync(call: () => Promise<unknown>, type: abstract new (...args: never[]) => Error, pattern?: RegExp): Promise<Error> {
  let promise: Promise<unknown>;
  try {
    promise = call();
  } catch (e) {
    throw new Error(`expected a rejected promise, but the call threw synchronously: ${(e as Error).message}`);
  }
  let error: unknown;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  expect(error, `expected a ${type.name}`).to.be.instanceOf(type);
  if (pattern) expect((error as Error).message).to.match(pattern);
  return error as Error;
}

/** Asserts that `promise` rejects with an error of class `type` (and, if given, a message matching `pattern`). */
export const rejects = (promise: Promise<unknown>, type: abstract new (...args: never[]) => Error, pattern?: RegExp): Promise<Error> =>
  rejectsAsync(() => promise, type, pattern);

/**
 * A small room, appended in order: create, alice joins, power levels, join rules, a message, bob joins.
 * Returns the events by short name.
 */
export async function seedRoom(storage: Storage, room = '!room:example.org') {
  const ev = {
    create: makeEvent({ id: `$create${room}`, room, type: 'm.room.create', stateKey: '', depth: 1, content: { creator: '@alice:example.org', room_version: '10' } }),
    aliceJoin: makeEvent({ id: `$alice-join${room}`, room, type: 'm.room.member', stateKey: '@alice:example.org', depth: 2, prev: [`$create${room}`], content: { membership: 'join' } }),
    power: makeEvent({ id: `$power${room}`, room, type: 'm.room.power_levels', stateKey: '', depth: 3, prev: [`$alice-join${room}`], content: { users: { '@alice:example.org': 100 } } }),
    joinRules: makeEvent({ id: `$rules${room}`, room, type: 'm.room.join_rules', stateKey: '', depth: 4, prev: [`$power${room}`], content: { join_rule: 'public' } }),
    message: makeEvent({ id: `$msg${room}`, room, depth: 5, prev: [`$rules${room}`] }),
    bobJoin: makeEvent({ id: `$bob-join${room}`, room, type: 'm.room.member', stateKey: '@bob:remote.net', sender: '@bob:remote.net', depth: 6, prev: [`$msg${room}`], content: { membership: 'join' } }),
  };
  for (const e of Object.values(ev)) await storage.roomserver.appendEvent(e);
  return ev;
}

/**
 * Users as state keys (the membership table reads their IDs from event_state_keys) and rooms as rows of the rooms
 * table, created through the tables: their NIDs by ID.
 */
export async function usersAndRooms(storage: Storage, users: readonly string[], rooms: readonly string[]) {
  const tx = storage.unitOfWork.autocommit;
  const u = new Map<string, EventStateKeyNID>();
  for (const id of users) u.set(id, await storage.tables.eventStateKeys.insertEventStateKeyNID(tx, id));
  const r = new Map<string, RoomNID>();
  for (const id of rooms) r.set(id, await storage.tables.rooms.insertRoomNID(tx, id, '10'));
  return { tx, user: (id: string) => u.get(id)!, room: (id: string) => r.get(id)! };
}

import type { RoomEvent } from '../types/event.js';
import { serverNameOf } from '../types/input.js';
import { roomVersionRules } from './room-versions.js';

/**
 * Whether a redaction may be applied to the event it redacts: the spec's rule for every room version. A server
 * applies (and serves redacted) an event's redaction only when either
 * - the redaction's sender belongs to the same server as the redacted event's sender (a user's own server may redact
 *   their events; in room versions 1 and 2 the auth rules say so, from version 3 on the receiving server checks it),
 * - or the redaction's sender has at least the room's `redact` power level (50 by default) in the state before the
 *   redaction.
 * Otherwise the redaction is kept and stays pending: it is still a valid event, it just redacts nothing.
 *
 * `powerLevels` and `create` are the `m.room.power_levels` and `m.room.create` events of the state before the
 * redaction (undefined where that state has none). Signatures are not checked here: that is the homeserver's job.
 */
export function redactionAllowed(roomVersion: string, redaction: RoomEvent, redacted: RoomEvent,
  powerLevels: RoomEvent | undefined, create: RoomEvent | undefined): boolean {
  if (redactionAllowedByServer(redaction, redacted)) return true;
  return userPowerLevel(roomVersion, redaction.sender, powerLevels, create) >= powerLevelField(powerLevels, 'redact', 50);
}

/** The first half of the rule, which needs no state: the redaction comes from the redacted event's sender's server. */
export function redactionAllowedByServer(redaction: RoomEvent, redacted: RoomEvent): boolean {
  return sameServer(redaction.sender, redacted.sender);
}

/**
 * A user's power level as the auth rules read it: a creator of a room of version 12 has infinite power (MSC4289: the
 * create event's sender and `additional_creators`); otherwise `users[user]`, else `users_default`, else 0; with no
 * power levels event, the room's creator has 100 (the create content's `creator` before version 11, its sender from
 * version 11) and everyone else 0.
 */
export function userPowerLevel(roomVersion: string, userID: string, powerLevels: RoomEvent | undefined, create: RoomEvent | undefined): number {
  const rules = roomVersionRules(roomVersion);
  if (rules.roomIDFromCreateEvent && create && creatorsOf(create).includes(userID)) return Infinity;
  if (powerLevels) {
    const users = powerLevels.content.users;
    const own = typeof users === 'object' && users !== null ? asLevel((users as Record<string, unknown>)[userID]) : undefined;
    return own ?? powerLevelField(powerLevels, 'users_default', 0);
  }
  if (!create) return 0;
  const creator = rules.createContentHasCreator ? create.content.creator : create.sender;
  return creator === userID ? 100 : 0;
}

/** A top-level level of the power levels content (`redact`, `ban`, `users_default`, ...), or its default. */
export function powerLevelField(powerLevels: RoomEvent | undefined, field: string, fallback: number): number {
  return asLevel(powerLevels?.content[field]) ?? fallback;
}

/** The creators of a room of version 12: the create event's sender and its `additional_creators`. */
function creatorsOf(create: RoomEvent): string[] {
  const more = create.content.additional_creators;
  return [create.sender, ...(Array.isArray(more) ? more.filter((u): u is string => typeof u === 'string') : [])];
}

/** Levels are integers; room versions before 10 also accept a string holding one (as servers then sent them). */
function asLevel(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^[+-]?\d+$/.test(v.trim())) return Number.parseInt(v, 10);
  return undefined;
}

function sameServer(a: string, b: string): boolean {
  try {
    return serverNameOf(a) === serverNameOf(b);
  } catch {
    return false;
  }
}

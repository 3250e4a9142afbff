import type { RoomEvent } from '../../types/event.js';
import { roomVersionRules, type RoomVersionRules } from '../room-versions.js';
import { checkCreateEvent } from './create.js';
import { checkMemberEvent } from './member.js';
import { checkPowerLevelsEvent, PowerLevels } from './power-levels.js';
import {
  ALIASES, ALLOWED, type AuthResult, type AuthState, CREATE, creatorsOf, domainOf, isCreateEvent, isObject, JOIN_RULES, MEMBER, membershipOf, POWER_LEVELS,
  REDACTION, rejected, stringField, THIRD_PARTY_INVITE,
} from './views.js';

/**
 * The Matrix authorization rules of room versions 1 to 12, as pure functions: the event and the state it is
 * checked against go in, allowed or a reason comes out. Every difference between versions is a flag of the room
 * version registry.
 *
 * What they do not do: verify signatures (the PDU's, and that of the authorising server a restricted join's
 * `join_authorised_via_users_server` demands). Those are the homeserver's to verify before it asks; the rules
 * take every event they are given as validly signed. They check the third-party invite signature of an
 * m.room.member invite, which is part of the event's content (see checkMemberEvent).
 */

/**
 * The (type, state key) pairs whose events authorise `event`: the spec's auth events selection. From v12 the
 * create event is not among them: the room ID implies it.
 */
export function authEventTypes(roomVersion: string, event: RoomEvent): { type: string; stateKey: string }[] {
  return selectAuthEventTypes(roomVersionRules(roomVersion), event);
}

export function selectAuthEventTypes(rules: RoomVersionRules, event: RoomEvent): { type: string; stateKey: string }[] {
  if (isCreateEvent(event)) return [];
  const out: { type: string; stateKey: string }[] = [];
  const add = (type: string, stateKey: string) => {
    if (!out.some((t) => t.type === type && t.stateKey === stateKey)) out.push({ type, stateKey });
  };
  if (!rules.roomIDFromCreateEvent) add(CREATE, '');
  add(POWER_LEVELS, '');
  add(MEMBER, event.sender);
  if (event.type === MEMBER && event.stateKey !== undefined) {
    add(MEMBER, event.stateKey);
    const membership = stringField(event.content, 'membership');
    if (membership === 'join' || membership === 'invite' || (rules.auth.knocking && membership === 'knock')) add(JOIN_RULES, '');
    const tpi = event.content.third_party_invite;
    const token = isObject(tpi) && isObject(tpi.signed) ? tpi.signed.token : undefined;
    if (membership === 'invite' && typeof token === 'string') add(THIRD_PARTY_INVITE, token);
    const authoriser = stringField(event.content, 'join_authorised_via_users_server');
    if (rules.auth.restrictedJoins && membership === 'join' && authoriser !== undefined) add(MEMBER, authoriser);
  }
  return out;
}

/**
 * The rules about an event's own `auth_events` list, given the events it names (in its order): no two for one
 * (type, state key); none the auth events selection does not select; all of the event's room; a create event
 * among them up to v11, none from v12 (where the room ID implies it). Whether an auth event was itself rejected
 * is the caller's to know: give only accepted events.
 */
export function checkAuthEvents(roomVersion: string, event: RoomEvent, authEvents: readonly RoomEvent[]): AuthResult {
  const rules = roomVersionRules(roomVersion);
  if (isCreateEvent(event)) return authEvents.length === 0 ? ALLOWED : rejected('a create event has no auth events');
  const selected = selectAuthEventTypes(rules, event);
  const seen = new Set<string>();
  for (const a of authEvents) {
    const key = `${a.type}\u0000${a.stateKey ?? ''}`;
    if (seen.has(key)) return rejected(`two auth events for (${a.type}, ${a.stateKey})`);
    seen.add(key);
    if (a.stateKey === undefined || !selected.some((t) => t.type === a.type && t.stateKey === a.stateKey)) {
      return rejected(`auth event ${a.eventID} (${a.type}, ${a.stateKey}) is not one the auth events selection selects`);
    }
    if (a.roomID !== event.roomID) return rejected(`auth event ${a.eventID} is in room ${a.roomID}, not ${event.roomID}`);
  }
  if (!rules.roomIDFromCreateEvent && !seen.has(`${CREATE}\u0000`)) return rejected('no m.room.create among the auth events');
  return ALLOWED;
}

/**
 * The auth check of `event` against `authState`: the state before it, or its auth events keyed by (type, state
 * key). From v12 `authState` must give the room's create event too, which the event's room ID names. The
 * events `authState` gives must be accepted ones of the event's room.
 */
export function checkEventAuth(roomVersion: string, event: RoomEvent, authState: AuthState): AuthResult {
  return checkEventAuthWith(roomVersionRules(roomVersion), event, authState);
}

export function checkEventAuthWith(rules: RoomVersionRules, event: RoomEvent, authState: AuthState): AuthResult {
  if (isCreateEvent(event)) return checkCreateEvent(rules, event);
  const create = authState(CREATE, '');
  if (!create) return rejected('the room has no m.room.create event in the state the event is checked against');
  if (rules.roomIDFromCreateEvent && event.roomID !== `!${create.eventID.slice(1)}`) {
    return rejected(`room ID ${event.roomID} is not the create event's ${create.eventID} with the sigil !`);
  }
  if (create.roomID !== event.roomID) return rejected(`the create event is of room ${create.roomID}, not ${event.roomID}`);
  if (create.content['m.federate'] === false && domainOf(event.sender) !== domainOf(create.sender)) {
    return rejected('the room does not federate and the sender is of another server than the creator');
  }
  if (rules.auth.specialCaseAliases && event.type === ALIASES) {
    if (event.stateKey === undefined) return rejected('m.room.aliases needs a state key');
    return event.stateKey === domainOf(event.sender) ? ALLOWED : rejected('m.room.aliases: the state key is not the sender\'s server');
  }
  const creators = creatorsOf(rules, create);
  const powerLevels = new PowerLevels(rules, authState(POWER_LEVELS, ''), creators);
  if (event.type === MEMBER) return checkMemberEvent({ rules, state: authState, create, powerLevels }, event);

  const senderMembership = membershipOf(authState(MEMBER, event.sender));
  if (senderMembership !== 'join') return rejected(`the sender's membership is ${senderMembership}, not join`);
  const senderLevel = powerLevels.userLevel(event.sender);
  if (event.type === THIRD_PARTY_INVITE) {
    return senderLevel >= powerLevels.invite ? ALLOWED : rejected(`the sender's level ${senderLevel} is below the invite level ${powerLevels.invite}`);
  }
  const required = powerLevels.eventLevel(event.type, event.stateKey !== undefined);
  if (required > senderLevel) return rejected(`${event.type} needs level ${required}; the sender has ${senderLevel}`);
  if (event.stateKey?.startsWith('@') && event.stateKey !== event.sender) return rejected('a state key that is a user ID must be the sender\'s');
  if (event.type === POWER_LEVELS) return checkPowerLevelsEvent(rules, event, powerLevels, senderLevel, creators);
  if (rules.auth.redactionCheckedByAuthRules && event.type === REDACTION) {
    if (senderLevel >= powerLevels.redact) return ALLOWED;
    if (event.redacts !== undefined && domainOf(event.redacts) === domainOf(event.eventID)) return ALLOWED;
    return rejected('a redaction needs the redact level, or to redact an event of its own server');
  }
  return ALLOWED;
}

/**
 * Whether a redaction may be applied to (not merely stored beside) the event it redacts, the spec's rule for
 * every version: the redaction's sender has the `redact` level (50 unless the power levels say otherwise) in
 * the state before the redaction, or is of the same server as the redacted event's sender. In v1 and v2 the
 * auth rules already refused any other redaction (comparing the servers of the two event IDs, which is also
 * accepted here); from v3 the auth rules let any redaction in and the receiving server applies this check, which
 * needs the redacted event: until it is known, a redaction by someone without the redact level stays pending.
 *
 * `powerLevels` and `create` are the m.room.power_levels and m.room.create events of the state before the
 * redaction (`powerLevels` undefined when the room has none).
 */
export function redactionAllowed(
  roomVersion: string, redaction: RoomEvent, redacted: { readonly sender: string; readonly eventID?: string }, powerLevels: RoomEvent | undefined, create: RoomEvent,
): AuthResult {
  const rules = roomVersionRules(roomVersion);
  const levels = new PowerLevels(rules, powerLevels, creatorsOf(rules, create));
  const level = levels.userLevel(redaction.sender);
  if (level >= levels.redact) return ALLOWED;
  if (domainOf(redaction.sender) === domainOf(redacted.sender)) return ALLOWED;
  if (rules.auth.redactionCheckedByAuthRules && redacted.eventID !== undefined && domainOf(redacted.eventID) === domainOf(redaction.eventID)) return ALLOWED;
  return rejected(`the redaction's sender has level ${level}, below the redact level ${levels.redact}, and is of another server than the redacted event's sender`);
}

export type { AuthResult, AuthState } from './views.js';
export { PowerLevels, levelValue } from './power-levels.js';

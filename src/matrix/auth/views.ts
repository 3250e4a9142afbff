import type { RoomEvent } from '../../types/event.js';
import type { RoomVersionRules } from '../room-versions.js';

/**
 * Typed views of the few event types the authorization rules read. Events arrive as parsed JSON that nobody
 * checked beyond the envelope, so every view reads its fields defensively: a field of the wrong JSON type reads
 * as absent, and the rules decide what absence means.
 */

export const CREATE = 'm.room.create';
export const MEMBER = 'm.room.member';
export const POWER_LEVELS = 'm.room.power_levels';
export const JOIN_RULES = 'm.room.join_rules';
export const THIRD_PARTY_INVITE = 'm.room.third_party_invite';
export const ALIASES = 'm.room.aliases';
export const REDACTION = 'm.room.redaction';

/** The state the rules are checked against: the event of a (type, state key), or undefined. */
export type AuthState = (type: string, stateKey: string) => RoomEvent | undefined;

export type AuthResult = { allowed: true } | { allowed: false; reason: string };

export const ALLOWED: AuthResult = Object.freeze({ allowed: true });
export const rejected = (reason: string): AuthResult => ({ allowed: false, reason });

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function stringField(content: Readonly<Record<string, unknown>> | undefined, field: string): string | undefined {
  const v = content?.[field];
  return typeof v === 'string' ? v : undefined;
}

/** The part of a user ID or a v1/v2 event ID after the first colon: its server name ('' when there is none). */
export function domainOf(id: string): string {
  const colon = id.indexOf(':');
  return colon < 0 ? '' : id.slice(colon + 1);
}

/** A user ID as the rules accept one: `@`, a non-empty localpart, `:`, a server name. */
export function isUserID(value: unknown): value is string {
  if (typeof value !== 'string' || !value.startsWith('@')) return false;
  const colon = value.indexOf(':');
  return colon > 1 && colon < value.length - 1 && !value.includes('\u0000');
}

/** The membership an m.room.member event gives its target: 'leave' when there is no event (never a member). */
export function membershipOf(event: RoomEvent | undefined): string {
  return stringField(event?.content, 'membership') ?? 'leave';
}

/** The join rule of the room: `invite` when the room has no m.room.join_rules event, or one without a rule. */
export function joinRuleOf(event: RoomEvent | undefined): string {
  return stringField(event?.content, 'join_rule') ?? 'invite';
}

/** The room's creators, as the version defines them (its create event's `creator`, or sender and additional creators). */
export function creatorsOf(rules: RoomVersionRules, create: RoomEvent | undefined): ReadonlySet<string> {
  if (!create) return new Set();
  if (rules.createContentHasCreator) {
    const creator = stringField(create.content, 'creator');
    return new Set(creator === undefined ? [] : [creator]);
  }
  const creators = new Set([create.sender]);
  if (rules.auth.privilegedCreators) {
    const additional = create.content.additional_creators;
    if (Array.isArray(additional)) for (const u of additional) if (typeof u === 'string') creators.add(u);
  }
  return creators;
}

/** The ID the v12 create event of an event's room has: the room ID with `$` for `!` (the create event is implied). */
export function impliedCreateEventID(rules: RoomVersionRules, event: RoomEvent): string | undefined {
  if (!rules.roomIDFromCreateEvent || (event.type === CREATE && event.stateKey === '')) return undefined;
  return `$${event.roomID.slice(1)}`;
}

/**
 * An event's auth events as the auth DAG links them: its `auth_events`, plus, from v12, its room's create event,
 * which its room ID implies and its `auth_events` never list.
 */
export function authEventIDsOf(rules: RoomVersionRules, event: RoomEvent): readonly string[] {
  const implied = impliedCreateEventID(rules, event);
  return implied === undefined || event.authEventIDs.includes(implied) ? event.authEventIDs : [...event.authEventIDs, implied];
}

export function isCreateEvent(event: RoomEvent): boolean {
  return event.type === CREATE && event.stateKey === '';
}

import { InvalidInputError } from '../types/errors.js';
import { roomVersionRules, type RedactionRules } from './room-versions.js';

/**
 * The Matrix redaction algorithm ("Redactions" on each room version page): what of an event survives when it is
 * redacted, or when its content hash does not match. Returns a new object: the PDU without `unsigned` and without
 * any key the version's rules do not keep, its content likewise filtered by event type.
 */
export function redactEvent(pdu: Readonly<Record<string, unknown>>, roomVersion: string): Record<string, unknown> {
  if (typeof pdu !== 'object' || pdu === null || Array.isArray(pdu)) throw new InvalidInputError('redactEvent takes an event object');
  const rules = roomVersionRules(roomVersion).redaction;
  const kept = rules.updatedRules ? TOP_LEVEL : TOP_LEVEL_BEFORE_V11;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(pdu)) if (kept.has(key)) out[key] = pdu[key];
  const content = pdu.content;
  out.content = typeof content === 'object' && content !== null && !Array.isArray(content)
    ? redactContent(String(pdu.type), content as Record<string, unknown>, rules)
    : {};
  return out;
}

const TOP_LEVEL = new Set(['event_id', 'type', 'room_id', 'sender', 'state_key', 'content', 'hashes', 'signatures', 'depth',
  'prev_events', 'auth_events', 'origin_server_ts']);
const TOP_LEVEL_BEFORE_V11 = new Set([...TOP_LEVEL, 'prev_state', 'origin', 'membership']);

function pick(content: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (Object.hasOwn(content, k)) out[k] = content[k];
  return out;
}

function redactContent(type: string, content: Record<string, unknown>, rules: RedactionRules): Record<string, unknown> {
  switch (type) {
    case 'm.room.member': {
      const out = pick(content, rules.keepsJoinAuthorisedVia ? ['membership', 'join_authorised_via_users_server'] : ['membership']);
      // v11 keeps the `signed` key of third_party_invite: an object stays, holding `signed` only (as Synapse does).
      const invite = content.third_party_invite;
      if (rules.updatedRules && typeof invite === 'object' && invite !== null && !Array.isArray(invite)) {
        out.third_party_invite = pick(invite as Record<string, unknown>, ['signed']);
      }
      return out;
    }
    case 'm.room.create':
      return rules.updatedRules ? { ...content } : pick(content, ['creator']);
    case 'm.room.join_rules':
      return pick(content, rules.keepsJoinRulesAllow ? ['join_rule', 'allow'] : ['join_rule']);
    case 'm.room.power_levels':
      return pick(content, ['ban', 'events', 'events_default', 'kick', 'redact', 'state_default', 'users', 'users_default',
        ...(rules.updatedRules ? ['invite'] : [])]);
    case 'm.room.aliases':
      return rules.keepsAliases ? pick(content, ['aliases']) : {};
    case 'm.room.history_visibility':
      return pick(content, ['history_visibility']);
    case 'm.room.redaction':
      return rules.updatedRules ? pick(content, ['redacts']) : {};
    default:
      return {};
  }
}

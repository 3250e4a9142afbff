/**
 * The Matrix redaction algorithm: what of an event survives a redaction. Room versions 1-10 share one rule set;
 * v11 (MSC2176/MSC3821/MSC3989) keeps a little more content and drops a few top-level keys.
 */
const KEPT_TOP_LEVEL = ['event_id', 'type', 'room_id', 'sender', 'state_key', 'content', 'hashes', 'signatures', 'depth',
  'prev_events', 'auth_events', 'origin_server_ts'];
const KEPT_TOP_LEVEL_PRE_V11 = ['prev_state', 'origin', 'membership'];

function keptContentKeys(type: string, v11: boolean, roomVersion: string): readonly string[] | 'all' {
  switch (type) {
    case 'm.room.member': return v11 ? ['membership', 'join_authorised_via_users_server', 'third_party_invite']
      : Number(roomVersion) >= 9 ? ['membership', 'join_authorised_via_users_server'] : ['membership'];
    case 'm.room.create': return v11 ? 'all' : ['creator'];
    case 'm.room.join_rules': return Number(roomVersion) >= 8 || v11 ? ['join_rule', 'allow'] : ['join_rule'];
    case 'm.room.power_levels': return ['ban', 'events', 'events_default', 'kick', 'redact', 'state_default', 'users',
      'users_default', ...(v11 ? ['invite'] : [])];
    case 'm.room.aliases': return Number(roomVersion) <= 5 ? ['aliases'] : [];
    case 'm.room.history_visibility': return ['history_visibility'];
    case 'm.room.redaction': return v11 ? ['redacts'] : [];
    default: return [];
  }
}

/** Versions after 10 follow the v11 rules (unknown versions such as "org.example.x" follow the old ones). */
const isV11OrLater = (roomVersion: string) => Number.isInteger(Number(roomVersion)) && Number(roomVersion) >= 11;

/**
 * Returns the redacted form of `eventJSON` with `unsigned.redacted_because` set to the redaction event, as it is
 * stored once the redaction applies.
 */
export function redactEventJSON(eventJSON: string, redactionEventJSON: string, roomVersion: string): string {
  const event = JSON.parse(eventJSON) as Record<string, unknown>;
  const v11 = isV11OrLater(roomVersion);
  const keep = new Set([...KEPT_TOP_LEVEL, ...(v11 ? [] : KEPT_TOP_LEVEL_PRE_V11)]);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(event)) if (keep.has(k)) out[k] = v;
  const content = (event.content ?? {}) as Record<string, unknown>;
  const kept = keptContentKeys(String(event.type), v11, roomVersion);
  const newContent: Record<string, unknown> = {};
  if (kept === 'all') Object.assign(newContent, content);
  else for (const k of kept) if (k in content) newContent[k] = content[k];
  if (String(event.type) === 'm.room.member' && v11 && typeof content.third_party_invite === 'object' && content.third_party_invite) {
    // v11 keeps only third_party_invite.signed.
    const signed = (content.third_party_invite as Record<string, unknown>).signed;
    if (signed === undefined) delete newContent.third_party_invite;
    else newContent.third_party_invite = { signed };
  }
  out.content = newContent;
  out.unsigned = { redacted_because: JSON.parse(redactionEventJSON) as unknown };
  return JSON.stringify(out);
}

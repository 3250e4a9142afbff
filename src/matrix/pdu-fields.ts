import { InvalidInputError } from '../types/errors.js';
import { preview } from '../types/input.js';
import type { RoomVersionRules } from './room-versions.js';

/**
 * The fields the server-server API's PDU schema requires, per room version ("Persistent Data Unit" of each room
 * version's event format), and the JSON type each must have:
 *
 * - every version: `sender`, `origin_server_ts`, `type`, `content`, `depth`, `prev_events`, `auth_events`,
 *   `hashes` (with `sha256`) and `signatures`;
 * - `room_id`, except on a room version 12 create event (whose room ID is its reference hash);
 * - `event_id` in room versions 1 and 2, where a PDU states its own ID.
 *
 * Checked before anything else is done with the PDU: a PDU without `content` or `hashes` would otherwise fail its
 * content hash and be kept in its redacted form (`content: {}`), as if a server had sent a real event and someone
 * had tampered with it.
 */

type JSONType = 'string' | 'integer' | 'number' | 'object' | 'array';

interface FieldRule {
  readonly field: string;
  readonly type: JSONType;
  /** Whether the field is about the event's authenticity (its hashes and signatures), which parseEvent does not check. */
  readonly authenticity?: boolean;
}

const COMMON: readonly FieldRule[] = [
  { field: 'type', type: 'string' },
  { field: 'sender', type: 'string' },
  { field: 'content', type: 'object' },
  { field: 'depth', type: 'integer' },
  { field: 'origin_server_ts', type: 'number' },
  { field: 'prev_events', type: 'array' },
  { field: 'auth_events', type: 'array' },
  { field: 'hashes', type: 'object', authenticity: true },
  { field: 'signatures', type: 'object', authenticity: true },
];

/** Inside `hashes`: the content hash, in unpadded base64. */
const CONTENT_HASH: FieldRule = { field: 'sha256', type: 'string' };

const isCreateEvent = (pdu: Readonly<Record<string, unknown>>) => pdu.type === 'm.room.create' && pdu.state_key === '';

/** The ID fields a PDU of this room version must carry: event_id (v1, v2), room_id (but on a v12 create event). */
function idFields(rules: RoomVersionRules, pdu: Readonly<Record<string, unknown>>): FieldRule[] {
  const out: FieldRule[] = [];
  if (rules.eventID === 'stated') out.push({ field: 'event_id', type: 'string' });
  if (!(rules.roomIDFromCreateEvent && isCreateEvent(pdu))) out.push({ field: 'room_id', type: 'string' });
  return out;
}

/** The fields a PDU of this room version must carry, in the order they are checked. */
export const requiredPDUFields = (rules: RoomVersionRules, pdu: Readonly<Record<string, unknown>>): readonly string[] =>
  [...COMMON, ...idFields(rules, pdu)].map((r) => r.field);

const TYPE_NAMES: Record<JSONType, string> = {
  string: 'a string', integer: 'an integer', number: 'a number', object: 'a JSON object', array: 'an array',
};

function hasType(value: unknown, type: JSONType): boolean {
  switch (type) {
    case 'string': return typeof value === 'string';
    case 'integer': return typeof value === 'number' && Number.isInteger(value);
    case 'number': return typeof value === 'number' && Number.isFinite(value);
    case 'array': return Array.isArray(value);
    case 'object': return typeof value === 'object' && value !== null && !Array.isArray(value);
  }
}

function checkFields(pdu: Readonly<Record<string, unknown>>, rules: readonly FieldRule[], whose: string, prefix = ''): void {
  for (const rule of rules) {
    const value = pdu[rule.field];
    if (value === undefined) throw new InvalidInputError(`${prefix}${rule.field} is missing: ${whose} must have it`);
    if (!hasType(value, rule.type)) throw new InvalidInputError(`${prefix}${rule.field} must be ${TYPE_NAMES[rule.type]}, got ${preview(value)}`);
  }
}

/**
 * The fields every room version requires, whatever the event's room: what an event must carry before the version
 * its create event declares can be read from its content. `authenticity: false` leaves out `hashes` and
 * `signatures`, for callers that vouch for the event themselves (parseEvent, which checks neither).
 */
export function checkCommonPDUFields(pdu: Readonly<Record<string, unknown>>, options: { authenticity?: boolean } = {}): void {
  const authenticity = options.authenticity !== false;
  checkFields(pdu, COMMON.filter((r) => authenticity || !r.authenticity), 'every PDU');
  if (authenticity) checkFields(pdu.hashes as Record<string, unknown>, [CONTENT_HASH], 'every PDU', 'hashes.');
}

/**
 * Refuses a PDU that lacks a field its room version's schema requires, or holds one of the wrong JSON type, with an
 * InvalidInputError naming the field.
 */
export function checkRequiredPDUFields(pdu: Readonly<Record<string, unknown>>, rules: RoomVersionRules): void {
  checkCommonPDUFields(pdu);
  checkFields(pdu, idFields(rules, pdu), `a PDU of room version ${rules.id}`);
}

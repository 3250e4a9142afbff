import { createHash } from 'node:crypto';
import { InvalidInputError } from '../types/errors.js';
import { checkEventID, preview } from '../types/input.js';
import { canonicalJSON } from './canonical-json.js';
import { redactEvent } from './redaction.js';
import { roomVersionRules, type RoomVersionRules } from './room-versions.js';

/**
 * Event IDs and hashes, as the server-server API defines them ("Calculating the reference hash for an event",
 * "Calculating the content hash for an event"; the event ID formats of each room version).
 */

type PDU = Readonly<Record<string, unknown>>;

function checkPDU(pdu: unknown): PDU {
  if (typeof pdu !== 'object' || pdu === null || Array.isArray(pdu)) throw new InvalidInputError(`a PDU must be a JSON object, got ${preview(pdu)}`);
  return pdu as PDU;
}

/** Without the given top-level keys (a copy). */
function without(pdu: PDU, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(pdu)) if (!keys.includes(k)) out[k] = v;
  return out;
}

/**
 * From room version 3 an event's ID is not part of it: a PDU that carries an `event_id` anyway (some servers'
 * exports add it) is hashed without it, as its origin server hashed it.
 */
const idKeys = (rules: RoomVersionRules) => (rules.eventID === 'stated' ? [] : ['event_id']);

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest();
const unpadded = (b: Buffer) => b.toString('base64').replace(/=+$/, '');

/**
 * The reference hash (SHA-256): of the redacted event without `signatures` and `unsigned`, as canonical JSON.
 * Redacting first is what lets an event keep its ID when it is redacted later.
 */
export function referenceHash(pdu: unknown, roomVersion: string): Buffer {
  const rules = roomVersionRules(roomVersion);
  const redacted = redactEvent(checkPDU(pdu), roomVersion);
  return sha256(canonicalJSON(without(redacted, ['signatures', 'unsigned', ...idKeys(rules)]), { lenientNumbers: !rules.enforcesCanonicalNumbers }));
}

/**
 * The event's ID: in room versions 1 and 2 the `event_id` the PDU states; from version 3, `$` and the reference
 * hash in unpadded base64 (standard in v3, URL-safe from v4).
 */
export function computeEventID(pdu: unknown, roomVersion: string): string {
  const rules = roomVersionRules(roomVersion);
  const p = checkPDU(pdu);
  if (rules.eventID === 'stated') {
    if (p.event_id === undefined) throw new InvalidInputError(`event_id is missing: in room version ${rules.id} a PDU states its own event ID`);
    return checkEventID('event_id', p.event_id);
  }
  const hash = referenceHash(p, roomVersion);
  return `$${rules.eventID === 'base64' ? unpadded(hash) : hash.toString('base64url')}`;
}

/** Room version 12: a room's ID is its create event's reference hash, `!` + unpadded URL-safe base64. */
export function computeRoomID(createPDU: unknown, roomVersion: string): string {
  const rules = roomVersionRules(roomVersion);
  if (!rules.roomIDFromCreateEvent) throw new InvalidInputError(`in room version ${rules.id} a room ID is chosen by its creator, not computed`);
  return `!${referenceHash(createPDU, roomVersion).toString('base64url')}`;
}

/**
 * The content hash the PDU should carry in `hashes.sha256`: SHA-256 of the event without `unsigned`, `signatures`
 * and `hashes`, as canonical JSON, in unpadded standard base64. Numbers follow the room version's rules (lenient
 * before v6) when it is given.
 */
export function contentHash(pdu: unknown, roomVersion?: string): string {
  const p = checkPDU(pdu);
  const rules = roomVersion === undefined ? undefined : roomVersionRules(roomVersion);
  const hashed = without(p, ['unsigned', 'signatures', 'hashes', ...(rules ? idKeys(rules) : [])]);
  return unpadded(sha256(canonicalJSON(hashed, { lenientNumbers: !rules?.enforcesCanonicalNumbers })));
}

/** Whether `hashes.sha256` is the PDU's content hash (false when it is missing). Padding is tolerated. */
export function contentHashMatches(pdu: unknown, roomVersion?: string): boolean {
  const claimed = (checkPDU(pdu).hashes as { sha256?: unknown } | undefined)?.sha256;
  if (typeof claimed !== 'string') return false;
  return claimed.replace(/=+$/, '') === contentHash(pdu, roomVersion);
}

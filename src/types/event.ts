import { InvalidInputError } from './errors.js';
import { byteLength, checkIdentifier, checkStateKey, checkString, checkUserID, preview, serverNameOf } from './input.js';
import { computeEventID, computeRoomID, contentHashMatches } from '../matrix/event-id.js';
import { checkCommonPDUFields, checkRequiredPDUFields } from '../matrix/pdu-fields.js';
import { redactEvent } from '../matrix/redaction.js';
import { declaredRoomVersion, roomVersionRules, type RoomVersionRules } from '../matrix/room-versions.js';

/** Matrix caps a whole event at 64 KiB (and IDs at 255 bytes: MAX_ID_BYTES in input.ts). */
export const MAX_EVENT_BYTES = 65_536;

/**
 * A room event as the store needs it: the fields it indexes, plus the JSON text it keeps verbatim.
 * Signatures are not checked here: that is the homeserver's job before it calls the store.
 */
export interface RoomEvent {
  readonly eventID: string;
  readonly roomID: string;
  readonly type: string;
  /** undefined for a message; a string (possibly "") for a state event. */
  readonly stateKey: string | undefined;
  readonly sender: string;
  readonly depth: number;
  readonly originServerTS: number;
  readonly prevEventIDs: readonly string[];
  readonly authEventIDs: readonly string[];
  readonly content: Readonly<Record<string, unknown>>;
  /** The event this one redacts (top level before room v11, in content from v11 on: the room version decides). */
  readonly redacts: string | undefined;
  /**
   * The room version the event was read by: the one the caller gave, or the one a create event declares.
   * undefined when neither said (the store then takes the version of the room the event goes into).
   */
  readonly roomVersion: string | undefined;
  /** The event's JSON text, stored as given. */
  readonly json: string;
}

export interface ParseEventOptions {
  /** The version of the event's room: where `redacts` lives, and how an event ID the PDU does not state is computed. */
  readonly roomVersion?: string;
  /** The event's ID when the caller knows it (a stored event, whose PDU may not carry it). */
  readonly eventID?: string;
  /** The most bytes the JSON may have (64 KiB, Matrix's limit, unless given). */
  readonly maxBytes?: number;
}

/** prev_events and auth_events are IDs (room v3+) or [ID, hashes] pairs (v1, v2). */
function eventIDList(field: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new InvalidInputError(`${field} must be an array, got ${preview(value)}`);
  return value.map((item, i) => checkIdentifier(`${field}[${i}]`, Array.isArray(item) ? item[0] : item, '$'));
}

function parseJSONObject(json: string, maxBytes: number): Record<string, unknown> {
  checkString('the event JSON', json);
  if (byteLength(json) > maxBytes) throw new InvalidInputError(`event is ${byteLength(json)} bytes; Matrix allows at most ${maxBytes}`);
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new InvalidInputError(`not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidInputError('an event must be a JSON object');
  return raw as Record<string, unknown>;
}

/**
 * Parses and validates one event's JSON text as its caller states it. Throws InvalidInputError naming the bad
 * field: every field of the PDU schema must be there, of its JSON type, but `hashes` and `signatures`, which this
 * does not check (the caller vouches for the event). The event's ID is `options.eventID`, else the `event_id` the JSON states, else (a PDU of room version 3
 * or later, which states none) the ID computed from its reference hash, for which the room version must be known:
 * given in `options.roomVersion`, or declared by a create event. For federation PDUs as servers exchange them,
 * with the checks the spec asks of a receiving server, use `parsePDU`.
 */
export function parseEvent(json: string, options: ParseEventOptions = {}): RoomEvent {
  return eventFromObject(parseJSONObject(json, options.maxBytes ?? MAX_EVENT_BYTES), json, options);
}

function eventFromObject(o: Record<string, unknown>, json: string, options: ParseEventOptions): RoomEvent {
  // The fields of the PDU schema, hashes and signatures aside (parseEvent checks neither; parsePDU has checked both).
  checkCommonPDUFields(o, { authenticity: false });
  const content = o.content as Record<string, unknown>;
  const depth = o.depth as number;
  if (!Number.isSafeInteger(depth) || depth < 0) throw new InvalidInputError(`depth must be a non-negative integer, got ${preview(depth)}`);
  const ts = o.origin_server_ts as number;
  const type = checkIdentifier('type', o.type);
  const sender = checkIdentifier('sender', o.sender, '@');
  serverNameOf(sender);
  const stateKey = o.state_key === undefined ? undefined : checkStateKey(o.state_key);
  const isCreate = type === 'm.room.create' && stateKey === '';
  const version = versionOf(isCreate, content, options.roomVersion);
  const rules = version === undefined ? undefined : roomVersionRules(version);
  const eventID = options.eventID !== undefined ? checkIdentifier('event ID', options.eventID, '$')
    : o.event_id !== undefined ? checkIdentifier('event_id', o.event_id, '$')
      : version !== undefined ? computeEventID(o, version)
        : missingEventID();
  const roomID = o.room_id !== undefined ? checkIdentifier('room_id', o.room_id, '!')
    : isCreate && rules?.roomIDFromCreateEvent ? computeRoomID(o, version!)
      : missingRoomID(rules);
  const c = content;
  const redactsRaw = rules === undefined ? o.redacts ?? c.redacts : rules.redactsIn === 'content' ? c.redacts : o.redacts;
  return {
    eventID,
    roomID,
    type,
    stateKey,
    sender,
    depth,
    originServerTS: ts,
    prevEventIDs: eventIDList('prev_events', o.prev_events),
    authEventIDs: eventIDList('auth_events', o.auth_events),
    content: c,
    redacts: type === 'm.room.redaction' && redactsRaw !== undefined ? checkIdentifier('redacts', redactsRaw, '$') : undefined,
    roomVersion: version,
    json,
  };
}

/** The version the caller gave, or the one a create event declares (which must then agree). */
function versionOf(isCreate: boolean, content: unknown, given: string | undefined): string | undefined {
  if (given !== undefined) roomVersionRules(given);
  if (!isCreate) return given;
  const declared = roomVersionRules(declaredRoomVersion(content)).id;
  if (given !== undefined && given !== declared) {
    throw new InvalidInputError(`this create event declares room version ${declared}, not ${given}`);
  }
  return declared;
}

function missingRoomID(rules: RoomVersionRules | undefined): never {
  throw new InvalidInputError(`room_id is missing: ${rules === undefined ? 'every event' : `a PDU of room version ${rules.id}`} must have it` +
    (rules?.roomIDFromCreateEvent ? ' (but a create event, whose room ID is computed from it)' : ''));
}

function missingEventID(): never {
  throw new InvalidInputError('event_id is missing: since room version 3 a PDU carries none and its ID is computed from its ' +
    'content, which needs the room version (parseEvent(json, { roomVersion }), or parsePDU)');
}

/**
 * Refuses an event in the client-server format (no depth, prev_events or auth_events: what clients are sent),
 * saying so: it cannot be stored as a PDU, and its ID could not be checked.
 */
export function checkNotClientFormat(pdu: Readonly<Record<string, unknown>>): void {
  if (pdu.depth === undefined && pdu.prev_events === undefined && pdu.auth_events === undefined) {
    throw new InvalidInputError('this is a client-format event (it has no depth, prev_events or auth_events): the file holds events as ' +
      'clients see them, and import takes federation PDUs, as servers exchange them (GET /_matrix/federation/v1/event/..., a server\'s export)');
  }
}

/** What parsePDU found besides the event. */
export interface ParsedPDU {
  readonly event: RoomEvent;
  /**
   * False when `hashes.sha256` did not match the content: the event is then kept in its redacted form, as the spec
   * requires of a receiving server, and `event.json` is that form. (A PDU without `hashes.sha256` is refused.)
   */
  readonly contentHashMatched: boolean;
}

/**
 * A federation PDU as homeservers exchange it, read by the rules of its room's version:
 * - every field the version's PDU schema requires present, of its JSON type (content, hashes.sha256, signatures,
 *   prev_events, ...: src/matrix/pdu-fields.ts), checked before any hash, so that a PDU missing one is refused
 *   rather than kept redacted;
 * - its ID computed from its reference hash (from v3; an `event_id` it carries anyway must be that ID), or the
 *   `event_id` it states (v1, v2);
 * - a v12 create event carries no `room_id`: the room ID is computed from it;
 * - its content hash checked: on a mismatch the event is kept redacted (`contentHashMatched: false`);
 * - numbers checked as canonical JSON requires from v6;
 * - a client-format event (no depth, prev_events or auth_events) is refused as such.
 * `input` is the PDU's JSON text (stored as given) or the parsed object (stored as JSON.stringify writes it).
 */
export function parsePDU(input: string | Readonly<Record<string, unknown>>, roomVersion: string, options: { maxBytes?: number } = {}): ParsedPDU {
  const rules = roomVersionRules(roomVersion);
  const maxBytes = options.maxBytes ?? MAX_EVENT_BYTES;
  let json = typeof input === 'string' ? input : JSON.stringify(input);
  let pdu = typeof input === 'string' ? parseJSONObject(input, maxBytes) : input as Record<string, unknown>;
  if (typeof input !== 'string') {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new InvalidInputError(`a PDU must be a JSON object, got ${preview(input)}`);
    if (byteLength(json) > maxBytes) throw new InvalidInputError(`event is ${byteLength(json)} bytes; Matrix allows at most ${maxBytes}`);
  }
  checkNotClientFormat(pdu);
  if (pdu.type === 'm.room.create' && pdu.state_key === '' && rules.roomIDFromCreateEvent && pdu.room_id !== undefined) {
    throw new InvalidInputError(`a room version ${rules.id} create event has no room_id: the room ID is computed from the event`);
  }
  // Before any hash: a PDU without content or hashes would otherwise fail its content hash and be kept redacted.
  checkRequiredPDUFields(pdu, rules);
  const eventID = computeEventID(pdu, rules.id);
  if (rules.eventID !== 'stated' && pdu.event_id !== undefined && pdu.event_id !== eventID) {
    throw new InvalidInputError(`event_id ${preview(pdu.event_id)} is not the ID its content hashes to (${eventID}) in room version ${rules.id}`);
  }
  const contentHashMatched = contentHashMatches(pdu, rules.id);
  if (!contentHashMatched) {
    pdu = redactEvent(pdu, rules.id);
    json = JSON.stringify(pdu);
  }
  return { event: eventFromObject(pdu, json, { roomVersion: rules.id, eventID }), contentHashMatched };
}

/**
 * Checks a RoomEvent a caller built itself (parseEvent's output passes by construction): the fields the store
 * indexes follow the input rules, so that a hand-made event cannot slip a NUL or a lone surrogate past them.
 */
export function checkRoomEvent(event: unknown): RoomEvent {
  if (typeof event !== 'object' || event === null) throw new InvalidInputError(`an event must be an object (see parseEvent), got ${preview(event)}`);
  const e = event as RoomEvent;
  const wrapped = (event as Partial<ParsedPDU>).event;
  if (e.eventID === undefined && typeof wrapped === 'object' && wrapped !== null && 'eventID' in wrapped) {
    throw new InvalidInputError('an event was expected, got parsePDU\'s result (the event and contentHashMatched). Fix: pass its .event, ' +
      'e.g. appendEvent(parsePDU(json, roomVersion).event).');
  }
  checkIdentifier('event ID', e.eventID, '$');
  checkIdentifier('room ID', e.roomID, '!');
  checkIdentifier('type', e.type);
  if (e.stateKey !== undefined) checkStateKey(e.stateKey);
  checkUserID('sender', e.sender);
  if (typeof e.depth !== 'number' || !Number.isSafeInteger(e.depth) || e.depth < 0) {
    throw new InvalidInputError(`depth must be a non-negative integer, got ${preview(e.depth)}`);
  }
  for (const [field, list] of [['prevEventIDs', e.prevEventIDs], ['authEventIDs', e.authEventIDs]] as const) {
    if (!Array.isArray(list)) throw new InvalidInputError(`${field} must be an array, got ${preview(list)}`);
    list.forEach((id, i) => checkIdentifier(`${field}[${i}]`, id, '$'));
  }
  if (typeof e.content !== 'object' || e.content === null) throw new InvalidInputError(`content must be an object, got ${preview(e.content)}`);
  if (e.redacts !== undefined) checkIdentifier('redacts', e.redacts, '$');
  if (e.roomVersion !== undefined) roomVersionRules(e.roomVersion);
  checkString('the event JSON', e.json);
  if (byteLength(e.json) > MAX_EVENT_BYTES) throw new InvalidInputError(`event is ${byteLength(e.json)} bytes; Matrix allows at most ${MAX_EVENT_BYTES}`);
  return e;
}

import { InvalidInputError } from './errors.js';
import { byteLength, checkIdentifier, checkStateKey, checkString, checkUserID, preview, serverNameOf } from './input.js';

/** Matrix caps a whole event at 64 KiB (and IDs at 255 bytes: MAX_ID_BYTES in input.ts). */
export const MAX_EVENT_BYTES = 65_536;

/**
 * A room event as the store needs it: the fields it indexes, plus the JSON text it keeps verbatim.
 * Signatures and hashes are not checked here: that is the homeserver's job before it calls the store.
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
  /** The event this one redacts (top level before room v11, in content from v11 on). */
  readonly redacts: string | undefined;
  /** The event's JSON text, stored as given. */
  readonly json: string;
}

/** prev_events and auth_events are IDs (room v3+) or [ID, hashes] pairs (v1, v2). */
function eventIDList(field: string, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new InvalidInputError(`${field} must be an array, got ${preview(value)}`);
  return value.map((item, i) => checkIdentifier(`${field}[${i}]`, Array.isArray(item) ? item[0] : item, '$'));
}

/** Parses and validates one event's JSON text. Throws InvalidInputError naming the bad field. */
export function parseEvent(json: string, options: { maxBytes?: number } = {}): RoomEvent {
  const maxBytes = options.maxBytes ?? MAX_EVENT_BYTES;
  checkString('the event JSON', json);
  if (byteLength(json) > maxBytes) {
    throw new InvalidInputError(`event is ${byteLength(json)} bytes; Matrix allows at most ${maxBytes}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new InvalidInputError(`not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidInputError('an event must be a JSON object');
  const o = raw as Record<string, unknown>;
  const content = o.content;
  if (typeof content !== 'object' || content === null || Array.isArray(content)) {
    throw new InvalidInputError(`content must be a JSON object, got ${preview(content)}`);
  }
  const depth = o.depth;
  if (typeof depth !== 'number' || !Number.isSafeInteger(depth) || depth < 0) {
    throw new InvalidInputError(`depth must be a non-negative integer, got ${preview(depth)}`);
  }
  const ts = o.origin_server_ts ?? 0;
  if (typeof ts !== 'number' || !Number.isFinite(ts)) throw new InvalidInputError(`origin_server_ts must be a number, got ${preview(ts)}`);
  const type = checkIdentifier('type', o.type);
  const sender = checkIdentifier('sender', o.sender, '@');
  serverNameOf(sender);
  const redactsRaw = o.redacts ?? (content as Record<string, unknown>).redacts;
  return {
    eventID: checkIdentifier('event_id', o.event_id, '$'),
    roomID: checkIdentifier('room_id', o.room_id, '!'),
    type,
    stateKey: o.state_key === undefined ? undefined : checkStateKey(o.state_key),
    sender,
    depth,
    originServerTS: ts,
    prevEventIDs: eventIDList('prev_events', o.prev_events),
    authEventIDs: eventIDList('auth_events', o.auth_events),
    content: content as Record<string, unknown>,
    redacts: type === 'm.room.redaction' && redactsRaw !== undefined ? checkIdentifier('redacts', redactsRaw, '$') : undefined,
    json,
  };
}

/**
 * Checks a RoomEvent a caller built itself (parseEvent's output passes by construction): the fields the store
 * indexes follow the input rules, so that a hand-made event cannot slip a NUL or a lone surrogate past them.
 */
export function checkRoomEvent(event: unknown): RoomEvent {
  if (typeof event !== 'object' || event === null) throw new InvalidInputError(`an event must be an object (see parseEvent), got ${preview(event)}`);
  const e = event as RoomEvent;
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
  checkString('the event JSON', e.json);
  if (byteLength(e.json) > MAX_EVENT_BYTES) throw new InvalidInputError(`event is ${byteLength(e.json)} bytes; Matrix allows at most ${MAX_EVENT_BYTES}`);
  return e;
}

/** The room version an m.room.create event declares ("1" when absent); "" for any other event. */
export function roomVersionOf(event: RoomEvent): string {
  if (event.type !== 'm.room.create') return '';
  const v = event.content.room_version;
  return typeof v === 'string' && v.length > 0 ? v : '1';
}

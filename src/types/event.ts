import { InvalidInputError } from './errors.js';

/** Matrix caps event, room and user IDs, aliases and event types at 255 bytes, and a whole event at 64 KiB. */
export const MAX_ID_BYTES = 255;
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

const byteLength = (s: string) => Buffer.byteLength(s, 'utf8');

/** Shortens a hostile value for an error message: a 10 kB ID must not become a 10 kB message. */
export function preview(value: unknown, max = 60): string {
  const s = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return s.length <= max ? JSON.stringify(s) : `${JSON.stringify(s.slice(0, max))}… (${byteLength(s)} bytes)`;
}

/**
 * Checks an identifier: a string, not empty, at most 255 bytes, no NUL (PostgreSQL text cannot hold it),
 * and, when a sigil is given, starting with it.
 */
export function checkIdentifier(what: string, value: unknown, sigil?: string): string {
  if (typeof value !== 'string') throw new InvalidInputError(`${what} must be a string, got ${preview(value)}`);
  if (value.length === 0) throw new InvalidInputError(`${what} must not be empty`);
  if (byteLength(value) > MAX_ID_BYTES) {
    throw new InvalidInputError(`${what} is ${byteLength(value)} bytes long; Matrix allows at most ${MAX_ID_BYTES}: ${preview(value)}`);
  }
  if (value.includes('\u0000')) throw new InvalidInputError(`${what} contains a NUL character: ${preview(value)}`);
  if (sigil && !value.startsWith(sigil)) throw new InvalidInputError(`${what} must start with "${sigil}": ${preview(value)}`);
  return value;
}

/** A user ID is @localpart:server; returns the server part. */
export function serverNameOf(userID: string): string {
  const colon = userID.indexOf(':');
  if (!userID.startsWith('@') || colon < 2 || colon === userID.length - 1) {
    throw new InvalidInputError(`not a user ID (expected @localpart:server): ${preview(userID)}`);
  }
  return userID.slice(colon + 1);
}

/** A state key has no length limit of its own (only the event's), but must be text PostgreSQL can store. */
export function checkStateKey(value: unknown): string {
  if (typeof value !== 'string') throw new InvalidInputError(`state_key must be a string, got ${preview(value)}`);
  if (value.includes('\u0000')) throw new InvalidInputError(`state_key contains a NUL character: ${preview(value)}`);
  return value;
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

/** The room version an m.room.create event declares ("1" when absent); "" for any other event. */
export function roomVersionOf(event: RoomEvent): string {
  if (event.type !== 'm.room.create') return '';
  const v = event.content.room_version;
  return typeof v === 'string' && v.length > 0 ? v : '1';
}

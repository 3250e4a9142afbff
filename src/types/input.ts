import { InvalidInputError } from './errors.js';
import { MAX_NID } from './nids.js';

/**
 * The checks every public API applies to its input before anything is read or written, each naming the field
 * (as the caller passed it) in its InvalidInputError. One rule for every string the store takes, whether it is
 * an identifier, a key or free text, on the write paths and the read paths alike:
 *
 * - it is a string (not null, a number, an object);
 * - it holds no NUL: PostgreSQL text cannot store one, and the drivers must all answer the same;
 * - it is well-formed UTF-16, i.e. holds no lone surrogate ("\ud800" without its pair). A lone surrogate has no
 *   UTF-8 form: PostgreSQL and SQLite would store U+FFFD in its place, so "k\ud800" and "k\ud801" would become the
 *   same key, and a value stored would not be found again by the string that stored it.
 *
 * Identifiers (IDs, event types, device and key IDs, server names) are also non-empty and at most 255 bytes.
 */

/** Matrix caps event, room and user IDs, aliases and event types at 255 bytes. */
export const MAX_ID_BYTES = 255;

export const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Shortens a hostile value for an error message: a 10 kB ID must not become a 10 kB message. */
export function preview(value: unknown, max = 60): string {
  if (value === undefined) return 'nothing (it is missing)';
  // Quoted text is a string; anything else is named by its type, so that 1 and "1" are told apart.
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return `the ${typeof value} ${String(value)}`;
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object' && value !== null) return `${Array.isArray(value) ? 'an array' : 'an object'} ${quoted(value, max)}`;
  return quoted(value, max);
}

function quoted(value: unknown, max: number): string {
  let s: string;
  try {
    s = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  } catch {
    s = Object.prototype.toString.call(value); // a cyclic object, a BigInt
  }
  return s.length <= max ? JSON.stringify(s) : `${JSON.stringify(s.slice(0, max))}… (${byteLength(s)} bytes)`;
}

// Node 20 has String.prototype.isWellFormed (ES2024); the es2022 lib this project compiles against does not name it.
const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** For a number given where text is wanted, the fix: the same digits as a string. */
export const asString = (value: unknown): string =>
  (typeof value === 'number' || typeof value === 'bigint' ? `. Fix: pass it as a string (${JSON.stringify(String(value))})` : '');

/** The rule for every string: a string, no NUL, no lone surrogate. Returns it. */
export function checkString(what: string, value: unknown): string {
  if (typeof value !== 'string') throw new InvalidInputError(`${what} must be a string, got ${preview(value)}${asString(value)}`);
  if (value.includes('\u0000')) throw new InvalidInputError(`${what} contains a NUL character: ${preview(value)}`);
  if (!isWellFormed(value)) throw new InvalidInputError(`${what} is not well-formed text (it holds a lone UTF-16 surrogate, which has no UTF-8 form): ${preview(value)}`);
  return value;
}

/** An identifier: the string rule, not empty, at most 255 bytes, and starting with `sigil` when one is given. */
export function checkIdentifier(what: string, value: unknown, sigil?: string): string {
  checkString(what, value);
  const s = value as string;
  if (s.length === 0) throw new InvalidInputError(`${what} must not be empty`);
  if (s.length > MAX_ID_BYTES / 3 && byteLength(s) > MAX_ID_BYTES) {
    throw new InvalidInputError(`${what} is ${byteLength(s)} bytes long; Matrix allows at most ${MAX_ID_BYTES}: ${preview(s)}`);
  }
  if (sigil && !s.startsWith(sigil)) throw new InvalidInputError(`${what} must start with "${sigil}": ${preview(s)}`);
  return s;
}

/** A state key has no length limit of its own (only the event's), but follows the string rule. */
export const checkStateKey = (value: unknown, what = 'state_key'): string => checkString(what, value);

/** A user ID is @localpart:server; returns the server part. */
export function serverNameOf(userID: string): string {
  const colon = userID.indexOf(':');
  if (!userID.startsWith('@') || colon < 2 || colon === userID.length - 1) {
    throw new InvalidInputError(`not a user ID (expected @localpart:server): ${preview(userID)}`);
  }
  return userID.slice(colon + 1);
}

/** A user ID: @localpart:server, at most 255 bytes, well-formed. Returns it. */
export function checkUserID(what: string, value: unknown): string {
  const id = checkIdentifier(what, value, '@');
  try {
    serverNameOf(id);
  } catch {
    throw new InvalidInputError(`${what} must be a user ID (@localpart:server), got ${preview(id)}`);
  }
  return id;
}

export const checkRoomID = (what: string, value: unknown): string => checkIdentifier(what, value, '!');
export const checkEventID = (what: string, value: unknown): string => checkIdentifier(what, value, '$');
export const checkAlias = (what: string, value: unknown): string => checkIdentifier(what, value, '#');

/** An array, each item checked by `item` (named `what[i]`). Returns it. */
export function checkList<T>(what: string, value: unknown, item?: (what: string, value: unknown) => unknown): readonly T[] {
  if (!Array.isArray(value)) throw new InvalidInputError(`${what} must be an array, got ${preview(value)}`);
  if (item) value.forEach((v, i) => item(`${what}[${i}]`, v));
  return value as readonly T[];
}

export function checkMap<K, V>(what: string, value: unknown): ReadonlyMap<K, V> {
  if (!(value instanceof Map)) throw new InvalidInputError(`${what} must be a Map, got ${preview(value)}`);
  return value as ReadonlyMap<K, V>;
}

/** A NID: a positive safe integer (0, "none", only where `allowZero`). */
export function checkNID<N extends number>(what: string, value: unknown, allowZero = false): N {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < (allowZero ? 0 : 1) || value > MAX_NID) {
    throw new InvalidInputError(`${what} must be a ${allowZero ? 'non-negative' : 'positive'} integer NID, got ${preview(value)}`);
  }
  return value as N;
}

export const checkNIDList = <N extends number>(what: string, value: unknown): readonly N[] =>
  checkList<N>(what, value, (w, v) => checkNID(w, v));

/** A non-negative safe integer (stream IDs, counts, positions). */
export function checkCount(what: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidInputError(`${what} must be a non-negative integer, got ${preview(value)}`);
  }
  return value;
}

/** Any safe integer (offsets, which may be negative markers). */
export function checkInteger(what: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new InvalidInputError(`${what} must be an integer, got ${preview(value)}`);
  return value;
}

export function checkBoolean(what: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new InvalidInputError(`${what} must be true or false, got ${preview(value)}`);
  return value;
}

export function checkFunction(what: string, value: unknown): void {
  if (typeof value !== 'function') throw new InvalidInputError(`${what} must be a function, got ${preview(value)}`);
}

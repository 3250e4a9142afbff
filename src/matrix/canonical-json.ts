import { InvalidInputError } from '../types/errors.js';

/**
 * Canonical JSON, as the Matrix specification defines it (appendices, "Canonical JSON"): object keys sorted by
 * Unicode code point, no insignificant whitespace, strings as UTF-8 with only the escapes JSON requires (`\"`,
 * `\\`, `\b \f \n \r \t`, other control characters as `\u00XX` in lowercase hex), and numbers as integers in
 * [-(2^53 - 1), 2^53 - 1].
 *
 * It works on values (what JSON.parse gives), so `-0` and `1e10` are written `0` and `10000000000`, as the spec's
 * own example does. A fraction or an integer out of range is an InvalidInputError; so is a lone UTF-16 surrogate
 * (it has no UTF-8 form). `lenientNumbers` writes such numbers as JavaScript prints them instead, for events of
 * room versions 1 to 5, which did not enforce the number rules and so can hold them.
 */
export function canonicalJSON(value: unknown, options: { lenientNumbers?: boolean } = {}): string {
  const lenient = options.lenientNumbers === true;
  try {
    return encodeFast(value, lenient);
  } catch (e) {
    // The fast encoder keeps no path; the careful one runs only to say where the bad value is.
    if (e === NOT_CANONICAL) return encode(value, lenient, '');
    throw e;
  }
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

// Node 20 has String.prototype.isWellFormed (ES2024); the es2022 lib this project compiles against does not name it.
const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** A key with a code unit from U+D800 up, where UTF-16 order and code-point order can differ. */
const MAY_SORT_DIFFERENTLY = /[\ud800-\uffff]/;

/** What encodeFast throws at anything encode would refuse: encode then says what and where. */
const NOT_CANONICAL = Symbol('not canonical');

/**
 * encode without the path it tracks for messages, which costs a string per value: the write path encodes every
 * event twice (its ID, its content hash). Refuses exactly what encode refuses.
 */
function encodeFast(value: unknown, lenient: boolean): string {
  switch (typeof value) {
    case 'string':
      if (!isWellFormed(value)) throw NOT_CANONICAL;
      return JSON.stringify(value);
    case 'number':
      if (Number.isInteger(value) && Math.abs(value) <= MAX_SAFE) return value === 0 ? '0' : String(value);
      if (lenient && Number.isFinite(value)) return String(value);
      throw NOT_CANONICAL;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + encodeFast(value[i], lenient);
        return `${out}]`;
      }
      const o = value as Record<string, unknown>;
      const keys = Object.keys(o).sort();
      if (keys.some((k) => MAY_SORT_DIFFERENTLY.test(k))) keys.sort(compareCodePoints);
      let out = '{';
      let first = true;
      for (const key of keys) {
        const v = o[key];
        if (v === undefined) continue;
        if (!isWellFormed(key)) throw NOT_CANONICAL;
        out += `${first ? '' : ','}${JSON.stringify(key)}:${encodeFast(v, lenient)}`;
        first = false;
      }
      return `${out}}`;
    }
    default:
      throw NOT_CANONICAL;
  }
}

function encode(value: unknown, lenient: boolean, at: string): string {
  switch (typeof value) {
    case 'string':
      if (!isWellFormed(value)) throw new InvalidInputError(`canonical JSON: ${where(at)} holds a lone UTF-16 surrogate, which has no UTF-8 form`);
      // JSON.stringify escapes exactly what canonical JSON escapes, in the same spelling, and nothing else.
      return JSON.stringify(value);
    case 'number':
      if (Number.isInteger(value) && Math.abs(value) <= MAX_SAFE) return value === 0 ? '0' : String(value);
      if (lenient && Number.isFinite(value)) return String(value);
      throw new InvalidInputError(`canonical JSON: ${where(at)} is ${value}; only integers from -(2^53 - 1) to 2^53 - 1 are allowed`);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) return `[${value.map((v, i) => encode(v, lenient, `${at}[${i}]`)).join(',')}]`;
      const o = value as Record<string, unknown>;
      const parts: string[] = [];
      for (const key of Object.keys(o).sort(compareCodePoints)) {
        const v = o[key];
        if (v === undefined) continue; // as JSON.stringify: an absent value
        if (!isWellFormed(key)) throw new InvalidInputError(`canonical JSON: a key in ${where(at)} holds a lone UTF-16 surrogate`);
        parts.push(`${JSON.stringify(key)}:${encode(v, lenient, `${at}.${key}`)}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      throw new InvalidInputError(`canonical JSON: ${where(at)} is a ${typeof value}, which JSON cannot hold`);
  }
}

const where = (at: string) => (at === '' ? 'the value' : at.replace(/^\./, ''));

/**
 * Code-point order, which JavaScript's default sort (UTF-16 code units) gets wrong only where a character beyond
 * U+FFFF (a surrogate pair) meets one from U+E000 to U+FFFF. Equal to comparing the UTF-8 bytes.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // A surrogate (0xD800-0xDFFF) stands for a code point above 0xFFFF: it sorts after every other unit.
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx !== sy) return sx ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

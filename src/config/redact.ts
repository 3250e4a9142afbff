/**
 * The one rule that keeps secrets out of every output: error messages (every StorageError passes its message
 * through `redact`), the CLI's output, and the configuration it prints.
 *
 * Two layers, because neither alone is enough:
 * - by shape: the password of any URL with user info (`scheme://user:secret@host`, to the last `@` before a space
 *   or a quote, so a password holding `@`, `#`, `/` or `?` is hidden whole), the value of any parameter
 *   whose name says it is a secret, in a query string or a connection string (`?password=`, `&sslpassword=`,
 *   `AccountKey=...;`, `sig=`, `token=`), whatever the value;
 * - by value: every secret this process has been given (the values of secret config keys, URL passwords, the
 *   account key inside a connection string, from files and environment alike) is replaced wherever it appears,
 *   in any of the forms it may be printed in (as given, percent-decoded, percent-encoded).
 */

import { userInfoOf } from './url-userinfo.js';

export const HIDDEN = '***';

/** Names of settings and parameters whose values are secrets. */
const SECRET_NAME = /pass(word|wd)?|pwd|secret|token|credential|accountkey|account_key|sharedaccesskey|connection_?string|\bsig\b|\bkey\b/i;

/**
 * scheme://user:password@ (the user stays visible: it helps to tell which account was used). Greedy to the last `@`
 * of the word: a password is hidden whole whatever it holds; a quote ends the word (URLs inside JSON output).
 */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:/?#@"'`]*):([^\s"'`]*)@/gi;
/** name=value in a query string or a connection string, where the name is a secret's. */
const SECRET_PARAM = /([?&;]|^|\s)((?:ssl)?pass(?:word|wd)?|pwd|secret|token|access_token|accountkey|sharedaccesskey|sig|key)=([^&;\s'"]*)/gi;

const known = new Set<string>();

function variants(secret: string): string[] {
  const out = [secret];
  try { out.push(decodeURIComponent(secret)); } catch { /* not percent-encoded */ }
  out.push(encodeURIComponent(secret));
  return out;
}

/**
 * Makes `redact` hide these values from now on. Values shorter than 4 characters are left to the shape rules:
 * replacing every "pw" in every message would only garble messages.
 */
export function rememberSecrets(...values: readonly (string | undefined | null)[]): void {
  for (const value of values) {
    if (typeof value !== 'string') continue;
    for (const v of variants(value)) if (v.length >= 4) known.add(v);
    for (const inner of secretsInside(value)) rememberSecrets(inner);
  }
}

/** Remembers only the secrets inside a text by their shape (a URL's password), not the text itself. */
export function rememberSecretsInside(text: string): void {
  rememberSecrets(...secretsInside(text));
}

/**
 * Remembers every secret of a raw config (as parsed from YAML and the environment, before validation, so that
 * a config refused for any reason still cannot leak): whole values under secret names, anywhere (a typo such as
 * `pasword:` included), and the passwords inside every other string.
 */
export function rememberConfigSecrets(raw: unknown, name = ''): void {
  if (typeof raw === 'string') {
    if (isSecretName(name)) rememberSecrets(raw);
    else rememberSecretsInside(raw);
  } else if (Array.isArray(raw)) {
    for (const v of raw) rememberConfigSecrets(v, name);
  } else if (raw && typeof raw === 'object') {
    for (const [k, v] of Object.entries(raw)) rememberConfigSecrets(v, k);
  }
}

/** The secrets inside a value by its shape: a URL's password, secret parameters of a URL or connection string. */
function secretsInside(value: string): string[] {
  const out: string[] = [];
  // A value that is a URL: its password is everything from the user's `:` to the last `@`, spaces included.
  const password = userInfoOf(value.trim())?.password;
  if (password) out.push(password);
  for (const m of value.matchAll(URL_USERINFO)) if (m[3]) out.push(m[3]);
  for (const m of value.matchAll(SECRET_PARAM)) if (m[3]) out.push(m[3]);
  return out.filter((s) => s !== value);
}

/** Whether a setting's name says its value is a secret (cosmosdb.key, a driver's "password", "api_token"...). */
export const isSecretName = (name: string): boolean => SECRET_NAME.test(name);

/** The text with every secret hidden, by shape and by value. */
export function redact(text: string): string {
  let out = text.replace(URL_USERINFO, (_m, scheme: string, user: string) => `${scheme}${user}:${HIDDEN}@`)
    .replace(SECRET_PARAM, (_m, lead: string, name: string) => `${lead}${name}=${HIDDEN}`);
  // Longest first, so that a secret containing another is hidden whole.
  for (const secret of [...known].sort((a, b) => b.length - a.length)) if (out.includes(secret)) out = out.split(secret).join(HIDDEN);
  return out;
}

/** postgres://user:secret@host/db?sslpassword=x -> postgres://user:***@host/db?sslpassword=***. */
export const redactUrl = (url: string): string => redact(url);

/**
 * A copy of a settings object for display: values under secret names hidden, every other string redacted (a URL
 * with a password in it stays recognisable, its password gone).
 */
export function redactSettings(value: unknown, name = ''): unknown {
  if (typeof value === 'string') return isSecretName(name) ? (value ? HIDDEN : '') : redact(value);
  if (Array.isArray(value)) return value.map((v) => redactSettings(v, name));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, isSecretName(k) && typeof v !== 'object' ? (v === '' ? '' : HIDDEN) : redactSettings(v, k)]));
  }
  return value;
}

/**
 * The user-info part of a URL as a person wrote it, found without a URL parser: a parser stops the authority at the
 * first `/`, `?` or `#`, so a password holding one of them (or an `@`) would be cut in two, part of it read as the
 * host and the rest printed in the clear. Here the user info runs from `scheme://` to the last `@` of the text
 * (a host never holds an `@`), whatever it contains.
 */
export interface UserInfo {
  readonly user: string;
  /** After the first `:` of the user info; undefined when there is none. */
  readonly password: string | undefined;
}

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

export function userInfoOf(url: string): UserInfo | undefined {
  const scheme = SCHEME.exec(url);
  if (!scheme) return undefined;
  const at = url.lastIndexOf('@');
  if (at < scheme[0].length) return undefined;
  const info = url.slice(scheme[0].length, at);
  const colon = info.indexOf(':');
  return colon < 0 ? { user: info, password: undefined } : { user: info.slice(0, colon), password: info.slice(colon + 1) };
}

/** Characters a URL's user or password must hold percent-encoded, each with its encoding. */
const MUST_ENCODE: ReadonlyArray<readonly [RegExp, string]> = [
  [/@/, '@ as %40'], [/#/, '# as %23'], [/\//, '/ as %2F'], [/\?/, '? as %3F'], [/\s/, 'a space as %20'], [/%(?![0-9a-f]{2})/i, '% as %25'],
];

/**
 * What a URL's user info holds that must be percent-encoded ("@ as %40", ...), empty when it is written right. A
 * `:` in the password needs no encoding (only the first `:` separates the user from the password).
 */
export function unencodedInUserInfo(url: string): string[] {
  const info = userInfoOf(url);
  if (!info) return [];
  const text = `${info.user}:${info.password ?? ''}`;
  return MUST_ENCODE.filter(([re]) => re.test(text)).map(([, how]) => how);
}

/** Code-point order for strings (the "sorted" of every table contract; SQLite BINARY, PostgreSQL COLLATE "C"). */
export function codePointCompare(a: string, b: string): number {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return Buffer.compare(x, y);
}

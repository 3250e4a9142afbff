import type Database from 'better-sqlite3';
/**
 * How values cross the SQLite boundary: NID lists as JSON text (`json_each` unpacks them in queries, so a list
 * is always one bound parameter, never spliced SQL), booleans as 0/1.
 */
export const nidList = (nids: readonly number[]): string => JSON.stringify(nids);
export const parseNIDList = <N extends number>(text: string): N[] => JSON.parse(text) as N[];
export const bool = (b: boolean): number => (b ? 1 : 0);
export const textList = (values: readonly string[]): string => JSON.stringify(values);

/** `IN (SELECT value FROM json_each(?))`: membership in a list bound as one JSON parameter. */
export const IN_LIST = 'IN (SELECT value FROM json_each(?))';

/** SQLite reports a UNIQUE/PRIMARY KEY violation with this code. */
export const isUniqueViolation = (e: unknown): boolean =>
  typeof e === 'object' && e !== null && ['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY'].includes((e as { code?: string }).code ?? '');

/**
 * An AUTOINCREMENT table's counter in sqlite_sequence: what it has handed out (0 before any row), and raising it
 * to at least `value`. sqlite_sequence has a table's row only once a row was ever inserted: the raise adds it.
 */
export function autoincrementSequence(db: Database.Database, table: string): number {
  return (db.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').get(table) as { seq: number } | undefined)?.seq ?? 0;
}

export function raiseAutoincrementSequence(db: Database.Database, table: string, value: number): void {
  db.prepare('INSERT INTO sqlite_sequence (name, seq) SELECT ?, 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)').run(table, table);
  db.prepare('UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?').run(value, table);
}

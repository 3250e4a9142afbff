import type pg from 'pg';
import { CorruptionError } from '../../types/errors.js';

/**
 * How values cross the PostgreSQL boundary. The dialect differences from ../sqlite/values.ts, in one place:
 * - NID lists are bigint[] (bound as JS arrays: `= ANY($1::bigint[])`), not JSON text unpacked by json_each;
 * - text lists are text[] (`= ANY($1::text[])`); booleans are boolean; hashes and block bytes are bytea (Buffers);
 * - duplicates are detected with ON CONFLICT DO NOTHING and a row count, never by catching a unique violation:
 *   on PostgreSQL a failed statement aborts the whole transaction, where SQLite lets it go on;
 * - int8 comes back as a JS number, exact or not at all: pg hands int8 over as text because a double cannot hold
 *   every int8, so every int8 (and int8[]) column is parsed here and a value at or beyond 2^53 rejects the query
 *   with CorruptionError instead of silently losing precision. NIDs never get there (MAX_NID is 2^53 - 1).
 */

const INT8_OID = 20;
const INT8_ARRAY_OID = 1016;
const LIMIT = 2 ** 53;

/** Parses an int8 as text into an exact JS number. CorruptionError if it is too large to be exact. */
export function int8(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n >= LIMIT || n <= -LIMIT) {
    throw new CorruptionError(`the store holds the integer ${text}, beyond what a NID can be (2^53 - 1)`);
  }
  return n;
}

/**
 * The type parsers every pooled client of this driver uses (`types` in the pool's config): pg's own, except int8
 * and int8[]. Per pool, not pg.types.setTypeParser, so that other users of pg in the same process are unaffected.
 * Built from the pg module the driver loaded (an optional package: see di/optional-packages.ts).
 */
export function pgTypes(pgModule: typeof pg): pg.CustomTypesConfig {
  const base = pgModule.types.getTypeParser(INT8_ARRAY_OID as never, 'text') as (text: string) => (string | null)[];
  const parseInt8Array = (text: string): number[] => base(text).map((v) => {
    if (v === null) throw new CorruptionError('the store holds a NULL inside a NID list');
    return int8(v);
  });
  return {
    getTypeParser(oid: number, format?: 'text' | 'binary'): unknown {
      if (format === undefined || format === 'text') {
        if (oid === INT8_OID) return int8;
        if (oid === INT8_ARRAY_OID) return parseInt8Array;
      }
      return pgModule.types.getTypeParser(oid as never, format ?? 'text');
    },
  } as pg.CustomTypesConfig;
}

/** A query's `rowCount` as a number (pg types it as number | null). */
export const changed = (r: { rowCount: number | null }): number => r.rowCount ?? 0;

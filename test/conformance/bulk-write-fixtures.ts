import { expect } from 'chai';
import type { Storage } from '../../src/index.js';
import type { Tx } from '../../src/storage/tables/index.js';

/*
 * What the batch-write cases share. Those cases cover the set-based table methods the batch write path
 * (EventAppender) uses, table by table: each against its contract, against the single-row method it stands for,
 * and at the edges (empty input, repeats within one call, rows already stored, hostile strings, concurrent callers,
 * transactions that commit and that roll back).
 */

export const isPositive = (nid: number) => Number.isSafeInteger(nid) && nid > 0;
export const ascending = (nids: readonly number[]) => [...nids].sort((a, b) => a - b);

/**
 * Strings a naive driver mangles: SQL quoting, LIKE wildcards, characters Cosmos DB forbids in an item id, the
 * separators a driver might join key parts with, unicode in both normal forms, case and trailing-space variants
 * (which must stay distinct).
 */
export const HOSTILE = [
  "it's", '"quoted"', '100%', 'under_score', '%', '_', 'a/b\\c', 'what?', 'hash#tag', 'ünïcødé 🎉',
  "'; DROP TABLE roomserver_events; --", 'caf\u00e9', 'cafe\u0301', 'Case', 'case', 'trailing ', 'trailing',
  '{"json": [1]}', '$1', '?', 'a|b', 'a,b', '~x', 'a:b',
];

/** An ID of exactly 255 bytes (Matrix's cap on IDs), half of them multi-byte. */
export const long255 = (sigil: string) => `${sigil}${'é'.repeat(60)}${'x'.repeat(255 - Buffer.byteLength(sigil) - 120)}`;

/** Event IDs: the hostile strings, and a 255-byte one. */
export const HOSTILE_EVENT_IDS = [...HOSTILE.map((s) => `$${s}`), long255('$')];

/** What a LIKE-style or case-folding match would find for the hostile IDs; an exact match finds none of them. */
export const LOOKALIKE_EVENT_IDS = ['$1000', '$underXscore', '$x', '$anything', '$CASE', '$trailing  ', '$caf', long255('$').slice(0, -1)];

/** A deterministic shuffle (the same on every run): a different order of the same values. */
export function shuffled<T>(values: readonly T[], seed: number): T[] {
  const out = [...values];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Asserts a rejected transaction: fn's own error comes back to the caller. */
export async function rolledBack(storage: Storage, fn: (tx: Tx) => Promise<void>): Promise<void> {
  const marker = new Error('roll back');
  let error: unknown;
  try {
    await storage.unitOfWork.transaction(async (tx) => {
      await fn(tx);
      throw marker;
    });
  } catch (e) {
    error = e;
  }
  expect(error, 'the transaction rejects with the error its function threw').to.equal(marker);
}

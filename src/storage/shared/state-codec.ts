import { createHash } from 'node:crypto';
import { CorruptionError, InvalidInputError } from '../../types/errors.js';
import { asEventNID, asEventStateKeyNID, asEventTypeNID, MAX_NID } from '../../types/nids.js';
import type { StateBlockNID } from '../../types/nids.js';
import { compareEntries, compareTuples, type StateEntry, type StateEntryList } from '../../types/state.js';

/**
 * The one encoding of a state block, shared by every driver (a BLOB on SQLite, bytea on PostgreSQL, base64 on
 * Cosmos DB), so that the same entries hash to the same block everywhere.
 *
 * Layout: a format byte, the entry count, then per entry (sorted by type, state key): the type NID as a delta
 * from the previous entry's, the state key NID as a delta when the type repeats (absolute otherwise), and the
 * event NID. All unsigned base-128 varints. A 20,000-member state costs about 5 bytes an entry, against 24 for
 * three raw int64s: that is what keeps a large room's full block far below Cosmos DB's 2 MB item limit.
 */
const FORMAT_V1 = 1;

export interface EncodedStateBlock {
  /** The entries in canonical order: sorted by (type, state key), one per tuple. */
  readonly entries: readonly StateEntry[];
  readonly bytes: Buffer;
  /** SHA-256 of `bytes`: the block's content address. */
  readonly hash: Buffer;
}

function checkNid(what: string, n: number, allowZero: boolean): void {
  if (!Number.isSafeInteger(n) || n < (allowZero ? 0 : 1) || n > MAX_NID) {
    throw new InvalidInputError(`${what} must be an integer from ${allowZero ? 0 : 1} to 2^53-1, got ${n}`);
  }
}

/**
 * Sorts and checks the entries, then encodes them. An entry given twice (same tuple, same event) counts once, as
 * Dendrite drops the repeat; a tuple given with two different events is an InvalidInputError, as is a bad NID.
 */
export function encodeStateBlock(input: readonly StateEntry[]): EncodedStateBlock {
  const entries = withoutRepeats([...input].sort(compareEntries), 'block');
  for (const e of entries) {
    checkNid('event type NID', e.eventTypeNID, false);
    checkNid('state key NID', e.eventStateKeyNID, false);
    checkNid('event NID', e.eventNID, true);
  }
  const bytes = encodePackedBlock(packEntries(entries));
  return { entries, bytes, hash: sha256(bytes) };
}

/**
 * Entries sorted by (tuple, event) with exact repeats dropped. InvalidInputError naming the tuple if one holds two
 * different events: a state has one event per (type, state key).
 */
export function withoutRepeats(sorted: readonly StateEntry[], what: 'block' | 'delta'): StateEntry[] {
  const out: StateEntry[] = [];
  for (const e of sorted) {
    const last = out[out.length - 1];
    if (last && compareTuples(last, e) === 0) {
      if (last.eventNID === e.eventNID) continue;
      throw new InvalidInputError(`a state ${what} holds one event per tuple; (${e.eventTypeNID}, ${e.eventStateKeyNID}) is given events ${last.eventNID} and ${e.eventNID}`);
    }
    out.push(e);
  }
  return out;
}

export function decodeStateBlock(bytes: Uint8Array, blockNID?: StateBlockNID): StateEntry[] {
  return unpackEntries(decodePackedBlock(bytes, blockNID));
}

/** Stored blocks' entries: what every driver's bulkSelectStateBlockEntries answers from its encoded rows. */
export function decodeStateBlockRows(rows: readonly { readonly stateBlockNID: StateBlockNID; readonly encoded: Uint8Array }[]): StateEntryList[] {
  return rows.map((r) => ({ stateBlockNID: r.stateBlockNID, stateEntries: decodeStateBlock(r.encoded, r.stateBlockNID) }));
}

/**
 * A block's entries as one array of numbers, three per entry (type NID, state key NID, event NID), sorted by
 * (type, state key): what the state layer resolves with. One Float64Array holds a 20,000-entry block in 480 kB
 * and no objects, where StateEntry objects took about 2 MB of heap and 20,000 allocations.
 */
export type PackedEntries = Float64Array;

export function decodePackedBlock(bytes: Uint8Array, blockNID?: StateBlockNID): PackedEntries {
  const r = new EntryReader(bytes, blockNID);
  // Every entry takes at least 3 bytes: a count past that is damage, not a reason to allocate.
  if (r.count * 3 > bytes.length) throw new CorruptionError(`state block ${blockNID ?? '?'} is truncated`);
  const out = new Float64Array(r.count * 3);
  for (let i = 0; r.next(); i += 3) {
    out[i] = r.type;
    out[i + 1] = r.key;
    out[i + 2] = r.event;
  }
  r.end();
  return out;
}

/** Entries between two checkpoints of a TupleIndex. */
const INDEX_STRIDE = 32;
/** Numbers per checkpoint: its entry's type and state key, the byte where it starts, the type and key before it. */
const CHECKPOINT = 5;

/**
 * Checkpoints into a block's encoding, one every INDEX_STRIDE entries, so that a tuple is found by a binary search
 * and a short read (see findEncodedTuple): about 5 numbers per 32 entries.
 */
export type TupleIndex = Float64Array;

/**
 * The event NID a block's encoding holds for one tuple (0 for a tombstone), or -1 if the block does not hold the
 * tuple: read in place, with no array made, from the nearest checkpoint of `index` if given, and only as far as the
 * tuple's place in the sorted entries. The input path looks tuples up in its room's current state for nearly every
 * event; decoding a large block each time for one entry cost more than the rest of an import of a large room.
 */
export function findEncodedTuple(bytes: Uint8Array, type: number, key: number, blockNID?: StateBlockNID, index?: TupleIndex): number {
  const r = new EntryReader(bytes, blockNID);
  if (index && index.length > 0) {
    // The last checkpoint at or before the tuple.
    if (index[0]! > type || (index[0] === type && index[1]! > key)) return -1;
    let lo = 0;
    let hi = index.length / CHECKPOINT - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      const at = mid * CHECKPOINT;
      if (index[at]! < type || (index[at] === type && index[at + 1]! <= key)) lo = mid;
      else hi = mid - 1;
    }
    const at = lo * CHECKPOINT;
    r.seek(lo * INDEX_STRIDE, index[at + 2]!, index[at + 3]!, index[at + 4]!);
  }
  while (r.next()) {
    if (r.type > type || (r.type === type && r.key > key)) return -1;
    if (r.type === type && r.key === key) return r.event;
  }
  return -1;
}

/** The checkpoints of a block's encoding (see TupleIndex): one read of the encoding. */
export function indexEncodedBlock(bytes: Uint8Array, blockNID?: StateBlockNID): TupleIndex {
  const r = new EntryReader(bytes, blockNID);
  const out = new Float64Array(Math.ceil(r.count / INDEX_STRIDE) * CHECKPOINT);
  for (let i = 0; ; i++) {
    const start = r.position();
    const typeBefore = r.type;
    const keyBefore = r.key;
    if (!r.next()) return out;
    if (i % INDEX_STRIDE !== 0) continue;
    const at = (i / INDEX_STRIDE) * CHECKPOINT;
    out[at] = r.type;
    out[at + 1] = r.key;
    out[at + 2] = start;
    out[at + 3] = typeBefore;
    out[at + 4] = keyBefore;
  }
}

/** A block's entry count, read from its encoding's header without decoding the entries (the merge policy needs only sizes). */
export function encodedEntryCount(bytes: Uint8Array, blockNID?: StateBlockNID): number {
  return new EntryReader(bytes, blockNID).count;
}

/** The encoding of entries already sorted by tuple, one per tuple (what the state layer computed); no checks. */
export function encodePackedBlock(packed: PackedEntries): Buffer {
  const out = new VarintWriter();
  out.byte(FORMAT_V1);
  out.uint(packed.length / 3);
  let prevType = 0;
  let prevKey = 0;
  for (let i = 0; i < packed.length; i += 3) {
    const type = packed[i]!;
    const key = packed[i + 1]!;
    const sameType = type === prevType;
    out.uint(type - prevType);
    out.uint(sameType ? key - prevKey : key);
    out.uint(packed[i + 2]!);
    prevType = type;
    prevKey = key;
  }
  return out.finish();
}

export function unpackEntries(packed: PackedEntries): StateEntry[] {
  const out: StateEntry[] = new Array(packed.length / 3);
  for (let i = 0, j = 0; i < packed.length; i += 3, j++) {
    out[j] = { eventTypeNID: asEventTypeNID(packed[i]!), eventStateKeyNID: asEventStateKeyNID(packed[i + 1]!), eventNID: asEventNID(packed[i + 2]!) };
  }
  return out;
}

/** Entries already sorted by tuple, packed in that order. */
export function packEntries(entries: readonly StateEntry[]): PackedEntries {
  const out = new Float64Array(entries.length * 3);
  entries.forEach((e, i) => {
    out[3 * i] = e.eventTypeNID;
    out[3 * i + 1] = e.eventStateKeyNID;
    out[3 * i + 2] = e.eventNID;
  });
  return out;
}

/**
 * The Cosmos DB content address of an ordered snapshot block list: SHA-256 of its JSON text, e.g. "[4,9,2]".
 * (Cosmos DB keys documents by the whole hash; the SQL drivers use the 32-bit content key below.)
 */
export function hashBlockList(stateBlockNIDs: readonly number[]): Buffer {
  return sha256(Buffer.from(JSON.stringify(stateBlockNIDs)));
}

const LIST_V1 = 1;

/**
 * The one binary encoding of a snapshot's ordered block list on the SQL drivers: a format byte, then each NID as
 * a signed varint delta from the one before (the first from 0). Lists run old blocks to new, so NIDs mostly
 * rise and a delta takes 1 to 2 bytes: a 33-block list is about 35 bytes, against about 200 as JSON text.
 */
export function encodeBlockList(stateBlockNIDs: readonly number[]): Buffer {
  const out = new VarintWriter();
  out.byte(LIST_V1);
  let prev = 0;
  for (const nid of stateBlockNIDs) {
    out.sint(nid - prev);
    prev = nid;
  }
  return out.finish();
}

export function decodeBlockList(bytes: Uint8Array, snapshotNID?: number): StateBlockNID[] {
  const r = new VarintReader(bytes, snapshotNID, 'state snapshot');
  if (r.byte() !== LIST_V1) throw new CorruptionError(`state snapshot ${snapshotNID ?? '?'} has an unknown format`);
  const out: StateBlockNID[] = [];
  let nid = 0;
  while (!r.atEnd()) {
    nid += r.sint();
    out.push(nid as StateBlockNID);
  }
  return out;
}

/**
 * A content key: the first 32 bits of the SHA-256 of an encoding (a block's entries, a snapshot's block list), as
 * a signed integer, 4 bytes in a row and in its unique index on either SQL engine (a 32-byte hash took 32 in
 * each). 32 bits are not collision-free, and need not be: the unique index holds a key once, a writer only takes
 * a key's row as its own after comparing the content, and two contents with one key are told apart by linear
 * probing (key + 1, key + 2, ...; see content-keys.ts). Collisions stay rare enough to cost nothing measurable:
 * with n rows stored, an insert probes a second key with probability about n / 2^32 (0.02% at a million rows).
 */
export function contentKey(bytes: Uint8Array): number {
  return sha256(bytes).readInt32BE(0);
}

/** The key probed after `key`: the next 32-bit signed integer, wrapping around. */
export const nextContentKey = (key: number): number => (key + 1) | 0;

export const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

class VarintWriter {
  private buf = Buffer.allocUnsafe(64);
  private len = 0;
  byte(b: number): void {
    if (this.len === this.buf.length) this.grow();
    this.buf[this.len++] = b;
  }
  /** Unsigned varint; arithmetic rather than bit operators because values go past 32 bits. */
  uint(n: number): void {
    while (n >= 0x80) {
      this.byte((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    this.byte(n);
  }
  /**
   * Signed varint: the first byte holds the sign (bit 6) and the low 6 bits of the magnitude, later bytes 7 bits
   * each. Unlike zigzag, nothing doubles the magnitude, so any delta between NIDs up to 2^53 stays exact.
   */
  sint(n: number): void {
    let m = Math.abs(n);
    const first = (n < 0 ? 0x40 : 0) | (m % 0x40);
    m = Math.floor(m / 0x40);
    this.byte(m > 0 ? first | 0x80 : first);
    if (m > 0) this.uint(m);
  }
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
  private grow(): void {
    const next = Buffer.allocUnsafe(this.buf.length * 2);
    this.buf.copy(next);
    this.buf = next;
  }
}

/**
 * A block encoding's entries, read in order and in place: after `next`, `type`, `key` and `event` hold the entry
 * read. Type NIDs are deltas from the entry before; a state key is a delta too within one type, and whole at a
 * type's first entry.
 */
class EntryReader {
  readonly count: number;
  type = 0;
  key = 0;
  event = 0;
  private index = 0;
  private readonly r: VarintReader;

  constructor(bytes: Uint8Array, blockNID: StateBlockNID | undefined) {
    this.r = new VarintReader(bytes, blockNID);
    if (this.r.byte() !== FORMAT_V1) throw new CorruptionError(`state block ${blockNID ?? '?'} has an unknown format`);
    this.count = this.r.uint();
  }

  next(): boolean {
    if (this.index >= this.count) return false;
    const typeDelta = this.r.uint();
    const keyPart = this.r.uint();
    this.type += typeDelta;
    this.key = typeDelta === 0 && this.index > 0 ? this.key + keyPart : keyPart;
    this.event = this.r.uint();
    this.index++;
    return true;
  }

  /** The byte where the next entry starts. */
  position(): number {
    return this.r.position();
  }

  /** Goes on from entry `index`, which starts at byte `at`, after an entry of (`type`, `key`) (see TupleIndex). */
  seek(index: number, at: number, type: number, key: number): void {
    this.r.seek(at);
    this.index = index;
    this.type = type;
    this.key = key;
  }

  end(): void {
    this.r.end();
  }
}

class VarintReader {
  private pos = 0;
  constructor(private readonly bytes: Uint8Array, private readonly blockNID: number | undefined, private readonly what = 'state block') {}
  byte(): number {
    if (this.pos >= this.bytes.length) throw new CorruptionError(`${this.what} ${this.blockNID ?? '?'} is truncated`);
    return this.bytes[this.pos++]!;
  }
  atEnd(): boolean {
    return this.pos === this.bytes.length;
  }
  position(): number {
    return this.pos;
  }
  seek(pos: number): void {
    this.pos = pos;
  }
  sint(): number {
    const first = this.byte();
    const low = first & 0x3f;
    const magnitude = first & 0x80 ? low + this.uint() * 0x40 : low;
    return first & 0x40 ? -magnitude : magnitude;
  }
  uint(): number {
    let n = 0;
    let scale = 1;
    for (;;) {
      const b = this.byte();
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 0x80;
      if (scale > 2 ** 56) throw new CorruptionError(`${this.what} ${this.blockNID ?? '?'} has an overlong number`);
    }
  }
  end(): void {
    if (this.pos !== this.bytes.length) throw new CorruptionError(`${this.what} ${this.blockNID ?? '?'} has trailing bytes`);
  }
}

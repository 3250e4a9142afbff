import type { StateBlockNID, StateSnapshotNID } from '../../types/nids.js';
import { decodeBlockList, decodePackedBlock, encodeBlockList, encodedEntryCount, findEncodedTuple, indexEncodedBlock, type PackedEntries, type TupleIndex } from './state-codec.js';

/**
 * State blocks and snapshots never change once written (they are content-addressed), so one read once can be
 * served from memory for ever after: no invalidation, across processes too.
 *
 * The cache keeps their stored encodings (a few bytes an entry) in one ring of bytes of a fixed budget, with a
 * Map from NID to offset: no object per entry and no typed array per block, so the heap holds the budget and
 * little else, and the garbage collector has nothing to trace in it. New items go in at the head; space is made
 * by dropping the oldest at the tail. An item read while in the older half of what the ring holds is written again
 * at the head, so what readers keep using stays (a clock-like approximation of least-recently-used).
 *
 * Items come out decoded (a block as packed entries, a snapshot as its block list), never as views of the
 * ring, which a later write may overwrite.
 */
/**
 * 32 MiB: about 6 million state entries (five bytes an entry), three times what the earlier default of 2,000,000
 * entries held as objects in about 100 MB of heap; chosen with bench/import-memory.ts, whose 50,000-member import
 * must stay under 200 MB of RSS.
 */
export const DEFAULT_BLOCK_CACHE_BYTES = 32 * 1024 * 1024;

class ByteRingCache<K extends number> {
  /** Bytes before each item: its length (u32), its key (f64, NIDs reach 2^53). */
  private static readonly HEADER = 12;
  /** A length that marks the rest of the ring, to its end, as unused: the next item is at offset 0. */
  private static readonly WRAP = 0xffffffff;
  private ring: Uint8Array | undefined;
  private view: DataView | undefined;
  private readonly offsets = new Map<K, number>();
  /** Where the next item goes, and where the oldest is; `used` tells a full ring from an empty one. */
  private head = 0;
  private tail = 0;
  private used = 0;

  constructor(protected readonly capacity: number) {}

  /** The item's bytes (valid until the next `set`), refreshed at the head when it has grown old. */
  protected getBytes(key: K): Uint8Array | undefined {
    const at = this.offsets.get(key);
    if (at === undefined) return undefined;
    const length = this.view!.getUint32(at, true);
    const bytes = this.ring!.subarray(at + ByteRingCache.HEADER, at + ByteRingCache.HEADER + length);
    // Offsets run from the tail (oldest) round to the head: an item in the first half of that run is old.
    const fromOldest = (at - this.tail + this.capacity) % this.capacity;
    if (fromOldest < this.used / 2) {
      const copy = bytes.slice();
      this.offsets.delete(key);
      this.setBytes(key, copy);
      return copy;
    }
    return bytes;
  }

  /** Stores an item (once: an item never changes). Items over a quarter of the budget are not kept. */
  protected setBytes(key: K, bytes: Uint8Array): void {
    const size = ByteRingCache.HEADER + bytes.length;
    if (size > this.capacity / 4 || this.offsets.has(key)) return;
    if (!this.ring) {
      // Zeroed pages are mapped lazily: the ring costs memory as it fills, not when it is made.
      this.ring = new Uint8Array(this.capacity);
      this.view = new DataView(this.ring.buffer);
    }
    const at = this.reserve(size);
    this.view!.setUint32(at, bytes.length, true);
    this.view!.setFloat64(at + 4, key, true);
    this.ring.set(bytes, at + ByteRingCache.HEADER);
    this.offsets.set(key, at);
  }

  /** Makes room for `size` contiguous bytes at the head, dropping the oldest items, and returns their offset. */
  private reserve(size: number): number {
    for (;;) {
      if (this.used === 0) this.head = this.tail = 0;
      // Free space runs from the head to the end (head at or past tail) or to the tail (head behind it).
      const wrapped = this.head < this.tail || (this.head === this.tail && this.used > 0);
      const free = wrapped ? this.tail - this.head : this.capacity - this.head;
      if (free >= size) {
        const at = this.head;
        this.head += size;
        this.used += size;
        return at;
      }
      if (!wrapped && this.tail > 0) {
        // Not enough before the end: mark the rest unused and go on from the start.
        if (this.capacity - this.head >= 4) this.view!.setUint32(this.head, ByteRingCache.WRAP, true);
        this.used += this.capacity - this.head;
        this.head = 0;
        continue;
      }
      this.dropOldest();
    }
  }

  private dropOldest(): void {
    if (this.capacity - this.tail < 4 || this.view!.getUint32(this.tail, true) === ByteRingCache.WRAP) {
      this.used -= this.capacity - this.tail;
      this.tail = 0;
      return;
    }
    const length = this.view!.getUint32(this.tail, true);
    const key = this.view!.getFloat64(this.tail + 4, true) as K;
    // The key may have been written again further on (refreshed): only its current offset counts.
    if (this.offsets.get(key) === this.tail) this.offsets.delete(key);
    const size = ByteRingCache.HEADER + length;
    this.used -= size;
    this.tail += size;
    if (this.tail === this.capacity) this.tail = 0;
  }
}

/** State block NID -> its stored encoding, decoded on the way out. */
export class BlockCache extends ByteRingCache<StateBlockNID> {
  get(nid: StateBlockNID): PackedEntries | undefined {
    const bytes = this.getBytes(nid);
    return bytes && decodePackedBlock(bytes, nid);
  }

  /**
   * Checkpoints into the blocks looked up in place (see findEncodedTuple), the latest first to stay, within a
   * sixty-fourth of the budget: a few numbers per 32 entries, so far more blocks than the ring holds.
   */
  private readonly indexes = new Map<StateBlockNID, TupleIndex>();
  private indexBytes = 0;

  /** The event NID the cached block holds for a tuple (0: a tombstone; -1: none); undefined if it is not cached. */
  findTuple(nid: StateBlockNID, type: number, key: number): number | undefined {
    const bytes = this.getBytes(nid);
    if (!bytes) return undefined;
    let index = this.indexes.get(nid);
    if (!index) {
      index = indexEncodedBlock(bytes, nid);
      this.indexes.set(nid, index);
      this.indexBytes += index.byteLength;
      for (const [oldest, dropped] of this.indexes) {
        if (this.indexBytes <= this.capacity / 64) break;
        this.indexes.delete(oldest);
        this.indexBytes -= dropped.byteLength;
      }
    }
    return findEncodedTuple(bytes, type, key, nid, index);
  }

  /** The block's entry count without decoding it (the merge policy only needs sizes). */
  size(nid: StateBlockNID): number | undefined {
    const bytes = this.getBytes(nid);
    return bytes && encodedEntryCount(bytes, nid);
  }

  set(nid: StateBlockNID, encoded: Uint8Array): void {
    this.setBytes(nid, encoded);
  }
}

/** State snapshot NID -> its ordered block NIDs, kept in the binary list encoding. */
export class SnapshotCache extends ByteRingCache<StateSnapshotNID> {
  get(nid: StateSnapshotNID): StateBlockNID[] | undefined {
    const bytes = this.getBytes(nid);
    return bytes && decodeBlockList(bytes, nid);
  }

  set(nid: StateSnapshotNID, list: readonly StateBlockNID[]): void {
    this.setBytes(nid, encodeBlockList(list));
  }
}

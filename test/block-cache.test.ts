/**
 * The state layer's caches (src/storage/shared/block-cache.ts): one ring of bytes per cache, a fixed budget, items
 * decoded on the way out. A cache may forget anything at any time; it must never answer wrongly.
 */
import { expect } from 'chai';
import { BlockCache, SnapshotCache } from '../src/storage/shared/block-cache.js';
import { decodePackedBlock, encodedEntryCount, encodeStateBlock, findEncodedTuple, indexEncodedBlock } from '../src/storage/shared/state-codec.js';
import type { StateBlockNID, StateSnapshotNID } from '../src/types/nids.js';
import type { StateEntry } from '../src/types/state.js';

const entry = (t: number, k: number, e: number) => ({ eventTypeNID: t, eventStateKeyNID: k, eventNID: e }) as StateEntry;
// Event NIDs of one varint length, so that blocks of one size take the same bytes.
const block = (n: number, size: number) => encodeStateBlock(Array.from({ length: size }, (_, i) => entry(1 + (i % 7), 1 + i, 100_000 + n * 200 + i))).bytes;
const nid = (n: number) => n as StateBlockNID;

describe('state caches', () => {
  it('a block comes back decoded, with its size, and stays while the budget holds it', () => {
    const cache = new BlockCache(64 * 1024);
    const bytes = block(1, 50);
    cache.set(nid(1), bytes);
    expect(Array.from(cache.get(nid(1))!)).to.deep.equal(Array.from(decodePackedBlock(bytes)));
    expect(cache.size(nid(1))).to.equal(50);
    expect(encodedEntryCount(bytes)).to.equal(50);
    expect(cache.get(nid(2))).to.equal(undefined);
  });

  it('past the budget the oldest items go first, and an item read while old is kept', () => {
    const cache = new BlockCache(4096);
    const bytes = block(1, 20);
    const fits = Math.floor(4096 / (bytes.length + 12));
    for (let i = 1; i <= fits; i++) cache.set(nid(i), block(i, 20));
    for (let i = 1; i <= fits; i++) expect(cache.size(nid(i)), `item ${i}`).to.equal(20);
    // Reading them all above refreshed the old half at the head; the next writes drop the rest first.
    for (let i = fits + 1; i <= fits + 3; i++) cache.set(nid(i), block(i, 20));
    const kept = Array.from({ length: fits + 3 }, (_, i) => i + 1).filter((i) => cache.get(nid(i)) !== undefined);
    expect(kept.length).to.be.at.most(fits).and.at.least(fits - 4);
    expect(kept).to.include.members([fits + 1, fits + 2, fits + 3]);
  });

  it('an item over a quarter of the budget is not kept; a zero budget keeps nothing', () => {
    const cache = new BlockCache(1000);
    cache.set(nid(1), block(1, 100));
    expect(cache.get(nid(1))).to.equal(undefined);
    const off = new BlockCache(0);
    off.set(nid(1), block(1, 1));
    expect(off.get(nid(1))).to.equal(undefined);
  });

  it('under thousands of random writes and reads it never answers with another item\'s content', () => {
    const cache = new BlockCache(40_000);
    const truth = new Map<number, Buffer>();
    let seed = 7;
    // The high bits: an LCG's low bits repeat with a short period.
    const rand = (n: number) => { seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648; return Math.floor(seed / 65_536) % n; };
    let hits = 0;
    for (let step = 0; step < 5000; step++) {
      const n = 1 + rand(400);
      if (rand(2) === 0) {
        const bytes = truth.get(n) ?? block(n, 1 + rand(120));
        truth.set(n, bytes);
        cache.set(nid(n), bytes);
      } else {
        const got = cache.get(nid(n));
        if (got) {
          hits++;
          expect(Array.from(got), `item ${n} at step ${step}`).to.deep.equal(Array.from(decodePackedBlock(truth.get(n)!)));
        }
      }
    }
    expect(hits, 'the cache served reads').to.be.above(100);
  });

  it('a snapshot comes back as its block list, in order', () => {
    const cache = new SnapshotCache(4096);
    const list = [9, 2, 2 ** 53 - 1, 7] as StateBlockNID[];
    cache.set(3 as StateSnapshotNID, list);
    expect(cache.get(3 as StateSnapshotNID)).to.deep.equal(list);
    cache.set(4 as StateSnapshotNID, []);
    expect(cache.get(4 as StateSnapshotNID)).to.deep.equal([]);
  });
});

describe('state under a cache that keeps almost nothing', () => {
  it('300 state changes through a 4 KiB cache load as a plain map says, at every step', async () => {
    // Blocks are evicted between the write path's size reads and its merges; every miss must be read again.
    const { createStorage } = await import('../src/index.js');
    const storage = await createStorage({ backend: 'sqlite', sqlite: { path: ':memory:' }, state: { block_cache_bytes: 4096 } });
    try {
      const db = storage.roomserver;
      const model = new Map<string, number>();
      let seed = 11;
      const rand = (n: number) => { seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648; return Math.floor(seed / 65_536) % n; };
      let snapshot = await db.addState(1 as never, [], []);
      for (let step = 1; step <= 300; step++) {
        const type = 1 + rand(4);
        const key = 1 + rand(150);
        const eventNID = rand(6) === 0 ? 0 : step;
        if (eventNID === 0) model.delete(`${type}:${key}`); else model.set(`${type}:${key}`, eventNID);
        const [list] = await db.stateBlockNIDs([snapshot]);
        snapshot = await db.addState(1 as never, list!.stateBlockNIDs, [entry(type, key, eventNID)]);
        const loaded = await db.loadStateAtSnapshot(snapshot);
        const expected = [...model].map(([k, e]) => [...k.split(':').map(Number), e]).sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
        expect(loaded.map((x) => [x.eventTypeNID, x.eventStateKeyNID, x.eventNID]), `step ${step}`).to.deep.equal(expected);
      }
    } finally {
      await storage.close();
    }
  });
});

describe('a tuple looked up in a block\'s encoding, in place', () => {
  /** A pseudo-random block (seeded): types 1-9, keys spread wide, some tombstones, every stride boundary crossed. */
  const randomBlock = (seed: number, size: number) => {
    let x = seed;
    const next = () => (x = (Math.imul(x, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32;
    const seen = new Set<string>();
    const entries: StateEntry[] = [];
    while (entries.length < size) {
      const t = 1 + Math.floor(next() * 9);
      const k = 1 + Math.floor(next() * 5_000);
      if (seen.has(`${t}|${k}`)) continue;
      seen.add(`${t}|${k}`);
      entries.push(entry(t, k, next() < 0.1 ? 0 : 1 + Math.floor(next() * 1e9)));
    }
    return entries;
  };

  it('answers as the decoded block does, for every tuple held and for tuples around them, with and without checkpoints', () => {
    for (const size of [0, 1, 2, 31, 32, 33, 64, 65, 1_000]) {
      const entries = randomBlock(size + 7, size);
      const bytes = encodeStateBlock(entries).bytes;
      const index = indexEncodedBlock(bytes);
      const held = new Map(entries.map((e) => [`${e.eventTypeNID}|${e.eventStateKeyNID}`, e.eventNID as number]));
      const asked = entries.flatMap((e) => [[e.eventTypeNID, e.eventStateKeyNID], [e.eventTypeNID, e.eventStateKeyNID + 1], [e.eventTypeNID, e.eventStateKeyNID - 1]]);
      asked.push([0, 0], [10, 1], [1, 0], [9, 10_000]);
      for (const [t, k] of asked) {
        const want = held.get(`${t}|${k}`) ?? -1;
        expect(findEncodedTuple(bytes, t!, k!), `size ${size}, (${t}, ${k})`).to.equal(want);
        expect(findEncodedTuple(bytes, t!, k!, undefined, index), `size ${size}, (${t}, ${k}), with checkpoints`).to.equal(want);
      }
    }
  });

  it('the cache answers from its checkpoints, and undefined for a block it does not hold', () => {
    const cache = new BlockCache(1024 * 1024);
    const entries = randomBlock(3, 500);
    cache.set(nid(9), encodeStateBlock(entries).bytes);
    const e = entries[321]!;
    expect(cache.findTuple(nid(9), e.eventTypeNID, e.eventStateKeyNID)).to.equal(e.eventNID);
    expect(cache.findTuple(nid(9), e.eventTypeNID, e.eventStateKeyNID)).to.equal(e.eventNID);
    expect(cache.findTuple(nid(10), e.eventTypeNID, e.eventStateKeyNID)).to.equal(undefined);
  });
});

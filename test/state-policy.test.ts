import { expect } from 'chai';
import { mergeStart, tierOf, type StatePolicy } from '../src/storage/shared/state-policy.js';

describe('state merge policy', () => {
  const policy: StatePolicy = { fanIn: 8, maxBlocks: 64 };

  it('merges the trailing run at or below the newest tier once it holds fan-in blocks', () => {
    expect(mergeStart([5000, 1, 1, 1, 1, 1, 1, 1], policy)).to.equal(-1);
    expect(mergeStart([5000, 1, 1, 1, 1, 1, 1, 1, 1], policy)).to.equal(1);
    // A bigger block in between stops the run.
    expect(mergeStart([5000, 1, 1, 1, 1, 9, 1, 1, 1, 1], policy)).to.equal(-1);
    // The newest block's tier decides: a small delta after bigger blocks starts a run of its own.
    expect(mergeStart([5000, 9, 9, 9, 9, 9, 9, 9, 1], policy)).to.equal(-1);
    expect(mergeStart([5000, 9, 9, 9, 9, 9, 9, 9, 9], policy)).to.equal(1);
  });

  it('past the cap merges the shortest trailing run of two blocks or more, not the whole state', () => {
    const capped: StatePolicy = { fanIn: 8, maxBlocks: 4 };
    expect([5000, 600, 70, 9, 1].map((s) => tierOf(s, 8))).to.deep.equal([4, 3, 2, 1, 0]);
    expect(mergeStart([5000, 600, 70, 9, 1], capped)).to.equal(3);
    expect(mergeStart([5000, 600, 70, 1, 1], capped)).to.equal(3);
    expect(mergeStart([5000, 600, 70, 9], capped)).to.equal(-1);
    // Two blocks over a cap of one: they can only be merged whole.
    expect(mergeStart([5000, 1], { fanIn: 8, maxBlocks: 1 })).to.equal(0);
  });

  it('keeps every snapshot within the cap, whatever the fan-in', () => {
    for (const p of [{ fanIn: 2, maxBlocks: 3 }, { fanIn: 8, maxBlocks: 10 }, { fanIn: 64, maxBlocks: 5 }, { fanIn: 16, maxBlocks: 40 }]) {
      let sizes: number[] = [];
      let seed = 7;
      for (let step = 0; step < 5000; step++) {
        seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
        sizes.push(1 + (seed % 3));
        for (let start = mergeStart(sizes, p); start >= 0; start = mergeStart(sizes, p)) {
          sizes = [...sizes.slice(0, start), sizes.slice(start).reduce((a, b) => a + b, 0)];
          if (sizes.length === 1) break;
        }
        expect(sizes.length, `${JSON.stringify(p)} step ${step}`).to.be.at.most(p.maxBlocks);
      }
    }
  });
});

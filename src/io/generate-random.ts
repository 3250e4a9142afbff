/**
 * The synthetic room generator's randomness: sfc32 (a small, fast, well-distributed 128-bit-state generator) seeded
 * from SHA-256. Only +, *, bit operations and comparisons are used on its output, so results do not depend on how a
 * JavaScript engine implements Math.log or Math.pow.
 */

export type Random = () => number;

export function sfc32(seedBytes: Buffer): Random {
  let a = seedBytes.readUInt32LE(0);
  let b = seedBytes.readUInt32LE(4);
  let c = seedBytes.readUInt32LE(8);
  let d = seedBytes.readUInt32LE(12);
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}

/** murmur3's finaliser: a stateless 32-bit mix, for values derived from a user number (names, servers). */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The entry of `list` that a random number `r` in [0, 1) falls on. */
export const pick = <T>(list: readonly T[], r: number): T => list[Math.floor(r * list.length)]!;

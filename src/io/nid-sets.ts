/**
 * Sets and maps keyed by NID, as typed arrays indexed by the NID itself: NIDs are dense from 1 (Cosmos DB's
 * reserved ranges leave gaps of at most a range), so a store's millions of events take a few bytes each, where a
 * Map would take some fifty. For the tools that read a whole store (check, rooms, purge).
 */

/** A set of NIDs: one bit each, up to the largest added. */
export class NIDSet {
  private bits = new Uint32Array(1024);
  size = 0;

  add(n: number): void {
    const word = Math.floor(n / 32);
    if (word >= this.bits.length) this.bits = grown(this.bits, word);
    const bit = 1 << (n % 32);
    if ((this.bits[word]! & bit) === 0) this.size++;
    this.bits[word]! |= bit;
  }

  has(n: number): boolean {
    const word = Math.floor(n / 32);
    return word < this.bits.length && (this.bits[word]! & (1 << (n % 32))) !== 0;
  }
}

/** NID -> a positive 32-bit value (a room NID, say); 0 means none. */
export class NIDMap {
  private values = new Uint32Array(1024);

  set(n: number, value: number): void {
    if (n >= this.values.length) this.values = grown(this.values, n);
    this.values[n] = value;
  }

  get(n: number): number {
    return n < this.values.length ? this.values[n]! : 0;
  }
}

function grown(array: Uint32Array<ArrayBuffer>, index: number): Uint32Array<ArrayBuffer> {
  const bigger = new Uint32Array(Math.max(index + 1, array.length * 2));
  bigger.set(array);
  return bigger;
}

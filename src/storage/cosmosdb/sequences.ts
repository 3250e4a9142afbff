import { CorruptionError } from '../../types/errors.js';
import { MAX_NID } from '../../types/nids.js';
import { partitionKey } from './ids.js';
import type { CosmosRequests } from './requests.js';

interface CounterDoc {
  value: number;
}

/**
 * Counters on Cosmos DB: one document per sequence, bumped with a patch `incr` (atomic on the server, so two
 * processes never get the same value, unlike a read-then-replace). NID sequences take a range of `rangeSize`
 * values per request and hand them out locally, so a NID costs a request only once per range; values a process
 * never uses are skipped (gaps are allowed). Stream positions (rangeSize 1) are taken one at a time, so they are
 * handed out in the order they are asked for.
 */
export class Sequence {
  private next = 0;
  private end = 0;
  private pending: Promise<void> | undefined;

  constructor(
    private readonly requests: CosmosRequests,
    private readonly tenant: string,
    private readonly name: string,
    /** The first value ever handed out (event type and state key NIDs start above the preassigned ones). */
    private readonly first: number,
    private readonly rangeSize: number,
  ) {}

  async nextValue(): Promise<number> {
    while (this.next >= this.end) {
      // One refill at a time: concurrent callers wait for it instead of each taking a range.
      this.pending ??= this.refill().finally(() => { this.pending = undefined; });
      await this.pending;
    }
    return this.next++;
  }

  /**
   * The highest value handed out or reserved (what a copy of the store must start above): the counter, or, when the
   * range this process holds is the last one reserved, the last value this process handed out from it (the rest of
   * that range is reserved by nobody else, so a copy need not skip it). first - 1 before any value.
   */
  async highest(): Promise<number> {
    const doc = await this.requests.read<CounterDoc>('sequence.read', 'seq', partitionKey(this.tenant, 'seq', this.name));
    const value = doc?.value ?? this.first - 1;
    return this.end > 0 && this.end - 1 === value ? this.next - 1 : value;
  }

  /**
   * Makes every value handed out from now on greater than `value` (never lowers the counter): within the range
   * this process holds, by skipping past it locally; beyond it, by giving the range up and raising the counter on
   * the ETag read (created at the value if missing). For a store no other writer is using (a copy's target).
   */
  async raiseTo(value: number): Promise<void> {
    if (!Number.isSafeInteger(value) || value > MAX_NID) throw new CorruptionError(`sequence ${this.name} cannot be raised to ${value}`);
    if (value < this.end) {
      // The counter is at end - 1 or above already.
      if (value >= this.next) this.next = value + 1;
      return;
    }
    this.next = 0;
    this.end = 0;
    const pk = partitionKey(this.tenant, 'seq', this.name);
    for (;;) {
      const outcome = await this.requests.patchWhen<CounterDoc>('sequence.raise', 'seq', pk, (doc) => doc.value < value,
        () => [{ op: 'set', path: '/value', value }]);
      if (outcome !== 'missing') return;
      if (await this.requests.create('sequence.raise', { id: 'seq', pk, k: 'seq', value: Math.max(this.first - 1, value) })) return;
    }
  }

  /** Reserves `count` consecutive values in one request (e.g. a user's device stream IDs). */
  async nextRange(count: number): Promise<number> {
    const top = await this.increment(count);
    return top - count + 1;
  }

  private async refill(): Promise<void> {
    const top = await this.increment(this.rangeSize);
    this.next = top - this.rangeSize + 1;
    this.end = top + 1;
  }

  /** Atomically adds `by`; returns the counter's new value (creating the counter at first - 1 if missing). */
  private async increment(by: number): Promise<number> {
    const pk = partitionKey(this.tenant, 'seq', this.name);
    for (;;) {
      const doc = await this.requests.patch<CounterDoc>('sequence.increment', 'seq', pk, [{ op: 'incr', path: '/value', value: by }]);
      if (doc) {
        if (!Number.isSafeInteger(doc.value) || doc.value > MAX_NID) throw new CorruptionError(`sequence ${this.name} is past 2^53`);
        return doc.value;
      }
      // First use: create the counter (a concurrent creator may win; either way the patch then succeeds).
      await this.requests.create('sequence.create', { id: 'seq', pk, k: 'seq', value: this.first - 1 });
    }
  }
}

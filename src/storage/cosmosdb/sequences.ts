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

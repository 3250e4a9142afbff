import { InvalidInputError } from '../../types/errors.js';
import { compareCodePoints } from '../canonical-json.js';

/** A binary min-heap under a comparison. */
class Heap<T> {
  private readonly items: T[] = [];
  constructor(private readonly compare: (a: T, b: T) => number) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.compare(a[i]!, a[parent]!) >= 0) break;
      [a[i], a[parent]] = [a[parent]!, a[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let min = i;
        if (l < a.length && this.compare(a[l]!, a[min]!) < 0) min = l;
        if (r < a.length && this.compare(a[r]!, a[min]!) < 0) min = r;
        if (min === i) break;
        [a[i], a[min]] = [a[min]!, a[i]!];
        i = min;
      }
    }
    return top;
  }
}

/**
 * The smallest topological ordering of `ids` under `compare` (Kahn's algorithm, taking the smallest ready node
 * each step), where a node comes after every node of `ids` it references through `edges` (its auth events):
 * the oldest events first. References to nodes outside `ids` are ignored.
 */
export function topologicalSort(ids: Iterable<string>, edges: (id: string) => readonly string[], compare: (a: string, b: string) => number): string[] {
  const nodes = new Set(ids);
  const waitingOn = new Map<string, number>();
  const dependants = new Map<string, string[]>();
  const ready = new Heap<string>(compare);
  for (const id of nodes) {
    let count = 0;
    for (const ref of new Set(edges(id))) {
      if (!nodes.has(ref) || ref === id) continue;
      count++;
      const list = dependants.get(ref);
      if (list) list.push(id);
      else dependants.set(ref, [id]);
    }
    waitingOn.set(id, count);
    if (count === 0) ready.push(id);
  }
  const order: string[] = [];
  while (ready.size > 0) {
    const id = ready.pop()!;
    order.push(id);
    for (const dependant of dependants.get(id) ?? []) {
      const left = waitingOn.get(dependant)! - 1;
      waitingOn.set(dependant, left);
      if (left === 0) ready.push(dependant);
    }
  }
  if (order.length !== nodes.size) {
    // Only events whose IDs are not hashes (v1, v2) can cite each other in a cycle: a forged auth DAG.
    const stuck = [...nodes].filter((id) => !order.includes(id)).slice(0, 10);
    throw new InvalidInputError(`the auth events of ${nodes.size - order.length} event(s) form a cycle, among them ${stuck.join(', ')}`);
  }
  return order;
}

/** What the power ordering and the mainline ordering compare an event by. */
export interface SortFacts {
  readonly power: number;
  readonly originServerTS: number;
}

/**
 * The reverse topological power ordering's comparison: the greater sender power level first, then the smaller
 * origin_server_ts, then the smaller event ID (by code points).
 */
export function powerOrderCompare(facts: (id: string) => SortFacts): (a: string, b: string) => number {
  return (a, b) => {
    const fa = facts(a);
    const fb = facts(b);
    if (fa.power !== fb.power) return fa.power > fb.power ? -1 : 1;
    if (fa.originServerTS !== fb.originServerTS) return fa.originServerTS < fb.originServerTS ? -1 : 1;
    return compareCodePoints(a, b);
  };
}

/**
 * The mainline ordering: the greater mainline position first (an event based on an older power levels event,
 * Infinity when based on none of the mainline), then the smaller origin_server_ts, then the smaller event ID.
 */
export function mainlineSort(ids: Iterable<string>, position: (id: string) => number, originServerTS: (id: string) => number): string[] {
  const keyed = [...ids].map((id) => ({ id, position: position(id), ts: originServerTS(id) }));
  keyed.sort((a, b) => {
    if (a.position !== b.position) return a.position > b.position ? -1 : 1;
    if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
    return compareCodePoints(a.id, b.id);
  });
  return keyed.map((k) => k.id);
}

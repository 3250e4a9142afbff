import { ConflictError, NotFoundError } from '../../types/errors.js';
import type { EventStateKeyNID, EventTypeNID, RoomNID } from '../../types/nids.js';
import type { Tx } from '../tables/index.js';

/**
 * The assign pattern for string -> NID maps: look up; if absent, insert; if the insert lost a race to another
 * writer (ConflictError), look up again. Mappings never change once made, so they are cached for ever.
 */
export async function assignNID<N>(
  cache: Map<string, N> | undefined,
  key: string,
  select: () => Promise<N>,
  insert: () => Promise<N>,
): Promise<N> {
  const cached = cache?.get(key);
  if (cached !== undefined) return cached;
  let nid: N;
  try {
    nid = await select();
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
    try {
      nid = await insert();
    } catch (e2) {
      if (!(e2 instanceof ConflictError)) throw e2;
      nid = await select();
    }
  }
  cache?.set(key, nid);
  return nid;
}

/** A bounded map for immutable mappings: when full, it simply starts again (cheap, and correct: it is a cache). */
export class MappingCache<N> extends Map<string, N> {
  constructor(private readonly limit: number) {
    super();
  }
  override set(key: string, value: N): this {
    if (this.size >= this.limit) this.clear();
    return super.set(key, value);
  }
}

export interface NidAssigners {
  eventType(tx: Tx, eventType: string): Promise<EventTypeNID>;
  stateKey(tx: Tx, stateKey: string): Promise<EventStateKeyNID>;
  room(tx: Tx, roomID: string, roomVersion: string): Promise<RoomNID>;
}

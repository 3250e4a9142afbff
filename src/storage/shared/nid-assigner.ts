import { ConflictError, NotFoundError } from '../../types/errors.js';
import type { EventStateKeyNID, EventTypeNID, RoomNID } from '../../types/nids.js';
import type { RoomserverTables, Tx, UnitOfWork } from '../tables/index.js';

/** A bounded map for immutable mappings: when full, it simply starts again (cheap, and correct: it is a cache). */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly limit: number) {
    super();
  }
  override set(key: K, value: V): this {
    if (this.size >= this.limit) this.clear();
    return super.set(key, value);
  }
}

/** What NidMaps.lookUpStateKeys found: the keys not stored, and the NIDs of the stored ones. */
export interface StateKeyLookup {
  readonly absent: ReadonlySet<string>;
  readonly found: ReadonlyMap<string, EventStateKeyNID>;
}

/**
 * String -> NID maps (event types, state keys, rooms) with the assign pattern: look up; if absent, insert; if the
 * insert lost a race to another writer (ConflictError), look up again. Mappings never change once committed, so
 * they are cached for ever; the caches only ever hold committed mappings.
 */
export class NidMaps {
  private readonly eventTypes_ = new BoundedMap<string, EventTypeNID>(10_000);
  private readonly stateKeys_ = new BoundedMap<string, EventStateKeyNID>(200_000);
  private readonly rooms = new BoundedMap<string, RoomNID>(10_000);
  /** Room versions never change once a room exists: read each once. */
  private readonly versions = new Map<RoomNID, string>();

  constructor(private readonly tables: RoomserverTables, private readonly uow: UnitOfWork) {}

  eventType(tx: Tx, eventType: string): Promise<EventTypeNID> {
    const t = this.tables.eventTypes;
    return this.assign(this.eventTypes_, eventType, tx,
      () => t.selectEventTypeNID(tx, eventType), () => t.insertEventTypeNID(tx, eventType));
  }

  stateKey(tx: Tx, stateKey: string): Promise<EventStateKeyNID> {
    const t = this.tables.eventStateKeys;
    return this.assign(this.stateKeys_, stateKey, tx,
      () => t.selectEventStateKeyNID(tx, stateKey), () => t.insertEventStateKeyNID(tx, stateKey));
  }

  /** The NID of an event type or a state key as this process knows it already, without asking the store. */
  knownEventType(eventType: string): EventTypeNID | undefined {
    return this.eventTypes_.get(eventType);
  }

  knownStateKey(stateKey: string): EventStateKeyNID | undefined {
    return this.stateKeys_.get(stateKey);
  }

  /**
   * Looks state keys up without creating any: the keys not stored, and the NIDs of the others, for a caller that
   * must check before it creates (see stateKeysCreating), so the lookup can go out with its reads. What is found is
   * known from then on, once the call has made sure of it where the table asks that (see
   * EventStateKeysTable.lookUpEventStateKeyNIDsForCall).
   */
  async lookUpStateKeys(tx: Tx, keys: readonly string[]): Promise<StateKeyLookup> {
    const found = new Map<string, EventStateKeyNID>();
    const missing = this.lookUp(this.stateKeys_, keys, found);
    if (missing.length === 0) return { absent: new Set(), found };
    const t = this.tables.eventStateKeys;
    const read = t.lookUpEventStateKeyNIDsForCall
      ? await t.lookUpEventStateKeyNIDsForCall(tx, missing)
      : { nids: await t.bulkSelectEventStateKeyNID(tx, missing), settled: Promise.resolve() };
    this.cacheStateKeysOnce(tx, read.nids, read.settled);
    for (const [k, v] of read.nids) found.set(k, v);
    return { absent: new Set(missing.filter((k) => !read.nids.has(k))), found };
  }

  /** stateKeys, where `lookup` says which were found stored just before and which not: none is looked up again. */
  async stateKeysCreating(tx: Tx, keys: readonly string[], lookup: StateKeyLookup): Promise<Map<string, EventStateKeyNID>> {
    const t = this.tables.eventStateKeys;
    const { absent, found } = lookup;
    const out = await this.stateKeys(tx, keys.filter((k) => !absent.has(k) && !found.has(k)));
    for (const k of keys) {
      const nid = found.get(k);
      if (nid !== undefined) out.set(k, nid);
    }
    if (t.stageEventStateKeyNIDs && absent.size > 0) {
      // Written with the call's writes: known from then on, and not before.
      const { nids, written } = await t.stageEventStateKeyNIDs(tx, [...absent]);
      this.cacheStateKeysOnce(tx, nids, written);
      for (const [k, v] of nids) out.set(k, v);
      return out;
    }
    const created = await Promise.all([...absent].map(async (k) => [k, await t.insertEventStateKeyNID(tx, k).catch((e: unknown) => {
      // Created by another writer since the lookup: its NID.
      if (e instanceof ConflictError) return t.selectEventStateKeyNID(tx, k);
      throw e;
    })] as const));
    this.uow.afterCommit(tx, () => { for (const [k, v] of created) this.stateKeys_.set(k, v); });
    for (const [k, v] of created) out.set(k, v);
    return out;
  }

  /** Caches state key NIDs once `settled` resolves (the table stored them, or made sure of them) and `tx` commits. */
  private cacheStateKeysOnce(tx: Tx, nids: ReadonlyMap<string, EventStateKeyNID>, settled: Promise<void>): void {
    settled.then(() => this.uow.afterCommit(tx, () => { for (const [k, v] of nids) this.stateKeys_.set(k, v); }), () => {});
  }

  /** Event type NIDs, creating the missing types: one call to the table for whatever the cache lacks. */
  eventTypes(tx: Tx, types: readonly string[]): Promise<Map<string, EventTypeNID>> {
    return this.assignAll(this.eventTypes_, types, tx, (missing) => this.tables.eventTypes.assignEventTypeNIDs(tx, missing));
  }

  /** State key NIDs (user IDs among them), creating the missing keys, likewise. */
  stateKeys(tx: Tx, keys: readonly string[]): Promise<Map<string, EventStateKeyNID>> {
    return this.assignAll(this.stateKeys_, keys, tx, (missing) => this.tables.eventStateKeys.assignEventStateKeyNIDs(tx, missing));
  }

  /** The stored rooms among these, by ID (missing ones omitted): one call to the table for the cache misses. */
  async knownRooms(tx: Tx, roomIDs: readonly string[]): Promise<Map<string, RoomNID>> {
    const out = new Map<string, RoomNID>();
    const missing = this.lookUp(this.rooms, roomIDs, out);
    if (missing.length > 0) {
      const read = await this.tables.rooms.bulkSelectRoomNIDs(tx, missing);
      for (const [id, nid] of read) out.set(id, nid);
      this.uow.afterCommit(tx, () => { for (const [id, nid] of read) this.rooms.set(id, nid); });
    }
    return out;
  }

  /** The cached ones into `out`; returns the others, each once. */
  private lookUp<N>(cache: BoundedMap<string, N>, keys: readonly string[], out: Map<string, N>): string[] {
    const missing = new Set<string>();
    for (const k of keys) {
      const v = cache.get(k);
      if (v !== undefined) out.set(k, v);
      else missing.add(k);
    }
    return [...missing];
  }

  private async assignAll<N>(cache: BoundedMap<string, N>, keys: readonly string[], tx: Tx, assign: (missing: string[]) => Promise<Map<string, N>>): Promise<Map<string, N>> {
    const out = new Map<string, N>();
    const missing = this.lookUp(cache, keys, out);
    if (missing.length > 0) {
      const assigned = await assign(missing);
      for (const [k, v] of assigned) out.set(k, v);
      // A mapping made (or read) inside a transaction may still be rolled back: cached only once it commits.
      this.uow.afterCommit(tx, () => { for (const [k, v] of assigned) cache.set(k, v); });
    }
    return out;
  }

  /** Creates the room row if needed; the version sticks from whichever event arrives first. */
  room(tx: Tx, roomID: string, roomVersion: string): Promise<RoomNID> {
    const t = this.tables.rooms;
    return this.assign(this.rooms, roomID, tx,
      () => t.selectRoomNID(tx, roomID), () => t.insertRoomNID(tx, roomID, roomVersion));
  }

  /**
   * The rooms' versions ("" for a room a build before room versions were required stored without one). Missing
   * rooms are omitted.
   */
  async roomVersions(tx: Tx, roomNIDs: readonly RoomNID[]): Promise<Map<RoomNID, string>> {
    const out = new Map<RoomNID, string>();
    const missing: RoomNID[] = [];
    for (const nid of new Set(roomNIDs)) {
      const v = this.versions.get(nid);
      if (v === undefined) missing.push(nid);
      else out.set(nid, v);
    }
    if (missing.length > 0) {
      const read = await this.tables.rooms.selectRoomVersionsForRoomNIDs(tx, missing);
      for (const [nid, v] of read) out.set(nid, v);
      this.uow.afterCommit(tx, () => {
        if (this.versions.size > 100_000) this.versions.clear();
        for (const [nid, v] of read) this.versions.set(nid, v);
      });
    }
    return out;
  }

  async roomVersion(tx: Tx, roomNID: RoomNID): Promise<string> {
    return (await this.roomVersions(tx, [roomNID])).get(roomNID) ?? '';
  }

  /**
   * Forgets the room's cached NID and version: the only cached mappings that can stop being true, when a purge
   * deletes the room (its NID is never handed out again, so nothing else cached about it can be reused).
   */
  evictRoom(roomID: string, roomNID: RoomNID | undefined): void {
    this.rooms.delete(roomID);
    if (roomNID !== undefined) this.versions.delete(roomNID);
  }

  /** The room's NID if the room is stored (committed or in this transaction), without creating it. */
  async knownRoom(tx: Tx, roomID: string): Promise<RoomNID | undefined> {
    const cached = this.rooms.get(roomID);
    if (cached !== undefined) return cached;
    try {
      const nid = await this.tables.rooms.selectRoomNID(tx, roomID);
      this.uow.afterCommit(tx, () => this.rooms.set(roomID, nid));
      return nid;
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  }

  private async assign<N>(
    cache: BoundedMap<string, N>, key: string, tx: Tx, select: () => Promise<N>, insert: () => Promise<N>,
  ): Promise<N> {
    const cached = cache.get(key);
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
    // A mapping made (or read) inside a transaction may still be rolled back: cached only once it commits.
    this.uow.afterCommit(tx, () => cache.set(key, nid));
    return nid;
  }
}

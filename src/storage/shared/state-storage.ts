import { inject, injectable } from 'inversify';
import { CorruptionError } from '../../types/errors.js';
import type { RoomNID, StateBlockNID, StateSnapshotNID } from '../../types/nids.js';
import { compareEntries, type StateEntry, type StateEntryList, type StateKeyTuple } from '../../types/state.js';
import { decodePackedBlock, encodedEntryCount, encodePackedBlock, findEncodedTuple, encodeStateBlock, packEntries, unpackEntries, withoutRepeats, type PackedEntries } from './state-codec.js';
import { resolvePacked } from './state-resolve.js';
import { TOKENS } from '../../di/tokens.js';
import type { RoomserverTables, SnapshotBlocks, Tx, UnitOfWork } from '../tables/index.js';
import { BlockCache, SnapshotCache } from './block-cache.js';
import { checkStatePolicy, mergeStart, type StatePolicy } from './state-policy.js';
import type { StorageOptions } from './storage-options.js';

/** Encoded blocks a unit of work has read but not yet handed to the cache (it learns only what has committed). */
type Fetched = Map<StateBlockNID, Uint8Array>;

/**
 * State snapshots over content-addressed blocks, written once for every driver.
 * Writes are crash-safe without a transaction: blocks first, then the snapshot that names them; both are
 * immutable and content-addressed, so a crash leaves only unreferenced blocks and a retry reuses them.
 * Blocks are resolved as packed entries (state-codec.ts, state-resolve.ts): StateEntry objects are made only for
 * what a caller gets back.
 */
@injectable()
export class StateStorage {
  private readonly policy: StatePolicy;
  private readonly cache: BlockCache;
  private readonly snapshots: SnapshotCache;

  constructor(
    @inject(TOKENS.RoomserverTables) private readonly tables: RoomserverTables,
    @inject(TOKENS.UnitOfWork) private readonly uow: UnitOfWork,
    @inject(TOKENS.StorageOptions) options: StorageOptions,
  ) {
    this.policy = checkStatePolicy(options.statePolicy);
    const budget = options.blockCacheBytes ?? (options.blockCacheEntries ?? 0) * 8;
    this.cache = new BlockCache(budget);
    // Block lists are small beside blocks: an eighth of the default budget holds about 80,000 snapshots of 30 blocks.
    this.snapshots = new SnapshotCache(Math.floor(budget / 8));
  }

  /** The ordered block list of a snapshot (one round trip unless cached). MissingStateError if it does not exist. */
  async blockNIDs(tx: Tx, snapshotNID: StateSnapshotNID): Promise<readonly StateBlockNID[]> {
    const cached = this.snapshots.get(snapshotNID);
    if (cached) return cached;
    const [list] = await this.tables.stateSnapshots.bulkSelectStateBlockNIDs(tx, [snapshotNID]);
    const blockNIDs = list!.stateBlockNIDs;
    this.uow.afterCommit(tx, () => this.snapshots.set(snapshotNID, blockNIDs));
    return blockNIDs;
  }

  /**
   * Block contents by NID, packed (one round trip for whatever `fetched` and the cache lack). MissingStateError if
   * any is missing. The cache learns what was read once the transaction has committed (see UnitOfWork.afterCommit).
   */
  blocks(tx: Tx, nids: readonly StateBlockNID[], fetched: Fetched = new Map()): Promise<Map<StateBlockNID, PackedEntries>> {
    return this.lookUp(tx, nids, fetched, decodePackedBlock, (nid) => this.cache.get(nid));
  }

  /**
   * The event NID a block holds for one tuple (0: a tombstone), or -1 if it does not hold it: read in place from
   * the block's encoding (see findEncodedTuple), from `fetched`, else the cache, else one read.
   */
  async tupleInBlock(tx: Tx, nid: StateBlockNID, tuple: StateKeyTuple, fetched: Fetched): Promise<number> {
    // Read this call (its blocks may not be committed yet, so nothing of them is kept), else cached (with
    // checkpoints kept), else read now.
    const find = (encoded: Uint8Array) => findEncodedTuple(encoded, tuple.eventTypeNID, tuple.eventStateKeyNID, nid);
    const read = fetched.get(nid);
    if (read) return find(read);
    const cached = this.cache.findTuple(nid, tuple.eventTypeNID, tuple.eventStateKeyNID);
    if (cached !== undefined) return cached;
    await this.fetch(tx, [nid], fetched);
    return find(fetched.get(nid)!);
  }

  /** Entry counts of blocks, read from their encodings (what the cache and `fetched` lack is fetched into `fetched`). */
  blockSizes(tx: Tx, nids: readonly StateBlockNID[], fetched: Fetched): Promise<Map<StateBlockNID, number>> {
    return this.lookUp(tx, nids, fetched, encodedEntryCount, (nid) => this.cache.size(nid));
  }

  /** Something of each block, from `fetched`, else the cache, else one read of whatever both lack. */
  private async lookUp<T>(tx: Tx, nids: readonly StateBlockNID[], fetched: Fetched,
    fromEncoded: (encoded: Uint8Array, nid: StateBlockNID) => T, fromCache: (nid: StateBlockNID) => T | undefined): Promise<Map<StateBlockNID, T>> {
    const found = new Map<StateBlockNID, T>();
    const missing = new Set<StateBlockNID>();
    for (const nid of nids) {
      if (found.has(nid)) continue;
      const read = fetched.get(nid);
      const value = read ? fromEncoded(read, nid) : fromCache(nid);
      if (value !== undefined) found.set(nid, value);
      else missing.add(nid);
    }
    if (missing.size > 0) {
      await this.fetch(tx, [...missing], fetched);
      for (const nid of missing) found.set(nid, fromEncoded(fetched.get(nid)!, nid));
    }
    return found;
  }

  /** Reads blocks' encodings into `fetched`, to be cached once the transaction commits. */
  private async fetch(tx: Tx, nids: readonly StateBlockNID[], fetched: Fetched): Promise<void> {
    const t = this.tables.stateBlocks;
    const rows = t.bulkSelectEncodedStateBlocks
      ? await t.bulkSelectEncodedStateBlocks(tx, nids)
      : (await t.bulkSelectStateBlockEntries(tx, nids)).map((l) => ({ stateBlockNID: l.stateBlockNID, encoded: encodeStateBlock(l.stateEntries).bytes }));
    for (const row of rows) fetched.set(row.stateBlockNID, row.encoded);
    this.uow.afterCommit(tx, () => { for (const row of rows) this.cache.set(row.stateBlockNID, row.encoded); });
  }

  /** The state of a snapshot whose block list was read already (joined with its event or room): one round trip. */
  async loadState(tx: Tx, at: SnapshotBlocks): Promise<StateEntry[]> {
    if (at.stateSnapshotNID !== 0) this.uow.afterCommit(tx, () => this.snapshots.set(at.stateSnapshotNID, at.stateBlockNIDs));
    return this.resolved(tx, at.stateBlockNIDs);
  }

  /** The state at a snapshot: blocks applied in order, later ones winning, tombstones dropped; sorted by tuple. */
  async loadStateAtSnapshot(tx: Tx, snapshotNID: StateSnapshotNID): Promise<StateEntry[]> {
    return this.resolved(tx, await this.blockNIDs(tx, snapshotNID));
  }

  private async resolved(tx: Tx, order: readonly StateBlockNID[]): Promise<StateEntry[]> {
    const contents = await this.blocks(tx, order);
    return unpackEntries(resolvePacked(order.map((nid) => contents.get(nid)!), true));
  }

  /** The block lists of many snapshots: the cached ones, and one read of the rest. MissingStateError if any is missing. */
  async blockLists(tx: Tx, snapshotNIDs: readonly StateSnapshotNID[]): Promise<Map<StateSnapshotNID, readonly StateBlockNID[]>> {
    const out = new Map<StateSnapshotNID, readonly StateBlockNID[]>();
    const missing: StateSnapshotNID[] = [];
    for (const nid of new Set(snapshotNIDs)) {
      const cached = nid === 0 ? [] : this.snapshots.get(nid);
      if (cached) out.set(nid, cached);
      else missing.push(nid);
    }
    if (missing.length > 0) {
      for (const list of await this.tables.stateSnapshots.bulkSelectStateBlockNIDs(tx, missing)) {
        out.set(list.stateSnapshotNID, list.stateBlockNIDs);
        this.uow.afterCommit(tx, () => this.snapshots.set(list.stateSnapshotNID, list.stateBlockNIDs));
      }
    }
    return out;
  }

  /**
   * For each state (an ordered block list), the event NID it holds for each tuple (0: none), read from its newest
   * block down: the blocks of every state in one read of what the cache lacks, and no state resolved whole.
   */
  async lookupTuples(tx: Tx, states: readonly (readonly StateBlockNID[])[], tuples: readonly StateKeyTuple[]): Promise<number[][]> {
    const contents = await this.blocks(tx, [...new Set(states.flat())]);
    return states.map((order) => tuples.map((t) => {
      for (let i = order.length - 1; i >= 0; i--) {
        const packed = contents.get(order[i]!)!;
        const at = findTuple(packed, t.eventTypeNID, t.eventStateKeyNID);
        if (at >= 0) return packed[at + 2]!;
      }
      return 0;
    }));
  }

  /**
   * For each state (an ordered block list), its entries of these types, sorted by tuple: every block in one read of
   * what the cache lacks, each block cut to those types before the blocks are merged, so entries of other types
   * are never merged or made into objects.
   */
  async entriesOfTypes(tx: Tx, states: readonly (readonly StateBlockNID[])[], typeNIDs: ReadonlySet<number>): Promise<StateEntry[][]> {
    const contents = await this.blocks(tx, [...new Set(states.flat())]);
    const cut = new Map<StateBlockNID, PackedEntries>();
    for (const [nid, packed] of contents) {
      const kept: number[] = [];
      for (let i = 0; i < packed.length; i += 3) if (typeNIDs.has(packed[i]!)) kept.push(packed[i]!, packed[i + 1]!, packed[i + 2]!);
      cut.set(nid, Float64Array.from(kept));
    }
    return states.map((order) => unpackEntries(resolvePacked(order.map((nid) => cut.get(nid)!), true)));
  }

  /**
   * The given blocks' entries, each list filtered to the tuples asked for (every entry when `tuples` is empty).
   * Blocks with nothing matching are still listed, with no entries. MissingStateError if a block is missing.
   */
  async stateEntriesForTuples(tx: Tx, blockNIDs: readonly StateBlockNID[], tuples: readonly StateKeyTuple[]): Promise<StateEntryList[]> {
    const wanted = new Map<number, Set<number>>();
    for (const t of tuples) {
      const keys = wanted.get(t.eventTypeNID) ?? new Set<number>();
      keys.add(t.eventStateKeyNID);
      wanted.set(t.eventTypeNID, keys);
    }
    const blocks = await this.blocks(tx, blockNIDs);
    return blockNIDs.map((nid) => {
      const entries = unpackEntries(blocks.get(nid)!);
      return { stateBlockNID: nid, stateEntries: wanted.size === 0 ? entries : entries.filter((e) => wanted.get(e.eventTypeNID)?.has(e.eventStateKeyNID)) };
    });
  }

  /**
   * Stores the state made of `baseBlockNIDs` (in order) overridden by `delta`, merging trailing blocks as the
   * policy says, and returns its snapshot NID. An entry with event NID 0 in the delta removes its tuple.
   * With no blocks and no delta this is the empty snapshot, which every room shares.
   */
  async addState(tx: Tx, roomNID: RoomNID, baseBlockNIDs: readonly StateBlockNID[], delta: readonly StateEntry[]): Promise<StateSnapshotNID> {
    const plan = this.plan(tx, roomNID);
    const snapshot = await plan.derive(baseBlockNIDs, delta);
    await plan.write();
    return plan.nid(snapshot);
  }

  /** Stores the state after a state event: the state before it, with the event's own entry on top. */
  async addStateAfter(tx: Tx, roomNID: RoomNID, beforeSnapshotNID: StateSnapshotNID, entry: StateEntry): Promise<StateSnapshotNID> {
    return this.addState(tx, roomNID, await this.blockNIDs(tx, beforeSnapshotNID), [entry]);
  }

  /**
   * A plan of new states for one room: states derived from stored snapshots or from states planned before it, kept
   * in memory until `write` stores their new blocks and snapshots, in bulk (blocks first, then the snapshots
   * naming them). The write path chains a batch of events' states through one plan.
   */
  plan(tx: Tx, roomNID: RoomNID): StatePlan {
    return new StatePlan(this, tx, roomNID);
  }

  /** @internal A snapshot's block list if the cache has it. */
  cachedBlockNIDs(snapshotNID: StateSnapshotNID): readonly StateBlockNID[] | undefined {
    return this.snapshots.get(snapshotNID);
  }

  /** @internal The merge policy's cut point over a plan's block sizes. */
  mergeStartFor(sizes: readonly number[]): number {
    return mergeStart(sizes, this.policy);
  }

  /** @internal Caches, once the transaction commits, what a plan wrote. */
  learn(tx: Tx, blocks: readonly [StateBlockNID, PackedEntries][], snapshots: readonly [StateSnapshotNID, readonly StateBlockNID[]][]): void {
    this.uow.afterCommit(tx, () => {
      for (const [nid, packed] of blocks) this.cache.set(nid, encodePackedBlock(packed));
      for (const [nid, list] of snapshots) this.snapshots.set(nid, list);
    });
  }

  /** @internal */
  get stateTables(): Pick<RoomserverTables, 'stateBlocks' | 'stateSnapshots'> {
    return this.tables;
  }
}

/** The offset of a tuple in packed entries sorted by tuple (binary search), or -1. */
function findTuple(packed: PackedEntries, type: number, key: number): number {
  let lo = 0;
  let hi = packed.length / 3 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const t = packed[mid * 3]!;
    const k = packed[mid * 3 + 1]!;
    if (t === type && k === key) return mid * 3;
    if (t < type || (t === type && k < key)) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** A block a plan will write: its entries, packed and sorted; its NID once written. */
interface NewBlock {
  readonly packed: PackedEntries;
  nid?: StateBlockNID;
}

/** A block of a planned state: stored (its NID) or new. */
type BlockRef = StateBlockNID | NewBlock;

/** A state a plan will write: its ordered blocks; its NID once written. */
export interface PlannedState {
  readonly blocks: readonly BlockRef[];
  nid?: StateSnapshotNID;
}

/** A state to build on: a stored snapshot, or one planned earlier in the same plan. */
export type StateRef = StateSnapshotNID | PlannedState;

export class StatePlan {
  private readonly newBlocks: NewBlock[] = [];
  private readonly newStates: PlannedState[] = [];
  /** Blocks this plan has read, until its transaction commits and the cache learns them. */
  private readonly fetched: Fetched = new Map();

  constructor(private readonly storage: StateStorage, private readonly tx: Tx, private readonly roomNID: RoomNID) {}

  /**
   * The state `base` (a stored or planned snapshot, or an ordered list of stored blocks) overridden by `delta`,
   * trailing blocks merged as the policy says. Reads stored block lists, and the blocks the caches lack: sizes for
   * every block (from their encodings), contents only for the blocks a merge rewrites.
   */
  async derive(base: StateRef | readonly StateBlockNID[], delta: readonly StateEntry[]): Promise<PlannedState> {
    // Plain entries only: callers pass richer objects (a StateAtEvent), which must not leak into blocks.
    // An entry given twice counts once; a tuple given two events is refused.
    const entries = withoutRepeats(delta.map(({ eventTypeNID, eventStateKeyNID, eventNID }) => ({ eventTypeNID, eventStateKeyNID, eventNID }))
      .sort(compareEntries), 'delta');
    const order: BlockRef[] = Array.isArray(base) ? [...(base as readonly StateBlockNID[])]
      : typeof base === 'number' ? [...await this.storage.blockNIDs(this.tx, base)]
        : [...(base as PlannedState).blocks];
    if (entries.length > 0) {
      // A delta on top of nothing has nothing to hide: drop its tombstones.
      order.push(this.block(packEntries(order.length === 0 ? entries.filter((e) => e.eventNID !== 0) : entries)));
    }
    const stored = order.filter((b): b is StateBlockNID => typeof b === 'number');
    const storedSizes = stored.length > 0 ? await this.storage.blockSizes(this.tx, stored, this.fetched) : new Map<StateBlockNID, number>();
    const sizes = order.map((b) => (typeof b === 'number' ? storedSizes.get(b)! : b.packed.length / 3));
    for (let start = this.storage.mergeStartFor(sizes); start >= 0; start = this.storage.mergeStartFor(sizes)) {
      const merging = order.slice(start);
      const read = await this.storage.blocks(this.tx, merging.filter((b): b is StateBlockNID => typeof b === 'number'), this.fetched);
      const merged = this.block(resolvePacked(merging.map((b) => (typeof b === 'number' ? read.get(b)! : b.packed)), start === 0));
      order.splice(start, order.length - start, merged);
      sizes.splice(start, sizes.length - start, merged.packed.length / 3);
      if (order.length === 1) break;
    }
    const state: PlannedState = { blocks: order };
    this.newStates.push(state);
    return state;
  }

  /** Writes the plan's new blocks, then its new snapshots; afterwards `nid` answers for every state planned. */
  async write(): Promise<void> {
    const t = this.storage.stateTables;
    // Only the blocks a planned state names: a delta block that a merge folded into a bigger one is named by
    // nothing, and written it would only cost space (and belong to no room a purge could find it through).
    const named = new Set(this.newStates.flatMap((s) => s.blocks));
    const blocks = this.newBlocks.filter((b) => b.nid === undefined && named.has(b));
    const together = t.stateSnapshots.bulkInsertBlocksAndStates;
    const unwritten = this.newStates.filter((s) => s.nid === undefined);
    if (together && blocks.length > 0 && unwritten.length > 0) {
      // Both at once where the driver writes them together (see StateSnapshotTable.bulkInsertBlocksAndStates).
      const index = new Map(blocks.map((b, i) => [b, i]));
      const lists = unwritten.map((s) => s.blocks.map((b) => (typeof b === 'number' ? b : b.nid ?? { block: index.get(b)! })));
      const { blockNIDs, stateNIDs } = await together.call(t.stateSnapshots, this.tx, this.roomNID, blocks.map((b) => unpackEntries(b.packed)), lists);
      blocks.forEach((b, i) => { b.nid = blockNIDs[i]!; });
      unwritten.forEach((s, i) => { s.nid = stateNIDs[i]!; });
      this.storage.learn(this.tx, blocks.map((b) => [b.nid!, b.packed]), unwritten.map((s) => [s.nid!, s.blocks.map((b) => (typeof b === 'number' ? b : b.nid!))]));
      return;
    }
    if (blocks.length > 0) {
      const nids = await t.stateBlocks.bulkInsertStateBlocks(this.tx, blocks.map((b) => unpackEntries(b.packed)));
      blocks.forEach((b, i) => { b.nid = nids[i]!; });
    }
    const states = this.newStates.filter((s) => s.nid === undefined);
    if (states.length > 0) {
      const lists = states.map((s) => s.blocks.map((b) => (typeof b === 'number' ? b : b.nid!)));
      const nids = await t.stateSnapshots.bulkInsertStates(this.tx, this.roomNID, lists);
      states.forEach((s, i) => { s.nid = nids[i]!; });
      this.storage.learn(this.tx, blocks.map((b) => [b.nid!, b.packed]), states.map((s, i) => [s.nid!, lists[i]!]));
    }
  }

  /**
   * The whole state of a stored or planned snapshot, packed and sorted by tuple (tombstones dropped): for comparing
   * and combining states, where an event's prev events or a room's forward extremities disagree.
   */
  async packed(state: StateRef): Promise<PackedEntries> {
    const order = await this.order(state);
    const read = await this.storage.blocks(this.tx, order.filter((b): b is StateBlockNID => typeof b === 'number'), this.fetched);
    return resolvePacked(order.map((b) => (typeof b === 'number' ? read.get(b)! : b.packed)), true);
  }

  /** The entries of a stored or planned snapshot, sorted by tuple. */
  async entries(state: StateRef): Promise<StateEntry[]> {
    return unpackEntries(await this.packed(state));
  }

  /**
   * The event NID a state holds for one tuple (0: none), read from its newest block down: no whole-state load, and
   * the blocks are mostly cached (the room's current state's are).
   */
  async lookup(state: StateRef, tuple: StateKeyTuple): Promise<number> {
    const order = await this.order(state);
    // Block by block from the newest: a tuple changed lately is found without decoding the large old blocks.
    for (let i = order.length - 1; i >= 0; i--) {
      const b = order[i]!;
      if (typeof b === 'number') {
        const event = await this.storage.tupleInBlock(this.tx, b, tuple, this.fetched);
        if (event >= 0) return event;
        continue;
      }
      const at = findTuple(b.packed, tuple.eventTypeNID, tuple.eventStateKeyNID);
      if (at >= 0) return b.packed[at + 2]!;
    }
    return 0;
  }

  private async order(state: StateRef): Promise<readonly BlockRef[]> {
    if (typeof state !== 'number') return state.blocks;
    return state === 0 ? [] : this.storage.blockNIDs(this.tx, state);
  }

  /** A state's block list, where it is known without a read: a planned state once written, or a cached snapshot. */
  blockNIDsOf(state: StateRef): readonly StateBlockNID[] | undefined {
    if (typeof state === 'number') return state === 0 ? [] : this.storage.cachedBlockNIDs(state);
    if (state.nid === undefined) return undefined;
    return state.blocks.map((b) => (typeof b === 'number' ? b : b.nid!));
  }

  /** A stored snapshot's NID, or a planned one's once written. */
  nid(state: StateRef): StateSnapshotNID {
    if (typeof state === 'number') return state;
    if (state.nid === undefined) throw new CorruptionError('a planned state was used before the plan was written');
    return state.nid;
  }

  private block(packed: PackedEntries): NewBlock {
    const block: NewBlock = { packed };
    this.newBlocks.push(block);
    return block;
  }
}

import { inject, injectable } from 'inversify';
import { CorruptionError } from '../../types/errors.js';
import type { RoomNID, StateBlockNID, StateSnapshotNID } from '../../types/nids.js';
import { compareEntries, compareTuples, tupleKey, type StateEntry, type StateEntryList, type StateKeyTuple } from '../../types/state.js';
import { withoutRepeats } from './state-codec.js';
import { TOKENS } from '../../di/tokens.js';
import type { RoomserverTables, SnapshotBlocks, Tx, UnitOfWork } from '../tables/index.js';
import { BlockCache, SnapshotCache } from './block-cache.js';
import { checkStatePolicy, mergeStart, type StatePolicy } from './state-policy.js';
import type { StorageOptions } from './storage-options.js';


/**
 * State snapshots over content-addressed blocks, written once for every driver.
 * Writes are crash-safe without a transaction: blocks first, then the snapshot that names them; both are
 * immutable and content-addressed, so a crash leaves only unreferenced blocks and a retry reuses them.
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
    this.cache = new BlockCache(options.blockCacheEntries);
    this.snapshots = new SnapshotCache(options.blockCacheEntries);
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
   * Block contents by NID (one round trip for whatever `known` and the cache lack). MissingStateError if any is
   * missing. Caches learn what was read once the transaction has committed (see UnitOfWork.afterCommit).
   */
  async blocks(tx: Tx, nids: readonly StateBlockNID[], known?: ReadonlyMap<StateBlockNID, readonly StateEntry[]>): Promise<Map<StateBlockNID, readonly StateEntry[]>> {
    const found = new Map<StateBlockNID, readonly StateEntry[]>();
    const missing: StateBlockNID[] = [];
    for (const nid of nids) {
      const cached = known?.get(nid) ?? this.cache.get(nid);
      if (cached) found.set(nid, cached);
      else missing.push(nid);
    }
    if (missing.length > 0) {
      const lists = await this.tables.stateBlocks.bulkSelectStateBlockEntries(tx, missing);
      for (const list of lists) found.set(list.stateBlockNID, list.stateEntries);
      this.uow.afterCommit(tx, () => { for (const list of lists) this.cache.set(list.stateBlockNID, list.stateEntries); });
    }
    return found;
  }

  /** The state of a snapshot whose block list was read already (joined with its event or room): one round trip. */
  async loadState(tx: Tx, at: SnapshotBlocks): Promise<StateEntry[]> {
    if (at.stateSnapshotNID !== 0) this.uow.afterCommit(tx, () => this.snapshots.set(at.stateSnapshotNID, at.stateBlockNIDs));
    return this.resolve(at.stateBlockNIDs, await this.blocks(tx, at.stateBlockNIDs), true);
  }

  /** The state at a snapshot: blocks applied in order, later ones winning, tombstones dropped; sorted by tuple. */
  async loadStateAtSnapshot(tx: Tx, snapshotNID: StateSnapshotNID): Promise<StateEntry[]> {
    const order = await this.blockNIDs(tx, snapshotNID);
    return this.resolve(order, await this.blocks(tx, order), true);
  }

  /**
   * The given blocks' entries, each list filtered to the tuples asked for (every entry when `tuples` is empty).
   * Blocks with nothing matching are still listed, with no entries. MissingStateError if a block is missing.
   */
  async stateEntriesForTuples(tx: Tx, blockNIDs: readonly StateBlockNID[], tuples: readonly StateKeyTuple[]): Promise<StateEntryList[]> {
    const wanted = new Set(tuples.map(tupleKey));
    const blocks = await this.blocks(tx, blockNIDs);
    return blockNIDs.map((nid) => ({
      stateBlockNID: nid,
      stateEntries: blocks.get(nid)!.filter((e) => wanted.size === 0 || wanted.has(tupleKey(e))),
    }));
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
  learn(tx: Tx, blocks: readonly [StateBlockNID, readonly StateEntry[]][], snapshots: readonly [StateSnapshotNID, readonly StateBlockNID[]][]): void {
    this.uow.afterCommit(tx, () => {
      for (const [nid, entries] of blocks) this.cache.set(nid, entries);
      for (const [nid, list] of snapshots) this.snapshots.set(nid, list);
    });
  }

  /** @internal */
  get stateTables(): Pick<RoomserverTables, 'stateBlocks' | 'stateSnapshots'> {
    return this.tables;
  }

  /** Applies blocks in order (later wins). Tombstones are kept unless `dropTombstones`. Sorted by tuple. */
  resolve<K>(order: readonly K[], contents: ReadonlyMap<K, readonly StateEntry[]>, dropTombstones: boolean): StateEntry[] {
    const byTuple = new Map<string, StateEntry>();
    for (const nid of order) {
      const block = contents.get(nid);
      if (!block) throw new CorruptionError(`state block ${nid} is named by a snapshot but was not loaded`);
      for (const e of block) byTuple.set(tupleKey(e), e);
    }
    const out: StateEntry[] = [];
    for (const e of byTuple.values()) if (!dropTombstones || e.eventNID !== 0) out.push(e);
    return out.sort(compareTuples);
  }
}

/** A block a plan will write: its entries, sorted; its NID once written. */
interface NewBlock {
  readonly entries: readonly StateEntry[];
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

  constructor(private readonly storage: StateStorage, private readonly tx: Tx, private readonly roomNID: RoomNID) {}

  /**
   * The state `base` (a stored or planned snapshot, or an ordered list of stored blocks) overridden by `delta`,
   * trailing blocks merged as the policy says. Reads stored block lists and blocks the caches lack.
   */
  async derive(base: StateRef | readonly StateBlockNID[], delta: readonly StateEntry[]): Promise<PlannedState> {
    // Plain entries only: callers pass richer objects (a StateAtEvent), which must not leak into blocks or the cache.
    // An entry given twice counts once; a tuple given two events is refused.
    const entries = withoutRepeats(delta.map(({ eventTypeNID, eventStateKeyNID, eventNID }) => ({ eventTypeNID, eventStateKeyNID, eventNID }))
      .sort(compareEntries), 'delta');
    const order: BlockRef[] = Array.isArray(base) ? [...(base as readonly StateBlockNID[])]
      : typeof base === 'number' ? [...await this.storage.blockNIDs(this.tx, base)]
        : [...(base as PlannedState).blocks];
    if (entries.length > 0) {
      // A delta on top of nothing has nothing to hide: drop its tombstones.
      order.push(this.block(order.length === 0 ? entries.filter((e) => e.eventNID !== 0) : entries));
    }
    const contents = await this.contents(order);
    for (let start = this.storage.mergeStartFor(order.map((b) => contents.get(b)!.length)); start >= 0;
      start = this.storage.mergeStartFor(order.map((b) => contents.get(b)!.length))) {
      const merged = this.block(this.storage.resolve(order.slice(start), contents, start === 0));
      contents.set(merged, merged.entries);
      order.splice(start, order.length - start, merged);
      if (order.length === 1) break;
    }
    const state: PlannedState = { blocks: order };
    this.newStates.push(state);
    return state;
  }

  /** Writes the plan's new blocks, then its new snapshots; afterwards `nid` answers for every state planned. */
  async write(): Promise<void> {
    const t = this.storage.stateTables;
    const blocks = this.newBlocks.filter((b) => b.nid === undefined);
    if (blocks.length > 0) {
      const nids = await t.stateBlocks.bulkInsertStateBlocks(this.tx, blocks.map((b) => b.entries));
      blocks.forEach((b, i) => { b.nid = nids[i]!; });
    }
    const states = this.newStates.filter((s) => s.nid === undefined);
    if (states.length > 0) {
      const lists = states.map((s) => s.blocks.map((b) => (typeof b === 'number' ? b : b.nid!)));
      const nids = await t.stateSnapshots.bulkInsertStates(this.tx, this.roomNID, lists);
      states.forEach((s, i) => { s.nid = nids[i]!; });
      this.storage.learn(this.tx, blocks.map((b) => [b.nid!, b.entries]), states.map((s, i) => [s.nid!, lists[i]!]));
    }
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

  private block(entries: readonly StateEntry[]): NewBlock {
    const block: NewBlock = { entries: [...entries].sort(compareTuples) };
    this.newBlocks.push(block);
    return block;
  }

  private async contents(order: readonly BlockRef[]): Promise<Map<BlockRef, readonly StateEntry[]>> {
    const stored = order.filter((b): b is StateBlockNID => typeof b === 'number');
    const read = stored.length > 0 ? await this.storage.blocks(this.tx, stored) : new Map<StateBlockNID, readonly StateEntry[]>();
    return new Map(order.map((b) => [b, typeof b === 'number' ? read.get(b)! : b.entries]));
  }
}

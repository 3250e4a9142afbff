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
    // Plain entries only: callers pass richer objects (a StateAtEvent), which must not leak into blocks or the cache.
    // An entry given twice counts once; a tuple given two events is refused.
    delta = withoutRepeats(delta.map(({ eventTypeNID, eventStateKeyNID, eventNID }) => ({ eventTypeNID, eventStateKeyNID, eventNID }))
      .sort(compareEntries), 'delta');
    const order = [...baseBlockNIDs];
    const written = new Map<StateBlockNID, readonly StateEntry[]>();
    if (delta.length > 0) {
      // A delta on top of nothing has nothing to hide: drop its tombstones.
      order.push(await this.storeBlock(tx, order.length === 0 ? delta.filter((e) => e.eventNID !== 0) : delta, written));
    }
    const contents = await this.blocks(tx, order, written);
    for (let start = this.mergePoint(order, contents); start >= 0; start = this.mergePoint(order, contents)) {
      const merged = this.resolve(order.slice(start), contents, start === 0);
      const nid = await this.storeBlock(tx, merged, contents);
      order.splice(start, order.length - start, nid);
      if (order.length === 1) break;
    }
    const snapshotNID = await this.tables.stateSnapshots.insertState(tx, roomNID, order);
    this.uow.afterCommit(tx, () => this.snapshots.set(snapshotNID, order));
    return snapshotNID;
  }

  /** Stores the state after a state event: the state before it, with the event's own entry on top. */
  async addStateAfter(tx: Tx, roomNID: RoomNID, beforeSnapshotNID: StateSnapshotNID, entry: StateEntry): Promise<StateSnapshotNID> {
    return this.addState(tx, roomNID, await this.blockNIDs(tx, beforeSnapshotNID), [entry]);
  }

  private mergePoint(order: readonly StateBlockNID[], contents: Map<StateBlockNID, readonly StateEntry[]>): number {
    return mergeStart(order.map((nid) => contents.get(nid)!.length), this.policy);
  }

  /** Stores a block; `written` learns its entries at once, the cache once the transaction commits. */
  private async storeBlock(tx: Tx, entries: readonly StateEntry[], written: Map<StateBlockNID, readonly StateEntry[]>): Promise<StateBlockNID> {
    const nid = await this.tables.stateBlocks.insertStateBlock(tx, entries);
    const sorted = [...entries].sort(compareTuples);
    written.set(nid, sorted);
    this.uow.afterCommit(tx, () => this.cache.set(nid, sorted));
    return nid;
  }

  /** Applies blocks in order (later wins). Tombstones are kept unless `dropTombstones`. Sorted by tuple. */
  private resolve(order: readonly StateBlockNID[], contents: Map<StateBlockNID, readonly StateEntry[]>, dropTombstones: boolean): StateEntry[] {
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

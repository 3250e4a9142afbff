/**
 * The peer state schemes of the state-storage benchmark, each over its own plain SQLite tables, and the floor they
 * are all measured against. Every scheme encodes its tuples with the store's own codec (state-codec.ts), so that
 * bytes differ by scheme, not by encoding. None stores the event -> state pointer (every scheme needs one).
 *
 * - floor, the delta log: one row per state event (type, state key, event). The least any scheme must write, but a
 *   lookup must replay the whole log.
 * - (a) a full snapshot per state change: one read per lookup, the whole state written at every change.
 * - (b) Dendrite's rule: content-addressed blocks and snapshots; a state change appends a one-tuple delta block
 *   until the snapshot has 64 blocks, and then writes one full block instead.
 * - (c) Synapse's state groups: a group per state change, a delta on its predecessor (it can only add or overwrite
 *   tuples) until the chain is 100 hops long (MAX_STATE_DELTA_HOPS); then, or when a tuple must be removed, a full
 *   snapshot with no predecessor.
 */
import type Database from 'better-sqlite3';
import { encodeStateBlock, hashBlockList } from '../src/storage/shared/state-codec.js';
import { compareTuples, type StateEntry } from '../src/types/state.js';

/** A room's resolved state, kept sorted by tuple so that writing it whole costs no sort. */
export class SortedState {
  private readonly list: StateEntry[] = [];

  get entries(): readonly StateEntry[] {
    return this.list;
  }

  /** Applies one change: an event NID of 0 removes the tuple. Returns whether a tuple was removed. */
  apply(e: StateEntry): boolean {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareTuples(this.list[mid]!, e) < 0) lo = mid + 1;
      else hi = mid;
    }
    const found = lo < this.list.length && compareTuples(this.list[lo]!, e) === 0;
    if (e.eventNID === 0) {
      if (found) this.list.splice(lo, 1);
      return found;
    }
    if (found) this.list[lo] = e;
    else this.list.splice(lo, 0, e);
    return false;
  }
}

/** A way of storing the state after every state change. `store` runs inside the caller's SQLite transaction. */
export interface StateScheme {
  readonly name: string;
  /** Its tables, whose bytes (indexes included) are its cost on disk. */
  readonly tables: readonly string[];
  /** Stores the state after `change`; `state` already includes it; `removed`: the change removed a tuple. */
  store(change: StateEntry, state: SortedState, removed: boolean): void;
  /** Tuples stored so far (a content-addressed scheme does not count a block it already had). */
  readonly tuples: number;
  /** The most records one lookup of a state has had to read so far, in `lookupUnit`s. */
  readonly maxLookup: number;
  /** What a lookup walks: blocks of a snapshot, hops along a chain of groups, rows of a log. */
  readonly lookupUnit: 'blocks' | 'hops' | 'rows';
  /** Entries read per full lookup, summed over every state stored (divide by the live entries summed). */
  readonly entriesRead: number;
}

export class DeltaLog implements StateScheme {
  readonly name = 'floor: delta log (one row per state event)';
  readonly tables = ['state_delta'];
  readonly lookupUnit = 'rows';
  tuples = 0;
  maxLookup = 0;
  entriesRead = 0;
  private readonly insert: Database.Statement;

  constructor(db: Database.Database) {
    db.exec('CREATE TABLE state_delta (event_nid INTEGER PRIMARY KEY, event_type_nid INTEGER NOT NULL, event_state_key_nid INTEGER NOT NULL)');
    this.insert = db.prepare('INSERT INTO state_delta (event_nid, event_type_nid, event_state_key_nid) VALUES (?, ?, ?)');
  }

  store(change: StateEntry): void {
    this.insert.run(change.eventNID, change.eventTypeNID, change.eventStateKeyNID);
    this.tuples++;
    this.maxLookup = this.tuples;
    this.entriesRead += this.tuples;
  }
}

/**
 * (a): one full snapshot per change. Its cost grows with the square of the room, so past a budget it only counts
 * the tuples it would write (`stored` false): at 100,000 members and 1,000,000 events that is 12 billion tuples.
 */
export class FullSnapshots implements StateScheme {
  readonly name: string;
  readonly tables = ['full_snapshots'];
  readonly lookupUnit = 'blocks';
  tuples = 0;
  maxLookup = 1;
  entriesRead = 0;
  private readonly insert: Database.Statement;

  constructor(db: Database.Database, readonly stored: boolean) {
    this.name = `(a) full snapshot per state change${stored ? '' : ' (counted, too big to store)'}`;
    db.exec('CREATE TABLE full_snapshots (snapshot_nid INTEGER PRIMARY KEY, entries BLOB NOT NULL)');
    this.insert = db.prepare('INSERT INTO full_snapshots (entries) VALUES (?)');
  }

  store(_change: StateEntry, state: SortedState): void {
    if (this.stored) this.insert.run(encodeStateBlock(state.entries).bytes);
    this.tuples += state.entries.length;
    this.entriesRead += state.entries.length;
  }
}

/** Dendrite's rule over tables shaped like Dendrite's: hash-unique blocks, hash-unique snapshots (block lists). */
export class DendriteBlocks implements StateScheme {
  static readonly MAX_BLOCKS = 64;
  readonly name = `(b) Dendrite: a delta block per change up to ${DendriteBlocks.MAX_BLOCKS} blocks, then a full block`;
  readonly tables = ['dendrite_state_block', 'dendrite_state_snapshots'];
  readonly lookupUnit = 'blocks';
  tuples = 0;
  maxLookup = 0;
  entriesRead = 0;
  private blocks: { nid: number; size: number }[] = [];
  private readonly insertBlock: Database.Statement;
  private readonly blockByHash: Database.Statement;
  private readonly insertSnapshot: Database.Statement;

  constructor(db: Database.Database) {
    db.exec(`CREATE TABLE dendrite_state_block (state_block_nid INTEGER PRIMARY KEY, state_block_hash BLOB NOT NULL UNIQUE, entries BLOB NOT NULL);
      CREATE TABLE dendrite_state_snapshots (state_snapshot_nid INTEGER PRIMARY KEY, state_snapshot_hash BLOB NOT NULL UNIQUE, state_block_nids TEXT NOT NULL)`);
    this.insertBlock = db.prepare('INSERT OR IGNORE INTO dendrite_state_block (state_block_hash, entries) VALUES (?, ?)');
    this.blockByHash = db.prepare('SELECT state_block_nid AS nid FROM dendrite_state_block WHERE state_block_hash = ?');
    this.insertSnapshot = db.prepare('INSERT OR IGNORE INTO dendrite_state_snapshots (state_snapshot_hash, state_block_nids) VALUES (?, ?)');
  }

  store(change: StateEntry, state: SortedState): void {
    const full = this.blocks.length >= DendriteBlocks.MAX_BLOCKS;
    const block = encodeStateBlock(full ? state.entries : [change]);
    const r = this.insertBlock.run(block.hash, block.bytes);
    if (r.changes === 1) this.tuples += block.entries.length;
    const nid = r.changes === 1 ? Number(r.lastInsertRowid) : (this.blockByHash.get(block.hash) as { nid: number }).nid;
    this.blocks = full ? [{ nid, size: block.entries.length }] : [...this.blocks, { nid, size: block.entries.length }];
    const nids = this.blocks.map((b) => b.nid);
    this.insertSnapshot.run(hashBlockList(nids), JSON.stringify(nids));
    this.maxLookup = Math.max(this.maxLookup, this.blocks.length);
    for (const b of this.blocks) this.entriesRead += b.size;
  }
}

/** Synapse's state groups: a delta chain on a predecessor, capped at MAX_STATE_DELTA_HOPS. */
export class SynapseGroups implements StateScheme {
  static readonly MAX_HOPS = 100;
  readonly name = `(c) Synapse: state groups, delta chains of at most ${SynapseGroups.MAX_HOPS} hops`;
  readonly tables = ['state_groups'];
  readonly lookupUnit = 'hops';
  tuples = 0;
  maxLookup = 0;
  entriesRead = 0;
  private current = 0;
  private hops = 0;
  /** Entries in the current group's chain: what a lookup of it reads. */
  private chainEntries = 0;
  private readonly insert: Database.Statement;

  constructor(db: Database.Database) {
    db.exec('CREATE TABLE state_groups (id INTEGER PRIMARY KEY, prev_state_group INTEGER, entries BLOB NOT NULL)');
    this.insert = db.prepare('INSERT INTO state_groups (prev_state_group, entries) VALUES (?, ?)');
  }

  /** A removal is something a delta cannot express: it takes a full snapshot. */
  store(change: StateEntry, state: SortedState, removed: boolean): void {
    const delta = this.current !== 0 && this.hops < SynapseGroups.MAX_HOPS && !removed && change.eventNID !== 0;
    const entries = delta ? [change] : state.entries;
    this.current = Number(this.insert.run(delta ? this.current : null, encodeStateBlock(entries).bytes).lastInsertRowid);
    this.hops = delta ? this.hops + 1 : 0;
    this.chainEntries = delta ? this.chainEntries + 1 : entries.length;
    this.tuples += entries.length;
    this.maxLookup = Math.max(this.maxLookup, this.hops);
    this.entriesRead += this.chainEntries;
  }
}

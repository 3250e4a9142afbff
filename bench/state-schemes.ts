/**
 * The peer state schemes of the state benchmarks, each over its own plain tables (on SQLite or PostgreSQL, through
 * a RowSink), and the floor they are all measured against. Every scheme encodes its tuples with the store's own codec (state-codec.ts), so that
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
import type pg from 'pg';
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

/** A table a scheme writes: its columns (the first is the primary key) with their type on each engine. */
export interface SchemeTable {
  readonly name: string;
  readonly columns: readonly (readonly [name: string, sqlite: string, postgres: string])[];
}

/** Where a scheme's rows go: plain tables on one engine. A scheme numbers its own rows, so a write returns nothing. */
export interface RowSink {
  create(tables: readonly SchemeTable[]): void | Promise<void>;
  write(table: SchemeTable, row: readonly unknown[]): void;
}

/** Rows written at once, inside the caller's transaction (better-sqlite3 is synchronous). NID lists as JSON text. */
export class SqliteSink implements RowSink {
  private readonly inserts = new Map<string, Database.Statement>();
  constructor(private readonly db: Database.Database) {}

  create(tables: readonly SchemeTable[]): void {
    for (const t of tables) {
      this.db.exec(`CREATE TABLE ${t.name} (${t.columns.map(([name, type], i) => `${name} ${type}${i === 0 ? ' PRIMARY KEY' : ''}`).join(', ')})`);
      this.inserts.set(t.name, this.db.prepare(`INSERT INTO ${t.name} VALUES (${t.columns.map(() => '?').join(', ')})`));
    }
  }

  write(table: SchemeTable, row: readonly unknown[]): void {
    this.inserts.get(table.name)!.run(...row.map((v) => (Array.isArray(v) ? JSON.stringify(v) : v)));
  }
}

/** Rows kept until `flush`, then one INSERT ... SELECT FROM unnest(...) per table. NID lists as bigint[]. */
export class PostgresSink implements RowSink {
  private readonly pending = new Map<SchemeTable, unknown[][]>();
  constructor(private readonly client: pg.ClientBase) {}

  async create(tables: readonly SchemeTable[]): Promise<void> {
    for (const t of tables) {
      await this.client.query(`CREATE TABLE ${t.name} (${t.columns.map(([name, , type], i) => `${name} ${type}${i === 0 ? ' PRIMARY KEY' : ''}`).join(', ')})`);
    }
  }

  write(table: SchemeTable, row: readonly unknown[]): void {
    const rows = this.pending.get(table) ?? [];
    rows.push([...row]);
    this.pending.set(table, rows);
  }

  async flush(): Promise<void> {
    for (const [t, rows] of this.pending) {
      const types = t.columns.map(([, , type]) => type.split(' ')[0]!);
      // unnest flattens arrays of arrays: a bigint[] column travels as text literals, cast back per row.
      await this.client.query(`INSERT INTO ${t.name} SELECT ${types.map((ty, i) => (ty === 'bigint[]' ? `c${i}::bigint[]` : `c${i}`)).join(', ')}
        FROM unnest(${types.map((ty, i) => `$${i + 1}::${ty === 'bigint[]' ? 'text' : ty}[]`).join(', ')}) AS t(${types.map((_, i) => `c${i}`).join(', ')})`,
      types.map((ty, i) => rows.map((r) => (ty === 'bigint[]' ? `{${(r[i] as number[]).join(',')}}` : r[i]))));
    }
    this.pending.clear();
  }
}

/** A way of storing the state after every state change, row by row into a sink. */
export interface StateScheme {
  readonly name: string;
  /** Its tables, whose bytes (indexes included) are its cost on disk. */
  readonly tables: readonly SchemeTable[];
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

const INT = ['INTEGER NOT NULL', 'bigint NOT NULL'] as const;
const BYTES = ['BLOB NOT NULL', 'bytea NOT NULL'] as const;
const UNIQUE_BYTES = ['BLOB NOT NULL UNIQUE', 'bytea NOT NULL UNIQUE'] as const;

export class DeltaLog implements StateScheme {
  readonly name = 'floor: delta log (one row per state event)';
  static readonly TABLE: SchemeTable = { name: 'state_delta', columns: [['event_nid', ...INT], ['event_type_nid', ...INT], ['event_state_key_nid', ...INT]] };
  readonly tables = [DeltaLog.TABLE];
  readonly lookupUnit = 'rows';
  tuples = 0;
  maxLookup = 0;
  entriesRead = 0;

  constructor(private readonly sink: RowSink) {}

  store(change: StateEntry): void {
    this.sink.write(DeltaLog.TABLE, [change.eventNID, change.eventTypeNID, change.eventStateKeyNID]);
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
  static readonly TABLE: SchemeTable = { name: 'full_snapshots', columns: [['snapshot_nid', ...INT], ['entries', ...BYTES]] };
  readonly tables = [FullSnapshots.TABLE];
  readonly lookupUnit = 'blocks';
  tuples = 0;
  maxLookup = 1;
  entriesRead = 0;
  private nextNID = 1;

  constructor(private readonly sink: RowSink, readonly stored: boolean) {
    this.name = `(a) full snapshot per state change${stored ? '' : ' (counted, too big to store)'}`;
  }

  store(_change: StateEntry, state: SortedState): void {
    if (this.stored) this.sink.write(FullSnapshots.TABLE, [this.nextNID++, encodeStateBlock(state.entries).bytes]);
    this.tuples += state.entries.length;
    this.entriesRead += state.entries.length;
  }
}

/** Dendrite's rule over tables shaped like Dendrite's: hash-unique blocks, hash-unique snapshots (block lists). */
export class DendriteBlocks implements StateScheme {
  static readonly MAX_BLOCKS = 64;
  static readonly BLOCKS: SchemeTable = { name: 'dendrite_state_block', columns: [['state_block_nid', ...INT], ['state_block_hash', ...UNIQUE_BYTES], ['entries', ...BYTES]] };
  static readonly SNAPSHOTS: SchemeTable = {
    name: 'dendrite_state_snapshots',
    columns: [['state_snapshot_nid', ...INT], ['state_snapshot_hash', ...UNIQUE_BYTES], ['state_block_nids', 'TEXT NOT NULL', 'bigint[] NOT NULL']],
  };
  readonly name = `(b) Dendrite: a delta block per change up to ${DendriteBlocks.MAX_BLOCKS} blocks, then a full block`;
  readonly tables = [DendriteBlocks.BLOCKS, DendriteBlocks.SNAPSHOTS];
  readonly lookupUnit = 'blocks';
  tuples = 0;
  maxLookup = 0;
  entriesRead = 0;
  private blocks: { nid: number; size: number }[] = [];
  /** Content address -> NID, as the unique hash indexes would answer. */
  private readonly blockNIDs = new Map<string, number>();
  private readonly snapshotNIDs = new Map<string, number>();

  constructor(private readonly sink: RowSink) {}

  store(change: StateEntry, state: SortedState): void {
    const full = this.blocks.length >= DendriteBlocks.MAX_BLOCKS;
    const block = encodeStateBlock(full ? state.entries : [change]);
    const hash = block.hash.toString('hex');
    let nid = this.blockNIDs.get(hash);
    if (nid === undefined) {
      nid = this.blockNIDs.size + 1;
      this.blockNIDs.set(hash, nid);
      this.sink.write(DendriteBlocks.BLOCKS, [nid, block.hash, block.bytes]);
      this.tuples += block.entries.length;
    }
    this.blocks = full ? [{ nid, size: block.entries.length }] : [...this.blocks, { nid, size: block.entries.length }];
    const nids = this.blocks.map((b) => b.nid);
    const listHash = hashBlockList(nids);
    if (!this.snapshotNIDs.has(listHash.toString('hex'))) {
      this.snapshotNIDs.set(listHash.toString('hex'), this.snapshotNIDs.size + 1);
      this.sink.write(DendriteBlocks.SNAPSHOTS, [this.snapshotNIDs.size, listHash, nids]);
    }
    this.maxLookup = Math.max(this.maxLookup, this.blocks.length);
    for (const b of this.blocks) this.entriesRead += b.size;
  }
}

/** Synapse's state groups: a delta chain on a predecessor, capped at MAX_STATE_DELTA_HOPS. */
export class SynapseGroups implements StateScheme {
  static readonly MAX_HOPS = 100;
  static readonly TABLE: SchemeTable = {
    name: 'state_groups', columns: [['id', ...INT], ['prev_state_group', 'INTEGER', 'bigint'], ['entries', ...BYTES]],
  };
  readonly name = `(c) Synapse: state groups, delta chains of at most ${SynapseGroups.MAX_HOPS} hops`;
  readonly tables = [SynapseGroups.TABLE];
  readonly lookupUnit = 'hops';
  tuples = 0;
  maxLookup = 0;
  entriesRead = 0;
  private current = 0;
  private hops = 0;
  /** Entries in the current group's chain: what a lookup of it reads. */
  private chainEntries = 0;

  constructor(private readonly sink: RowSink) {}

  /** A removal is something a delta cannot express: it takes a full snapshot. */
  store(change: StateEntry, state: SortedState, removed: boolean): void {
    const delta = this.current !== 0 && this.hops < SynapseGroups.MAX_HOPS && !removed && change.eventNID !== 0;
    const entries = delta ? [change] : state.entries;
    const id = this.current + 1;
    this.sink.write(SynapseGroups.TABLE, [id, delta ? this.current : null, encodeStateBlock(entries).bytes]);
    this.current = id;
    this.hops = delta ? this.hops + 1 : 0;
    this.chainEntries = delta ? this.chainEntries + 1 : entries.length;
    this.tuples += entries.length;
    this.maxLookup = Math.max(this.maxLookup, this.hops);
    this.entriesRead += this.chainEntries;
  }
}

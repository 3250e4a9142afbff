import type { SqlParameter } from '@azure/cosmos';
import { inject, injectable } from 'inversify';
import { TOKENS } from '../../di/tokens.js';
import { CorruptionError, InvalidInputError } from '../../types/errors.js';
import { isCrossSigningKeyPurpose } from '../../types/keys.js';
import { MAX_NID, type EventNID, type EventStateKeyNID, type EventTypeNID, type RoomNID, type StateBlockNID, type StateSnapshotNID } from '../../types/nids.js';
import type { StateEntry } from '../../types/state.js';
import { checkBlockList, unique } from '../shared/contracts.js';
import { decodeStateBlock, encodeStateBlock, hashBlockList, sha256 } from '../shared/state-codec.js';
import type { CopyProgress, DumpEntry, DumpRows, DumpTable, DumpTableName, StoreDump } from '../tables/dump.js';
import { mapLimit, READ_CONCURRENCY } from './bulk.js';
import { COSMOS_CONNECTION, type CosmosConnection, type SequenceName } from './connection.js';
import type { CosmosDeviceKeysTable } from './device-keys.js';
import type { CosmosEventsTable } from './events.js';
import { decodePart, docId, splitPartitionKey } from './ids.js';
import { CosmosPublishedTable } from './published.js';
import type { Doc } from './requests.js';
import type { CosmosRoomsTable } from './rooms.js';
import { CosmosRoomEvents, ROOM_EVENT_KIND } from './room-events.js';
import { roomHashRef } from './content-addressed.js';

/** The kind of the copy's progress record (`meta|copy_progress`): bookkeeping, left out of the store's fingerprint. */
export const COPY_PROGRESS_KIND = 'copy_progress';

/** A document as a query or point read returns it. */
type Stored = Record<string, unknown> & { id: string; pk: string; _etag?: string; _ts?: number };

type Page<R> = { rows: R[]; next: string | undefined };

/** How one logical table is read, written and deleted on Cosmos DB. */
interface Table<R> {
  count(): Promise<number>;
  read(cursor: string | undefined, limit: number): Promise<Page<R>>;
  write(rows: readonly R[]): Promise<void>;
  delete(rows: readonly R[]): Promise<void>;
}

/** Where a document is: its id in its partition. */
type Ref = { id: string; pk: string };

/**
 * A change to a list document that several rows share (a prev_events set, a redaction target's list, an invite
 * list): the document as stored, to what it becomes (`undefined`: unchanged, `null`: deleted, being empty).
 */
type ListEdit = { ref: Ref; change: (doc: Stored) => Doc | null | undefined };

/**
 * Where a read of a kind whose documents share partitions (members of a room, a user's keys) has got to: `p` is a
 * partition key value; without `i` every document of that partition is done; with it, the partition is being read
 * in id order and is done up to document `i`, or, with `s`, up to the first `s` rows of document `i`.
 */
interface GroupCursor {
  p: string;
  i?: string;
  s?: number;
}

/** A grouped kind: its documents, and each one's rows (a document may hold several: a prev_events set, an invite list). */
interface GroupSpec<R> {
  readonly kind: string;
  /** More conditions on `c` (constant text), e.g. leaving claimed one-time keys out. */
  readonly filter?: string;
  /** What count() adds up per document (default: one per document). */
  readonly countExpression?: string;
  /** The rows of each document, in a fixed order (the documents of one page, so lookups can be made in bulk). */
  readonly rowsOf: (docs: readonly Stored[]) => Promise<R[][]> | R[][];
}

/** The dump's entries as the codec takes them, and back. */
const entriesOf = (entries: readonly StateEntry[]): DumpEntry[] => entries.map((e) => [e.eventTypeNID, e.eventStateKeyNID, e.eventNID] as const);
const entriesFrom = (entries: readonly DumpEntry[]): StateEntry[] =>
  entries.map(([t, k, e]) => ({ eventTypeNID: t, eventStateKeyNID: k, eventNID: e }) as StateEntry);

const maxOf = (values: readonly number[]) => values.reduce((a, b) => Math.max(a, b), 0);

/** The NID sequences by their canonical counter names (the SQL drivers' names). */
const NID_COUNTERS: Readonly<Record<string, SequenceName>> = {
  event_nid: 'event', room_nid: 'room', event_type_nid: 'eventType', state_key_nid: 'stateKey',
  state_block_nid: 'stateBlock', state_snapshot_nid: 'stateSnapshot',
};

/**
 * The stream positions that share the `order` counter on Cosmos DB (key backup versions, send-to-device positions,
 * key change IDs, report IDs; alias order too, under the counter's own name): each canonical name reads that one counter, and
 * raising any raises it.
 */
const ORDER_COUNTERS = ['key_backup_version', 'send_to_device_id', 'key_change_id', 'reported_event_id', 'order'] as const;

/**
 * The dump of a Cosmos DB tenant. Each logical table is read from the documents that commit its rows (an event's
 * locator, a room's ID document, a state block's hash document: what makes a row visible to the store, so that a
 * document a crashed writer left behind is never copied), with whatever else the row needs fetched in bulk, and
 * never from a derived document (a mapping's reverse side, a membership's mirror in the user's partition, the room
 * list): each row once. Queries run across the tenant's partitions (a rare path: copies and checks).
 *
 * Paging is keyset: on a unique number where the kind has one (the last row's, as JSON, is the cursor), else on
 * (partition key, document id, rows of the document taken) for kinds whose documents share partitions. A query orders on one field
 * only (several need a composite index the container does not have): across partitions by partition key, taking a
 * partition's documents whole; a partition larger than the page is read on its own, ordered by id.
 *
 * Writing stores the rows' documents and every document the driver derives from them (locators, both sides of a
 * mapping, hash documents, room lists and the room's current snapshot blocks, invite lists and redaction lists in
 * insertion order, membership mirrors), as upserts, so writing a page again leaves the same documents; and raises
 * the counters past the values written, so a store copied into works on as a live store.
 *
 * Keys a document held only in its partition key or id (the user of one-time keys, a transaction's ID, a previous
 * event's ID...) are kept as fields too, by the driver since the dump came and by the dump's writes: a long key is
 * kept there only as a hash (ids.ts). Documents written before are read from their partition key, the hashed
 * cases from another document that carries the key where there is one.
 *
 * Insertion order of invites and redactions (`seq`): the driver keeps it only as the order of a list (a user's
 * invites in a room, the redactions naming an event). A dump carries it as a number that is unique and follows that
 * order: the seq a dump wrote (kept beside the entry), else the NID of the invite's or redaction's own event (events
 * are stored before their invites and redactions, and NIDs grow as a writer goes on). Writing raises the event NID
 * counter past every seq written, so the seqs of invites and redactions stored later stay above and unique.
 *
 * Deleting removes a row's documents and every document derived from it, found from the row's fields alone (so
 * the tables may be deleted in any order, and a page deleted twice): the commit point first (a locator, a hash
 * document, a room's ID document, a mapping's string side), then what it commits, so that a delete cut short
 * leaves the row either whole or invisible to reads, never half there. A document keyed by something other than
 * the row's key (a locator by event ID, a hash document by content, a claim by invite ID) is read first and
 * deleted only if it still belongs to the row's NID or place, so deleting a page again never removes what a later
 * row made under the same key. Entries of list documents several rows share (prev_events sets, redaction lists,
 * invite lists) are removed from them, the document deleted once empty, as a store that never held the row would
 * have none; a user's device stream counter goes with the user's last device. A page is a few bulk requests
 * (about one per 100 documents per step). The driver's caches of this process that held a deleted mapping (event
 * locators, room versions, reserved stream IDs) forget it.
 */
@injectable()
export class CosmosStoreDump implements StoreDump {
  private readonly tables: { readonly [K in DumpTableName]: Table<DumpRows[K]> };

  constructor(
    @inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection,
    // The tables whose caches a delete must keep true (bound to the Cosmos DB classes by this driver's module).
    @inject(TOKENS.EventsTable) private readonly eventsTable: Partial<Pick<CosmosEventsTable, 'forgetEvents'>>,
    @inject(TOKENS.RoomsTable) private readonly roomsTable: Partial<Pick<CosmosRoomsTable, 'forgetRooms'>>,
    @inject(TOKENS.DeviceKeysTable) private readonly deviceKeysTable: Partial<Pick<CosmosDeviceKeysTable, 'forgetStreams'>>,
    @inject(CosmosRoomEvents) private readonly roomEvents: CosmosRoomEvents,
  ) {
    this.tables = this.specs();
  }

  table<K extends DumpTableName>(name: K): DumpTable<DumpRows[K]> {
    const table = this.tables[name];
    if (!table) throw new InvalidInputError(`no dump table ${String(name)}`);
    return {
      count: () => table.count(),
      read: (cursor, limit) => {
        if (!Number.isSafeInteger(limit) || limit < 1) throw new InvalidInputError(`a dump page holds 1 or more rows, got ${limit}`);
        return table.read(cursor, limit);
      },
      write: (rows) => (rows.length === 0 ? Promise.resolve() : table.write(rows)),
      delete: (rows) => (rows.length === 0 ? Promise.resolve() : table.delete(rows)),
    };
  }

  async reclaimSpace(): Promise<{ readonly done: string }> {
    return {
      done: 'Cosmos DB: nothing to run. The service frees the storage of deleted documents by itself, in the background, '
        + 'so the container\'s data size (and its storage bill) goes down without any request from here',
    };
  }

  async counters(): Promise<Record<string, number>> {
    const names = Object.keys(NID_COUNTERS);
    const [order, ...values] = await Promise.all([
      this.conn.sequence('order').highest(),
      ...names.map((name) => this.conn.sequence(NID_COUNTERS[name]!).highest()),
    ]);
    const out: Record<string, number> = Object.fromEntries(names.map((name, i) => [name, values[i]!]));
    for (const name of ORDER_COUNTERS) out[name] = order!;
    return out;
  }

  async raiseCounters(counters: Readonly<Record<string, number>>): Promise<void> {
    const value = (name: string) => {
      const v = counters[name];
      if (v === undefined) return undefined;
      if (!Number.isSafeInteger(v) || v < 0 || v > MAX_NID) throw new InvalidInputError(`counter ${name} must be an integer from 0 to 2^53-1, got ${v}`);
      return v;
    };
    const raises: Promise<void>[] = [];
    for (const [name, sequence] of Object.entries(NID_COUNTERS)) {
      const v = value(name);
      if (v !== undefined) raises.push(this.conn.sequence(sequence).raiseTo(v));
    }
    const order = ORDER_COUNTERS.map(value).filter((v) => v !== undefined);
    if (order.length > 0) raises.push(this.conn.sequence('order').raiseTo(Math.max(...order)));
    await Promise.all(raises);
  }

  async readProgress(): Promise<CopyProgress | undefined> {
    const doc = await this.conn.requests.read<{ progress: CopyProgress }>('dump.progress', COPY_PROGRESS_KIND, this.conn.pk('meta'));
    return doc?.progress;
  }

  async writeProgress(progress: CopyProgress | undefined): Promise<void> {
    if (progress === undefined) {
      await this.conn.requests.delete('dump.progress', COPY_PROGRESS_KIND, this.conn.pk('meta'));
      return;
    }
    // Through JSON, as the SQL drivers store it: what reads back is what a JSON round trip gives.
    await this.conn.requests.upsert('dump.progress', {
      id: COPY_PROGRESS_KIND, pk: this.conn.pk('meta'), k: COPY_PROGRESS_KIND, progress: JSON.parse(JSON.stringify(progress)) as CopyProgress,
    });
  }

  // ---- reading ----

  /** Adds up `expression` over the tenant's documents of `kind`. */
  private async sum(kind: string, expression = 'COUNT(1)', filter = ''): Promise<number> {
    const rows = await this.conn.requests.crossPartitionQuery<number | undefined>(`dump.count.${kind}`, this.conn.tenantPrefix,
      `SELECT VALUE ${expression} FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = @k ${filter}`, [{ name: '@k', value: kind }]);
    return rows.reduce<number>((a, b) => a + (b ?? 0), 0);
  }

  /**
   * A page of the documents of `kind` ordered by a unique number `field` (a NID, a stream position) after the
   * cursor's; `next` is set when the page is full (the page after the last full one is empty, without `next`).
   */
  private async byNumber<D extends Stored>(kind: string, field: string, cursor: string | undefined, limit: number): Promise<{ docs: D[]; next: string | undefined }> {
    let after = 0;
    if (cursor !== undefined) {
      const parsed = parseCursor(cursor);
      if (!Number.isSafeInteger(parsed)) throw new InvalidInputError(`not a cursor of this dump table: ${cursor.slice(0, 100)}`);
      after = parsed as number;
    }
    // `field` is one of this file's constants; every value is a parameter.
    const docs = await this.conn.requests.crossPartitionQuery<D>(`dump.read.${kind}`, this.conn.tenantPrefix,
      `SELECT TOP @limit * FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = @k AND c.${field} > @after ORDER BY c.${field}`,
      [{ name: '@limit', value: limit }, { name: '@k', value: kind }, { name: '@after', value: after }]);
    const last = docs.at(-1);
    return { docs, next: docs.length === limit && last ? JSON.stringify(last[field]) : undefined };
  }

  /** A page of a grouped kind's rows (see GroupCursor). */
  private async grouped<R>(spec: GroupSpec<R>, cursor: string | undefined, limit: number): Promise<Page<R>> {
    let pos = cursor === undefined ? undefined : groupCursor(cursor);
    const rows: R[] = [];
    const filter = spec.filter ?? '';
    const params = (extra: SqlParameter[]): SqlParameter[] => [{ name: '@k', value: spec.kind }, ...extra];
    while (rows.length < limit) {
      const need = limit - rows.length;
      if (pos?.i !== undefined) {
        // Inside one partition, in id order: the page may end anywhere, even inside a document.
        const p = pos.p;
        const inclusive = pos.s !== undefined;
        const docs = await this.conn.requests.query<Stored>(`dump.read.${spec.kind}`, p,
          `SELECT TOP @limit * FROM c WHERE c.pk = @pk AND c.k = @k AND c.id ${inclusive ? '>=' : '>'} @id ${filter} ORDER BY c.id`,
          params([{ name: '@limit', value: need }, { name: '@id', value: pos.i }]));
        const perDoc = await spec.rowsOf(docs);
        for (const [d, doc] of docs.entries()) {
          const skip = inclusive && d === 0 && doc.id === pos.i ? pos.s! : 0;
          const all = perDoc[d]!;
          const taken = all.slice(skip, skip + limit - rows.length);
          rows.push(...taken);
          if (skip + taken.length < all.length) return { rows, next: JSON.stringify({ p, i: doc.id, s: skip + taken.length }) };
          if (rows.length === limit) return { rows, next: JSON.stringify({ p, i: doc.id }) };
        }
        pos = docs.length < need ? { p } : { p, i: docs.at(-1)!.id };
        continue;
      }
      // Across partitions, ordered by partition key: whole partitions only, as the documents inside one come in no
      // particular order. The last partition of a full answer may be cut short, so it is read again next time.
      const docs = await this.conn.requests.crossPartitionQuery<Stored>(`dump.read.${spec.kind}`, this.conn.tenantPrefix,
        `SELECT TOP @limit * FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = @k AND c.pk > @after ${filter} ORDER BY c.pk`,
        params([{ name: '@limit', value: need }, { name: '@after', value: pos?.p ?? '' }]));
      const groups: Stored[][] = [];
      for (const doc of docs) {
        const last = groups.at(-1);
        if (last && last[0]!.pk === doc.pk) last.push(doc);
        else groups.push([doc]);
      }
      const full = docs.length === need;
      const whole = full ? groups.slice(0, -1) : groups;
      if (whole.length === 0) {
        if (groups.length === 0) return { rows, next: undefined };
        // One partition fills the answer: read it on its own, in id order.
        pos = { p: groups[0]![0]!.pk, i: '' };
        continue;
      }
      const perDoc = await spec.rowsOf(whole.flat());
      let at = 0;
      for (const group of whole) {
        const groupRows = perDoc.slice(at, at + group.length).flat();
        at += group.length;
        if (rows.length + groupRows.length > limit) {
          if (rows.length > 0) return { rows, next: JSON.stringify(pos) };
          pos = { p: group[0]!.pk, i: '' };
          break;
        }
        rows.push(...groupRows);
        pos = { p: group[0]!.pk };
      }
      if (pos?.i !== undefined) continue;
      // Not full: nothing comes after these partitions.
      if (!full) return { rows, next: undefined };
    }
    return { rows, next: pos === undefined ? undefined : JSON.stringify(pos) };
  }

  /**
   * A key that documents written before it was also kept as a field hold only in their partition key (the parts
   * after the kind), decoded; undefined for a part kept as a hash (an encoded ID over 400 bytes, see ids.ts).
   */
  private partitionParts(doc: Stored, kind: string, count: number): (string | undefined)[] {
    const split = splitPartitionKey(this.conn.config.tenant, doc.pk);
    if (!split || split.kind !== kind || split.parts.length !== count) {
      throw new CorruptionError(`document ${doc.id} has partition key ${doc.pk.slice(0, 200)}, not one of kind ${kind}`);
    }
    return split.parts.map(decodePart);
  }

  /** partitionParts, where nothing else can recover a hashed part: such a document cannot be dumped. */
  private keyParts(doc: Stored, kind: string, count: number): string[] {
    return this.partitionParts(doc, kind, count).map((value) => this.partPresent(doc, value));
  }

  private partPresent(doc: Stored, value: string | undefined): string {
    if (value === undefined) throw new CorruptionError(`document ${doc.id} in partition ${doc.pk.slice(0, 200)} keeps its key only as a hash: it cannot be dumped`);
    return value;
  }

  /**
   * The user IDs of documents written before the user was also kept as a field, from the partition key's part
   * `index` (counting after the kind); a part kept as a hash (a long user ID) is looked up in that user's key or
   * backup partition, whose device and backup version documents carry the ID (the hash part is the same there).
   */
  private async userIDsOf(docs: readonly Stored[], field: string, kind: string, parts: number, index: number): Promise<string[]> {
    const ids = docs.map((d) => (typeof d[field] === 'string' ? d[field] as string : this.partitionParts(d, kind, parts)[index]));
    const hashes = unique(docs.flatMap((d, i) => (ids[i] === undefined ? [splitPartitionKey(this.conn.config.tenant, d.pk)!.parts[index]!] : [])));
    const found = new Map<string, string>();
    for (const hash of hashes) {
      for (const [where, k] of [['keys', 'device_key'], ['backup', 'backup_version']] as const) {
        const partition = `${this.conn.tenantPrefix}${where}|${hash}`;
        const [doc] = await this.conn.requests.query<{ userID: string }>('dump.read.user', partition,
          'SELECT TOP 1 c.userID FROM c WHERE c.pk = @pk AND c.k = @k AND IS_DEFINED(c.userID)', [{ name: '@k', value: k }]);
        if (doc && this.conn.pk(where, doc.userID) === partition) {
          found.set(hash, doc.userID);
          break;
        }
      }
    }
    return docs.map((d, i) => {
      const id = ids[i] ?? found.get(splitPartitionKey(this.conn.config.tenant, d.pk)!.parts[index]!);
      if (id === undefined) throw new CorruptionError(`document ${d.id} in partition ${d.pk.slice(0, 200)} keeps its user ID only as a hash, and no other document of that user carries it: it cannot be dumped`);
      return id;
    });
  }

  /**
   * The previous event IDs of sets written before the ID was kept as a field: from the partition key, or, where it
   * holds a hash (a long ID, which a remote server may choose), from the prev_events of an event the set names.
   */
  private async previousIDsOf(docs: readonly Stored[]): Promise<string[]> {
    const ids = docs.map((d) => (typeof d.key === 'string' ? d.key : this.partitionParts(d, 'pe', 1)[0]));
    const hashed = docs.filter((_, i) => ids[i] === undefined);
    if (hashed.length === 0) return ids as string[];
    const json = await this.conn.requests.readMany<{ json: string }>('dump.read.pe', hashed.map((d) => ({ id: 'json', pk: this.conn.pk('ev', (d.values as number[])[0]!) })));
    const found = new Map(hashed.map((d, i) => {
      let prev: unknown = [];
      try {
        prev = (JSON.parse(json[i]?.json ?? '{}') as { prev_events?: unknown }).prev_events ?? [];
      } catch { /* unparsable JSON: nothing to recover from */ }
      // Room versions 1 and 2 list [ID, hashes] pairs, later ones IDs.
      const candidates = (Array.isArray(prev) ? prev : []).map((p: unknown) => (Array.isArray(p) ? p[0] : p)).filter((p): p is string => typeof p === 'string');
      return [d, candidates.find((c) => this.conn.pk('pe', c) === d.pk)] as const;
    }));
    return docs.map((d, i) => {
      const id = ids[i] ?? found.get(d);
      if (id === undefined) throw new CorruptionError(`previous event set ${d.pk.slice(0, 200)} keeps its event ID only as a hash, and no event it names lists it`);
      return id;
    });
  }

  /**
   * The insertion order of invites or redactions the driver stored without a seq: their own events' NIDs (see the
   * class comment), by the events' locators, in bulk.
   */
  private async eventNIDsOf(what: string, ids: readonly string[]): Promise<Map<string, number>> {
    const list = unique(ids);
    if (list.length === 0) return new Map();
    const docs = await this.conn.requests.readMany<{ eventID: string; nid: number }>('dump.order', list.map((id) => ({ id: 'eid', pk: this.conn.pk('eid', id) })));
    const out = new Map<string, number>();
    list.forEach((id, i) => {
      const nid = docs[i]?.nid;
      if (nid === undefined) throw new CorruptionError(`${what} ${id.slice(0, 200)} is stored without its event, so its insertion order is unknown`);
      out.set(id, nid);
    });
    return out;
  }

  // ---- writing ----

  private upsert(operation: string, docs: readonly Doc[]): Promise<void> {
    return this.conn.requests.upsertMany(operation, docs);
  }

  private raise(sequence: SequenceName, values: readonly number[]): Promise<void> {
    return this.conn.sequence(sequence).raiseTo(maxOf(values));
  }

  // ---- deleting ----

  /** Deletes documents in bulk, each once; absent ones are skipped. */
  private async remove(operation: string, refs: readonly Ref[]): Promise<void> {
    const seen = new Set<string>();
    const distinct = refs.filter((ref) => {
      const key = `${ref.pk}\u0000${ref.id}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    await this.conn.requests.deleteMany(operation, distinct);
  }

  /**
   * Deletes the documents at `refs` that still belong to the row they were derived from (`owned`, asked of each
   * document as read): for documents keyed by something other than the row's key (an event ID, a content hash, a
   * room ID, an invite ID), which a row stored later may have taken. One bulk read, one bulk delete.
   */
  private async removeOwned<D>(operation: string, items: readonly { ref: Ref; owned: (doc: D) => boolean }[]): Promise<void> {
    const docs = await this.conn.requests.readMany<D>(operation, items.map((x) => x.ref));
    await this.remove(operation, items.filter((x, i) => docs[i] !== undefined && x.owned(docs[i]!)).map((x) => x.ref));
  }

  /**
   * Applies changes to list documents, one edit per document: read in bulk, then the emptied ones deleted and the
   * others replaced, in bulk, on the ETag read (a document changed meanwhile is read and changed again). The
   * deletes are not conditional (a bulk delete takes no ETag): for a store no live writer is using.
   */
  private async editLists(operation: string, edits: readonly ListEdit[]): Promise<void> {
    const r = this.conn.requests;
    let pending = edits;
    while (pending.length > 0) {
      const docs = await r.readMany<Record<string, unknown>>(operation, pending.map((e) => e.ref));
      const emptied: Ref[] = [];
      const replaced: { doc: Doc; etag: string; edit: ListEdit }[] = [];
      pending.forEach((edit, i) => {
        const doc = docs[i];
        if (!doc) return;
        const next = edit.change(doc as unknown as Stored);
        if (next === null) emptied.push(edit.ref);
        else if (next !== undefined) replaced.push({ doc: next, etag: doc._etag, edit });
      });
      const [, done] = await Promise.all([
        this.remove(operation, emptied),
        r.replaceManyIfMatch(operation, replaced.map(({ doc, etag }) => ({ doc, etag }))),
      ]);
      pending = replaced.filter((_, i) => !done[i]).map((x) => x.edit);
    }
  }

  /**
   * Content-addressed documents (state blocks, snapshots): each row's hash document, the commit point, where it
   * still names the row's NID (the hash of the content the row gives, and of the content stored under the NID
   * should that differ: a block encoded by another build), then the content documents.
   */
  private async removeContentAddressed(kind: 'sb' | 'ss', rows: readonly { nid: number; hash: string }[], hashOf: (content: Stored) => string): Promise<void> {
    const r = this.conn.requests;
    const operation = `dump.delete.${kind}`;
    const hashRef = (hash: string): Ref => ({ id: `${kind}h`, pk: this.conn.pk(`${kind}h`, hash) });
    const contentRef = (nid: number): Ref => ({ id: kind, pk: this.conn.pk(kind, nid) });
    const [contents, hashes] = await Promise.all([
      r.readMany<Stored>(operation, rows.map((x) => contentRef(x.nid))),
      r.readMany<{ nid: number }>(operation, rows.map((x) => hashRef(x.hash))),
    ]);
    const owned = rows.flatMap((x, i) => (hashes[i]?.nid === x.nid ? [hashRef(x.hash)] : []));
    // And the index in the room's partition (storeBlocksAndSnapshots), for content that says its room.
    const inRooms = rows.flatMap((x, i) => {
      const room = contents[i]?.room;
      return typeof room === 'number' ? [{ ref: roomHashRef(this.conn, kind, room, x.hash), nid: x.nid }] : [];
    });
    const roomHashes = await r.readMany<{ nid: number }>(operation, inRooms.map((x) => x.ref));
    inRooms.forEach((x, i) => { if (roomHashes[i]?.nid === x.nid) owned.push(x.ref); });
    const others = rows.flatMap((x, i) => {
      const content = contents[i];
      const hash = content ? hashOf(content) : x.hash;
      return hash === x.hash ? [] : [{ nid: x.nid, hash }];
    });
    if (others.length > 0) {
      const docs = await r.readMany<{ nid: number }>(operation, others.map((o) => hashRef(o.hash)));
      others.forEach((o, i) => { if (docs[i]?.nid === o.nid) owned.push(hashRef(o.hash)); });
    }
    await this.remove(operation, owned);
    await this.remove(operation, rows.map((x) => contentRef(x.nid)));
  }

  /**
   * The stream counters of these users who have no device left: deleted, as a store that never held their devices
   * has none (the next reservation seeds a new one from the devices stored then, as the SQL drivers count from
   * them), and forgotten by this process's device keys table.
   */
  private async removeStreamCountersOfDeviceless(userIDs: readonly string[]): Promise<void> {
    const users = unique(userIDs);
    const left = await mapLimit(users, READ_CONCURRENCY, (userID) => this.conn.requests.query<number>('dump.delete.streams',
      this.conn.pk('keys', userID), "SELECT VALUE COUNT(1) FROM c WHERE c.pk = @pk AND c.k = 'device_key'"));
    const deviceless = users.filter((_, i) => (left[i]?.[0] ?? 0) === 0);
    if (deviceless.length === 0) return;
    await this.remove('dump.delete.streams', deviceless.map((userID) => ({ id: 'streams', pk: this.conn.pk('keys', userID) })));
    this.deviceKeysTable.forgetStreams?.(deviceless);
  }

  private specs(): { readonly [K in DumpTableName]: Table<DumpRows[K]> } {
    const conn = this.conn;
    const r = conn.requests;
    const pk = (kind: string, ...parts: (string | number)[]) => conn.pk(kind, ...parts);

    /** A NID mapping (event types, state keys): read from the string side (its commit point), written NID side first. */
    const mapping = <R>(kind: 'et' | 'sk', sequence: SequenceName, fromDoc: (d: { s: string; nid: number }) => R, toPair: (row: R) => [string, number]): Table<R> => ({
      count: () => this.sum(kind),
      read: async (cursor, limit) => {
        const { docs, next } = await this.byNumber<Stored & { s: string; nid: number }>(kind, 'nid', cursor, limit);
        return { rows: docs.map(fromDoc), next };
      },
      write: async (rows) => {
        const pairs = rows.map(toPair);
        await Promise.all([
          this.upsert(`dump.write.${kind}`, pairs.map(([s, nid]) => ({ id: `${kind}n`, pk: pk(`${kind}n`, nid), k: `${kind}n`, s, nid }))),
          this.raise(sequence, pairs.map(([, nid]) => nid)),
        ]);
        await this.upsert(`dump.write.${kind}`, pairs.map(([s, nid]) => ({ id: kind, pk: pk(kind, s), k: kind, s, nid })));
      },
      // The string side first (the commit point, keyed by the string: only while it names this NID), then the NID side.
      delete: async (rows) => {
        const pairs = rows.map(toPair);
        await this.removeOwned<{ nid: number }>(`dump.delete.${kind}`, pairs.map(([s, nid]) => ({ ref: { id: kind, pk: pk(kind, s) }, owned: (d) => d.nid === nid })));
        await this.remove(`dump.delete.${kind}`, pairs.map(([, nid]) => ({ id: `${kind}n`, pk: pk(`${kind}n`, nid) })));
      },
    });

    /** Kinds written as one document per row, into partitions of their own or shared. */
    const simple = <R>(spec: GroupSpec<R> & {
      toDoc: (row: R) => Doc;
      after?: (rows: readonly R[]) => Promise<void>;
      afterDelete?: (rows: readonly R[]) => Promise<void>;
    }): Table<R> => ({
      count: () => this.sum(spec.kind, spec.countExpression, spec.filter),
      read: (cursor, limit) => this.grouped(spec, cursor, limit),
      write: async (rows) => {
        await Promise.all([this.upsert(`dump.write.${spec.kind}`, rows.map(spec.toDoc)), spec.after?.(rows)]);
      },
      // The row's one document, where toDoc puts it.
      delete: async (rows) => {
        await this.remove(`dump.delete.${spec.kind}`, rows.map((x) => {
          const { id, pk: partition } = spec.toDoc(x);
          return { id, pk: partition };
        }));
        await spec.afterDelete?.(rows);
      },
    });

    /** The row's entries removed from a list document (`field`); null once nothing is left, undefined if none was there. */
    const without = (doc: Stored, field: string, drop: (entry: unknown) => boolean): Doc | null | undefined => {
      const list = Array.isArray(doc[field]) ? doc[field] as unknown[] : [];
      const kept = list.filter((entry) => !drop(entry));
      if (kept.length === list.length) return undefined;
      if (kept.length === 0) return null;
      const { _rid, _self, _etag, _attachments, _ts, ...plain } = doc;
      return { ...plain, [field]: kept } as unknown as Doc;
    };

    return {
      event_types: mapping('et', 'eventType', (d) => ({ nid: d.nid, type: d.s }), (x) => [x.type, x.nid]),
      event_state_keys: mapping('sk', 'stateKey', (d) => ({ nid: d.nid, key: d.s }), (x) => [x.key, x.nid]),

      // Content-addressed state: the hash document commits a content document (a loser of a race removes its own).
      state_blocks: {
        count: () => this.sum('sbh'),
        read: async (cursor, limit) => {
          const { docs, next } = await this.byNumber<Stored & { nid: number }>('sbh', 'nid', cursor, limit);
          const blocks = await r.readMany<{ nid: number; bytes: string }>('dump.read.sb', docs.map((d) => ({ id: 'sb', pk: pk('sb', d.nid) })));
          const rows = docs.map((d, i) => {
            const block = blocks[i];
            if (!block) throw new CorruptionError(`state block ${d.nid} has a hash document but no content`);
            return { nid: d.nid, entries: entriesOf(decodeStateBlock(Buffer.from(block.bytes, 'base64'), d.nid as StateBlockNID)) };
          });
          return { rows, next };
        },
        write: async (rows) => {
          const encoded = rows.map((x) => ({ nid: x.nid, block: encodeStateBlock(entriesFrom(x.entries)) }));
          await Promise.all([
            this.upsert('dump.write.sb', encoded.map(({ nid, block }) => ({
              id: 'sb', pk: pk('sb', nid), k: 'sb', nid, count: block.entries.length, bytes: block.bytes.toString('base64'),
            }))),
            this.raise('stateBlock', rows.map((x) => x.nid)),
          ]);
          await this.upsert('dump.write.sbh', encoded.map(({ nid, block }) => ({ id: 'sbh', pk: pk('sbh', block.hash.toString('hex')), k: 'sbh', nid })));
        },
        delete: (rows) => this.removeContentAddressed('sb',
          rows.map((x) => ({ nid: x.nid, hash: encodeStateBlock(entriesFrom(x.entries)).hash.toString('hex') })),
          (content) => sha256(Buffer.from(String(content.bytes), 'base64')).toString('hex')),
      },
      state_snapshots: {
        count: () => this.sum('ssh'),
        read: async (cursor, limit) => {
          const { docs, next } = await this.byNumber<Stored & { nid: number }>('ssh', 'nid', cursor, limit);
          const snapshots = await r.readMany<{ nid: number; room: number; blocks: number[] }>('dump.read.ss', docs.map((d) => ({ id: 'ss', pk: pk('ss', d.nid) })));
          const rows = docs.map((d, i) => {
            const s = snapshots[i];
            if (!s) throw new CorruptionError(`state snapshot ${d.nid} has a hash document but no content`);
            return { nid: d.nid, room: s.room, blocks: [...s.blocks] };
          });
          return { rows, next };
        },
        write: async (rows) => {
          rows.forEach((x) => checkBlockList(x.blocks));
          await Promise.all([
            this.upsert('dump.write.ss', rows.map((x) => ({ id: 'ss', pk: pk('ss', x.nid), k: 'ss', nid: x.nid, room: x.room, blocks: [...x.blocks] }))),
            this.raise('stateSnapshot', rows.map((x) => x.nid)),
          ]);
          await this.upsert('dump.write.ssh', rows.map((x) => ({ id: 'ssh', pk: pk('ssh', hashBlockList(x.blocks as StateBlockNID[]).toString('hex')), k: 'ssh', nid: x.nid })));
        },
        delete: (rows) => this.removeContentAddressed('ss',
          rows.map((x) => ({ nid: x.nid, hash: hashBlockList(x.blocks).toString('hex') })),
          (content) => hashBlockList(Array.isArray(content.blocks) ? content.blocks as number[] : []).toString('hex')),
      },

      // The JSON of every stored event (its room holds it): the JSON is written before the room's commit.
      event_json: {
        count: () => this.sum(ROOM_EVENT_KIND),
        read: async (cursor, limit) => {
          const { docs, next } = await this.byNumber<Stored & { nid: number }>(ROOM_EVENT_KIND, 'nid', cursor, limit);
          const json = await r.readMany<{ nid: number; json: string }>('dump.read.json', docs.map((d) => ({ id: 'json', pk: pk('ev', d.nid) })));
          return { rows: json.filter((j) => j !== undefined).map((j) => ({ nid: j.nid, json: j.json })), next };
        },
        write: async (rows) => {
          await Promise.all([
            this.upsert('dump.write.json', rows.map((x) => ({ id: 'json', pk: pk('ev', x.nid), k: 'event_json', nid: x.nid, json: x.json }))),
            this.raise('event', rows.map((x) => x.nid)),
          ]);
        },
        delete: (rows) => this.remove('dump.delete.json', rows.map((x) => ({ id: 'json', pk: pk('ev', x.nid) }))),
      },
      // An event is its room's document of it (the commit point) and its row, read in bulk beside it.
      events: {
        count: () => this.sum(ROOM_EVENT_KIND),
        read: async (cursor, limit) => {
          const { docs, next } = await this.byNumber<Stored & { nid: number; eventID: string }>(ROOM_EVENT_KIND, 'nid', cursor, limit);
          const rowDocs = await r.readMany<DumpRows['events'] & { eventID: string }>('dump.read.event', docs.map((d) => ({ id: 'row', pk: pk('ev', d.nid) })));
          const rows = docs.map((d, i) => {
            const x = rowDocs[i];
            if (!x || x.eventID !== d.eventID) throw new CorruptionError(`event ${d.eventID.slice(0, 200)} is stored in its room but has no row under NID ${d.nid}`);
            return {
              nid: x.nid, room: x.room, type: x.type, key: x.key, eventID: x.eventID, auth: [...x.auth], depth: x.depth,
              rejected: x.rejected, snapshot: x.snapshot, sent: x.sent,
            };
          });
          return { rows, next };
        },
        write: async (rows) => {
          await Promise.all([
            this.upsert('dump.write.event', rows.map((x) => ({
              id: 'row', pk: pk('ev', x.nid), k: 'event', nid: x.nid, room: x.room, type: x.type, key: x.key, eventID: x.eventID,
              auth: [...x.auth], depth: x.depth, rejected: x.rejected, snapshot: x.snapshot, sent: x.sent,
            }))),
            this.raise('event', rows.map((x) => x.nid)),
          ]);
          await this.upsert('dump.write.eid', rows.map((x) => ({ id: 'eid', pk: pk('eid', x.eventID), k: 'event_id', eventID: x.eventID, nid: x.nid, room: x.room })));
          await this.upsert('dump.write.event', rows.map((x) => this.roomEvents.eventDoc({
            eventID: x.eventID, nid: x.nid as EventNID, room: x.room as RoomNID, type: x.type as EventTypeNID, key: x.key as EventStateKeyNID,
            rejected: x.rejected, snapshot: x.snapshot as StateSnapshotNID,
          })));
        },
        // The room's document first (the commit point: only while it names this NID), then the locator, then the row.
        delete: async (rows) => {
          await this.removeOwned<{ nid: number }>('dump.delete.event', rows.map((x) => ({ ref: this.roomEvents.eventRef(x.room, x.eventID), owned: (d) => d.nid === x.nid })));
          await this.removeOwned<{ nid: number }>('dump.delete.eid', rows.map((x) => ({ ref: { id: 'eid', pk: pk('eid', x.eventID) }, owned: (d) => d.nid === x.nid })));
          this.eventsTable.forgetEvents?.(rows.map((x) => x.eventID));
          await this.remove('dump.delete.event', rows.map((x) => ({ id: 'row', pk: pk('ev', x.nid) })));
        },
      },

      // A set document per previous event ID, in the room's partition (the input path's) or its own (the table's
      // calls'); its rows are (ID, NID) pairs. A set's rows may come over several pages. Loads go to the latter.
      // Then the references stored events keep in their own documents (RoomEventDoc.prev): a second phase.
      previous_events: {
        count: async () => (await this.sum('pe', 'SUM(ARRAY_LENGTH(c["values"]))')) + (await this.sum(ROOM_EVENT_KIND, 'SUM(ARRAY_LENGTH(c.prev))', EMBEDDED_REFERENCES)),
        read: async (cursor, limit) => {
          const at = cursor === undefined ? { phase: 0 } : phasedCursor(cursor);
          if (at.phase === 0) {
            const page = await this.grouped<DumpRows['previous_events']>({
              kind: 'pe',
              rowsOf: async (docs) => {
                const prevs = await this.previousIDsOf(docs);
                return docs.map((d, i) => (d.values as number[]).map((nid) => ({ prev: prevs[i]!, nid })));
              },
            }, at.inner, limit);
            return { rows: page.rows, next: JSON.stringify(page.next === undefined ? { phase: 1 } : { phase: 0, inner: page.next }) };
          }
          const page = await this.grouped<DumpRows['previous_events']>({
            kind: ROOM_EVENT_KIND, filter: EMBEDDED_REFERENCES,
            rowsOf: (docs) => docs.map((d) => (d.prev as string[]).map((prev) => ({ prev, nid: d.nid as number }))),
          }, at.inner, limit);
          return { rows: page.rows, next: page.next === undefined ? undefined : JSON.stringify({ phase: 1, inner: page.next }) };
        },
        write: async (rows) => {
          const byID = new Map<string, number[]>();
          for (const x of rows) byID.set(x.prev, [...(byID.get(x.prev) ?? []), x.nid]);
          const ids = [...byID.keys()];
          const existing = await r.readMany<{ values: number[] }>('dump.write.pe', ids.map((id) => ({ id: 'pe', pk: pk('pe', id) })));
          await this.upsert('dump.write.pe', ids.map((id, i) => ({
            id: 'pe', pk: pk('pe', id), k: 'pe', key: id,
            values: unique([...(existing[i]?.values ?? []), ...byID.get(id)!]).sort((a, b) => a - b),
          })));
        },
        delete: async (rows) => {
          // Each pair from its three homes: the set's own, the room's (found through the naming event's row), and the
          // naming event's own document (RoomEventDoc.prev).
          const named = await r.readMany<{ nid: number; eventID: string; room: number }>('dump.delete.pe',
            unique(rows.map((x) => x.nid)).map((nid) => ({ id: 'row', pk: pk('ev', nid) })));
          const eventOf = new Map(named.filter((d) => d !== undefined).map((d) => [d.nid, d]));
          const roomOf = new Map([...eventOf].map(([nid, d]) => [nid, d.room]));
          const byRef = new Map<string, { ref: Ref; nids: Set<number> }>();
          const add = (ref: Ref, nid: number) => {
            const key = `${ref.pk}|${ref.id}`;
            const entry = byRef.get(key) ?? { ref, nids: new Set<number>() };
            entry.nids.add(nid);
            byRef.set(key, entry);
          };
          const naming = new Map<number, { ref: Ref; prevs: Set<string> }>();
          for (const x of rows) {
            add({ id: 'pe', pk: pk('pe', x.prev) }, x.nid);
            const room = roomOf.get(x.nid);
            if (room !== undefined) add(this.roomEvents.referenceRef(room, x.prev), x.nid);
            const event = eventOf.get(x.nid);
            if (event) {
              const entry = naming.get(x.nid) ?? { ref: this.roomEvents.eventRef(event.room, event.eventID), prevs: new Set<string>() };
              entry.prevs.add(x.prev);
              naming.set(x.nid, entry);
            }
          }
          await this.editLists('dump.delete.pe', [
            ...[...byRef.values()].map(({ ref, nids }) => ({ ref, change: (doc: Stored) => without(doc, 'values', (v) => nids.has(v as number)) })),
            ...[...naming].map(([nid, { ref, prevs }]) => ({
              // Only the list's entries go (the list may end empty), never the event's document.
              ref, change: (doc: Stored) => {
                if (doc.nid !== nid || !Array.isArray(doc.prev)) return undefined;
                const kept = (doc.prev as string[]).filter((p) => !prevs.has(p));
                if (kept.length === doc.prev.length) return undefined;
                const { _rid, _self, _etag, _attachments, _ts, ...plain } = doc;
                return { ...plain, prev: kept } as unknown as Doc;
              },
            })),
          ]);
        },
      },

      // The redaction document is the row; the target's list (`redt`) is derived, in seq order.
      redactions: {
        count: () => this.sum('redaction'),
        read: (cursor, limit) => this.grouped<DumpRows['redactions']>({
          kind: 'redaction',
          rowsOf: async (docs) => {
            const nids = await this.eventNIDsOf('redaction', docs.filter((d) => typeof d.seq !== 'number').map((d) => String(d.redactionEventID)));
            return docs.map((d) => [{
              id: String(d.redactionEventID), redacts: String(d.redactsEventID), validated: d.validated === true,
              seq: typeof d.seq === 'number' ? d.seq : nids.get(String(d.redactionEventID))!,
            }]);
          },
        }, cursor, limit),
        write: async (rows) => {
          const seqs = new Map(rows.map((x) => [x.id, x.seq]));
          const targets = unique(rows.map((x) => x.redacts));
          const lists = await r.readMany<{ values: string[] }>('dump.write.redt', targets.map((t) => ({ id: 'redt', pk: pk('redt', t) })));
          // Entries of the lists stored already that this page does not carry: their seq from their documents.
          const others = unique(lists.flatMap((l) => (l?.values ?? []).map(String)).filter((id) => !seqs.has(id)));
          if (others.length > 0) {
            const docs = await r.readMany<{ redactionEventID: string; seq?: number }>('dump.write.redt', others.map((id) => ({ id: 'red', pk: pk('red', id) })));
            const legacy = await this.eventNIDsOf('redaction', others.filter((_, i) => docs[i] && docs[i]!.seq === undefined));
            // A listed ID without its document is a write that never finished: it is left out.
            others.forEach((id, i) => { if (docs[i]) seqs.set(id, docs[i]!.seq ?? legacy.get(id)!); });
          }
          const byTarget = new Map(targets.map((t, i) => [t, (lists[i]?.values ?? []).map(String)]));
          for (const x of rows) byTarget.get(x.redacts)!.push(x.id);
          // The lists first, the redaction documents last, as the driver writes them.
          await Promise.all([
            this.upsert('dump.write.redt', targets.map((t) => ({
              id: 'redt', pk: pk('redt', t), k: 'redt', key: t,
              values: unique(byTarget.get(t)!).filter((id) => seqs.has(id)).sort((a, b) => seqs.get(a)! - seqs.get(b)!),
            }))),
            this.raise('event', rows.map((x) => x.seq)),
          ]);
          await this.upsert('dump.write.red', rows.map((x) => ({
            id: 'red', pk: pk('red', x.id), k: 'redaction', redactionEventID: x.id, redactsEventID: x.redacts, validated: x.validated, seq: x.seq,
          })));
        },
        // The redaction document first (what commits it), then its entry in the target's list.
        delete: async (rows) => {
          await this.remove('dump.delete.red', rows.map((x) => ({ id: 'red', pk: pk('red', x.id) })));
          const byTarget = new Map<string, Set<string>>();
          for (const x of rows) byTarget.set(x.redacts, (byTarget.get(x.redacts) ?? new Set()).add(x.id));
          await this.editLists('dump.delete.redt', [...byTarget].map(([target, ids]) => ({
            ref: { id: 'redt', pk: pk('redt', target) }, change: (doc) => without(doc, 'values', (v) => ids.has(String(v))),
          })));
        },
      },

      // A list document per (room, user); its rows are the invites in it. The ID's claim (`invid`) is derived.
      invites: {
        count: () => this.sum('invites', 'SUM(ARRAY_LENGTH(c.invites))'),
        read: (cursor, limit) => this.grouped<DumpRows['invites']>({
          kind: 'invites',
          rowsOf: async (docs) => {
            const lists = docs.map((d) => d.invites as StoredInvite[]);
            const nids = await this.eventNIDsOf('invite', lists.flat().filter((i) => typeof i.seq !== 'number').map((i) => i.id));
            return docs.map((d, n) => lists[n]!.map((i) => ({
              id: i.id, room: d.room as number, target: d.target as number, sender: i.sender, retired: i.retired, json: i.json,
              seq: typeof i.seq === 'number' ? i.seq : nids.get(i.id)!,
            })));
          },
        }, cursor, limit),
        write: async (rows) => {
          const lists = new Map<string, { room: number; target: number; rows: DumpRows['invites'][] }>();
          for (const x of rows) {
            const key = `${x.room}|${x.target}`;
            const list = lists.get(key) ?? { room: x.room, target: x.target, rows: [] };
            list.rows.push(x);
            lists.set(key, list);
          }
          const all = [...lists.values()];
          const [existing] = await Promise.all([
            r.readMany<{ invites: StoredInvite[] }>('dump.write.inv', all.map((l) => ({ id: `inv|${l.target}`, pk: pk('room', l.room) }))),
            // The claims first, as the driver writes them.
            this.upsert('dump.write.invid', rows.map((x) => ({ id: 'invid', pk: pk('invid', x.id), k: 'invite_id', room: x.room, target: x.target }))),
            this.raise('event', rows.map((x) => x.seq)),
          ]);
          const stored = all.map((l, i) => (existing[i]?.invites ?? []).filter((inv) => !l.rows.some((x) => x.id === inv.id)));
          const legacy = await this.eventNIDsOf('invite', stored.flat().filter((i) => typeof i.seq !== 'number').map((i) => i.id));
          await this.upsert('dump.write.inv', all.map((l, i) => {
            const invites: StoredInvite[] = [
              ...stored[i]!.map((inv) => ({ ...inv, seq: inv.seq ?? legacy.get(inv.id)! })),
              ...l.rows.map((x) => ({ id: x.id, sender: x.sender, retired: x.retired, json: x.json, seq: x.seq })),
            ].sort((a, b) => a.seq! - b.seq!);
            return { id: `inv|${l.target}`, pk: pk('room', l.room), k: 'invites', room: l.room, target: l.target, invites };
          }));
        },
        // The entries in their (room, user) lists first (what commits an invite), then the IDs' claims where they
        // still name that list (read beside the lists).
        delete: async (rows) => {
          const lists = new Map<string, { room: number; target: number; ids: Set<string> }>();
          for (const x of rows) {
            const key = `${x.room}|${x.target}`;
            const list = lists.get(key) ?? { room: x.room, target: x.target, ids: new Set() };
            list.ids.add(x.id);
            lists.set(key, list);
          }
          const claimRef = (x: DumpRows['invites']) => ({ id: 'invid', pk: pk('invid', x.id) });
          const [, claims] = await Promise.all([
            this.editLists('dump.delete.inv', [...lists.values()].map((l) => ({
              ref: { id: `inv|${l.target}`, pk: pk('room', l.room) },
              change: (doc) => without(doc, 'invites', (i) => l.ids.has((i as StoredInvite).id)),
            }))),
            r.readMany<{ room: number; target: number }>('dump.delete.invid', rows.map(claimRef)),
          ]);
          await this.remove('dump.delete.invid', rows.filter((x, i) => claims[i]?.room === x.room && claims[i]?.target === x.target).map(claimRef));
        },
      },

      // The membership document in the room's partition is the row; the user's mirror (`rm|<room>`) is derived.
      membership: {
        count: () => this.sum('membership'),
        read: (cursor, limit) => this.grouped<DumpRows['membership']>({
          kind: 'membership',
          rowsOf: (docs) => docs.map((d) => [{
            room: d.room as number, target: d.target as number, sender: d.sender as number, membership: d.membership as number,
            event: d.eventNID as number, local: d.local === true, forgotten: d.forgotten === true,
          }]),
        }, cursor, limit),
        write: async (rows) => {
          // The target's user ID is kept on the document for room-scoped searches: from the state key map, copied before.
          const targets = unique(rows.map((x) => x.target));
          const users = await r.readMany<{ s: string }>('dump.write.membership', targets.map((t) => ({ id: 'skn', pk: pk('skn', t) })));
          const userIDs = new Map(targets.map((t, i) => [t, users[i]?.s ?? null]));
          await this.upsert('dump.write.membership', rows.map((x) => ({
            id: `m|${x.target}`, pk: pk('room', x.room), k: 'membership', room: x.room, target: x.target, userID: userIDs.get(x.target) ?? null,
            sender: x.sender, membership: x.membership, eventNID: x.event, local: x.local, forgotten: x.forgotten,
          })));
          await this.upsert('dump.write.mirror', rows.map((x) => ({
            id: `rm|${x.room}`, pk: pk('user', x.target), k: 'user_room', room: x.room, target: x.target, membership: x.membership, forgotten: x.forgotten,
          })));
        },
        // The document in the room's partition, then its mirror in the user's.
        delete: async (rows) => {
          await this.remove('dump.delete.membership', rows.map((x) => ({ id: `m|${x.target}`, pk: pk('room', x.room) })));
          await this.remove('dump.delete.mirror', rows.map((x) => ({ id: `rm|${x.room}`, pk: pk('user', x.target) })));
        },
      },

      transactions: simple<DumpRows['transactions']>({
        kind: 'transaction',
        rowsOf: async (docs) => (await this.userIDsOf(docs, 'userID', 'txn', 1, 0)).map((userID, n) => {
          const d = docs[n]!;
          let sessionID = d.sessionID as number | undefined;
          let transactionID = d.transactionID as string | undefined;
          if (sessionID === undefined || transactionID === undefined) {
            // docId(sessionID, transactionID): the number, then the encoded ID.
            const bar = d.id.indexOf('|');
            const decoded = decodePart(d.id.slice(bar + 1));
            if (bar < 0 || decoded === undefined) throw new CorruptionError(`transaction document ${d.id.slice(0, 200)} keeps its key only as a hash: it cannot be dumped`);
            sessionID = Number(d.id.slice(0, bar));
            transactionID = decoded;
          }
          return [{ transactionID, sessionID, userID, eventID: String(d.eventID) }];
        }),
        toDoc: (x) => ({
          id: docId(x.sessionID, x.transactionID), pk: pk('txn', x.userID), k: 'transaction', eventID: x.eventID,
          userID: x.userID, sessionID: x.sessionID, transactionID: x.transactionID,
        }),
      }),

      // The room's ID document commits the room; the room list entry and the room document are written before it.
      rooms: {
        count: () => this.sum('room_id'),
        read: async (cursor, limit) => {
          const { docs, next } = await this.byNumber<Stored & { roomNID: number; roomID: string }>('room_id', 'roomNID', cursor, limit);
          const rooms = await r.readMany<{ roomNID: number; roomID: string; version: string; latest: number[]; lastSent: number; snapshot: number }>(
            'dump.read.room', docs.map((d) => ({ id: 'room', pk: pk('room', d.roomNID) })));
          const rows = docs.map((d, i) => {
            const x = rooms[i];
            if (!x) throw new CorruptionError(`room ${d.roomID.slice(0, 200)} has an ID document but no room document under NID ${d.roomNID}`);
            return { nid: x.roomNID, roomID: x.roomID, version: x.version, latest: [...x.latest], lastSent: x.lastSent, snapshot: x.snapshot };
          });
          return { rows, next };
        },
        write: async (rows) => {
          // The current snapshot's block list rides on the room document (the current state in 3 requests): from the
          // snapshots, copied before. Written unclaimed, with nothing appending.
          const withState = rows.filter((x) => x.snapshot !== 0);
          const [snapshots] = await Promise.all([
            r.readMany<{ blocks: number[] }>('dump.write.room', withState.map((x) => ({ id: 'ss', pk: pk('ss', x.snapshot) }))),
            this.raise('room', rows.map((x) => x.nid)),
          ]);
          const blocks = new Map(withState.map((x, i) => [x.nid, snapshots[i]?.blocks]));
          await Promise.all([
            this.upsert('dump.write.room', rows.map((x) => {
              const list = blocks.get(x.nid);
              return {
                id: 'room', pk: pk('room', x.nid), k: 'room', roomNID: x.nid, roomID: x.roomID, version: x.version, latest: [...x.latest],
                lastSent: x.lastSent, snapshot: x.snapshot, appending: [], claimedUntil: null,
                ...(list ? { snapshotBlocks: { nid: x.snapshot, blocks: [...list] } } : {}),
              };
            })),
            this.upsert('dump.write.room', rows.map((x) => ({ id: String(x.nid), pk: pk('rooms'), k: 'room_list', roomNID: x.nid, roomID: x.roomID }))),
          ]);
          await this.upsert('dump.write.rid', rows.map((x) => ({ id: 'rid', pk: pk('rid', x.roomID), k: 'room_id', roomID: x.roomID, roomNID: x.nid })));
        },
        // The ID document first (the commit point, keyed by the room ID a new room may take again: only while it
        // names this NID), then the room document and the room's entry in the room list.
        delete: async (rows) => {
          await this.removeOwned<{ roomNID: number }>('dump.delete.rid', rows.map((x) => ({ ref: { id: 'rid', pk: pk('rid', x.roomID) }, owned: (d) => d.roomNID === x.nid })));
          this.roomsTable.forgetRooms?.(rows.map((x) => x.nid));
          await this.remove('dump.delete.room', rows.flatMap((x) => [{ id: 'room', pk: pk('room', x.nid) }, { id: String(x.nid), pk: pk('rooms') }]));
        },
      },

      // Aliases are listed per room by their `seq` (insertion order), which a dump does not carry: a copied alias
      // keeps the seq it has, and new ones take fresh values of the order counter, in the order written.
      room_aliases: {
        count: () => this.sum('alias'),
        read: (cursor, limit) => this.grouped<DumpRows['room_aliases']>({
          kind: 'alias',
          rowsOf: (docs) => docs.map((d) => [{ alias: String(d.alias), roomID: String(d.roomID), creator: String(d.creator) }]),
        }, cursor, limit),
        write: async (rows) => {
          const existing = await r.readMany<{ seq: number }>('dump.write.alias', rows.map((x) => ({ id: docId(x.alias), pk: pk('aliases') })));
          const fresh = existing.filter((d) => d === undefined).length;
          let next = fresh > 0 ? await conn.sequence('order').nextRange(fresh) : 0;
          await this.upsert('dump.write.alias', rows.map((x, i) => ({
            id: docId(x.alias), pk: pk('aliases'), k: 'alias', alias: x.alias, roomID: x.roomID, creator: x.creator, seq: existing[i]?.seq ?? next++,
          })));
        },
        delete: (rows) => this.remove('dump.delete.alias', rows.map((x) => ({ id: docId(x.alias), pk: pk('aliases') }))),
      },
      // Documents written before the directory had networks carry no appservice or network: the server's own list.
      published: simple<DumpRows['published']>({
        kind: 'published',
        rowsOf: (docs) => docs.map((d) => [{
          roomID: String(d.roomID), appserviceID: typeof d.appserviceID === 'string' ? d.appserviceID : '',
          networkID: typeof d.networkID === 'string' ? d.networkID : '', published: d.published === true,
        }]),
        toDoc: (x) => ({
          id: CosmosPublishedTable.docID(x.roomID, x.appserviceID, x.networkID), pk: pk('published'), k: 'published',
          roomID: x.roomID, appserviceID: x.appserviceID, networkID: x.networkID, published: x.published,
        }),
      }),
      // Report IDs come from the order counter: raised past the IDs written.
      reported_events: simple<DumpRows['reported_events']>({
        kind: 'report',
        rowsOf: (docs) => docs.map((d) => [{
          id: d.reportID as number, room: d.roomNID as number, event: d.eventNID as number, reporter: d.reportingUserNID as number,
          sender: d.eventSenderNID as number, reason: String(d.reason), score: d.score as number, receivedTS: d.receivedTS as number,
        }]),
        toDoc: (x) => ({
          id: String(x.id), pk: pk('reports'), k: 'report', reportID: x.id, roomNID: x.room, eventNID: x.event, reportingUserNID: x.reporter,
          eventSenderNID: x.sender, reason: x.reason, score: x.score, receivedTS: x.receivedTS,
        }),
        after: (rows) => this.raise('order', rows.map((x) => x.id)),
      }),
      user_room_keys: simple<DumpRows['user_room_keys']>({
        kind: 'urk',
        rowsOf: (docs) => docs.map((d) => [{
          user: d.userNID as number, room: d.roomNID as number, privateKey: typeof d.priv === 'string' ? d.priv : null, publicKey: String(d.pub),
        }]),
        toDoc: (x) => ({
          id: `u|${x.user}`, pk: pk('urk', x.room), k: 'urk', userNID: x.user, roomNID: x.room, pub: x.publicKey,
          ...(x.privateKey !== null ? { priv: x.privateKey } : {}),
        }),
      }),
      federation_blacklist: simple<DumpRows['federation_blacklist']>({
        kind: 'blacklist',
        rowsOf: (docs) => docs.map((d) => [{ server: String(d.serverName) }]),
        toDoc: (x) => ({ id: docId(x.server), pk: pk('blacklist'), k: 'blacklist', serverName: x.server }),
      }),

      // Device keys in the user's key partition, beside the user's stream counter: one a live writer created is
      // raised past the copied stream IDs; where none exists the driver seeds it from the devices on first use.
      device_keys: simple<DumpRows['device_keys']>({
        kind: 'device_key',
        rowsOf: (docs) => docs.map((d) => [{
          userID: String(d.userID), deviceID: String(d.deviceID), tsAdded: d.tsAdded as number, keyJSON: String(d.keyJSON),
          streamID: d.streamID as number, displayName: typeof d.displayName === 'string' ? d.displayName : null,
        }]),
        toDoc: (x) => ({
          id: docId('dk', x.deviceID), pk: pk('keys', x.userID), k: 'device_key',
          userID: x.userID, deviceID: x.deviceID, keyJSON: x.keyJSON, streamID: x.streamID, displayName: x.displayName, tsAdded: x.tsAdded,
        }),
        after: (rows) => this.raiseStreamCounters(rows),
        afterDelete: (rows) => this.removeStreamCountersOfDeviceless(rows.map((x) => x.userID)),
      }),
      // Claimed keys are handed out already (their deletion is only cleanup): not part of the store's content. The
      // driver keeps no upload time: the document's last write stands in for it where a dump did not write one.
      one_time_keys: simple<DumpRows['one_time_keys']>({
        kind: 'otk',
        filter: 'AND NOT IS_DEFINED(c.claim)',
        rowsOf: async (docs) => {
          const users = await this.userIDsOf(docs, 'userID', 'otk', 2, 0);
          return docs.map((d, i) => [{
            userID: users[i]!, deviceID: typeof d.deviceID === 'string' ? d.deviceID : this.partPresent(d, this.partitionParts(d, 'otk', 2)[1]),
            algorithm: String(d.algorithm), keyID: String(d.keyID), tsAdded: typeof d.tsAdded === 'number' ? d.tsAdded : d._ts ?? 0, keyJSON: String(d.json),
          }]);
        },
        toDoc: (x) => ({
          id: docId(x.algorithm, x.keyID), pk: pk('otk', x.userID, x.deviceID), k: 'otk', algorithm: x.algorithm, keyID: x.keyID, json: x.keyJSON,
          userID: x.userID, deviceID: x.deviceID, tsAdded: x.tsAdded,
        }),
      }),
      // Fallback keys in the user's key partition, beside the device keys; every field is in the document.
      fallback_keys: simple<DumpRows['fallback_keys']>({
        kind: 'fbk',
        rowsOf: (docs) => docs.map((d) => [{
          userID: String(d.userID), deviceID: String(d.deviceID), algorithm: String(d.algorithm), keyID: String(d.keyID),
          tsAdded: d.tsAdded as number, keyJSON: String(d.json), used: d.used === true,
        }]),
        toDoc: (x) => ({
          id: docId('fbk', x.deviceID, x.algorithm), pk: pk('keys', x.userID), k: 'fbk',
          userID: x.userID, deviceID: x.deviceID, algorithm: x.algorithm, keyID: x.keyID, json: x.keyJSON, used: x.used, tsAdded: x.tsAdded,
        }),
      }),
      key_changes: simple<DumpRows['key_changes']>({
        kind: 'key_change',
        rowsOf: (docs) => docs.map((d) => [{ userID: String(d.userID), changeID: d.changeID as number }]),
        toDoc: (x) => ({ id: docId(x.userID), pk: pk('keychanges'), k: 'key_change', userID: x.userID, changeID: x.changeID }),
        after: (rows) => this.raise('order', rows.map((x) => x.changeID)),
      }),
      cross_signing_keys: simple<DumpRows['cross_signing_keys']>({
        kind: 'csk',
        rowsOf: async (docs) => {
          const users = await this.userIDsOf(docs, 'userID', 'keys', 1, 0);
          return docs.map((d, i) => [{ userID: users[i]!, keyType: d.purpose as number, keyData: String(d.data) }]);
        },
        toDoc: (x) => {
          if (!isCrossSigningKeyPurpose(x.keyType)) throw new InvalidInputError(`cross-signing key purposes are 1, 2 or 3, got ${String(x.keyType)}`);
          return { id: `csk|${x.keyType}`, pk: pk('keys', x.userID), k: 'csk', purpose: x.keyType, data: x.keyData, userID: x.userID };
        },
      }),
      cross_signing_sigs: simple<DumpRows['cross_signing_sigs']>({
        kind: 'css',
        rowsOf: async (docs) => {
          const targets = await this.userIDsOf(docs, 'targetUserID', 'keys', 1, 0);
          return docs.map((d, i) => [{
            originUserID: String(d.originUserID), originKeyID: String(d.originKeyID), targetUserID: targets[i]!,
            targetKeyID: String(d.targetKeyID), signature: String(d.signature),
          }]);
        },
        toDoc: (x) => ({
          id: docId('css', x.originUserID, x.targetKeyID), pk: pk('keys', x.targetUserID), k: 'css',
          originUserID: x.originUserID, originKeyID: x.originKeyID, targetKeyID: x.targetKeyID, signature: x.signature, targetUserID: x.targetUserID,
        }),
      }),
      stale_device_lists: simple<DumpRows['stale_device_lists']>({
        kind: 'stale',
        rowsOf: (docs) => docs.map((d) => [{ userID: String(d.userID), domain: String(d.domain), stale: d.isStale === true, tsAdded: d.tsAdded as number }]),
        toDoc: (x) => ({ id: docId(x.userID), pk: pk('stale'), k: 'stale', userID: x.userID, domain: x.domain, isStale: x.stale, tsAdded: x.tsAdded }),
      }),
      key_backup_versions: simple<DumpRows['key_backup_versions']>({
        kind: 'backup_version',
        rowsOf: (docs) => docs.map((d) => [{
          version: d.version as number, userID: String(d.userID), algorithm: String(d.algorithm), authData: String(d.authData),
          etag: String(d.etag), deleted: d.deleted === true,
        }]),
        toDoc: (x) => ({
          id: `bv|${x.version}`, pk: pk('backup', x.userID), k: 'backup_version',
          userID: x.userID, version: x.version, algorithm: x.algorithm, authData: x.authData, etag: x.etag, deleted: x.deleted,
        }),
        after: (rows) => this.raise('order', rows.map((x) => x.version)),
      }),
      key_backups: simple<DumpRows['key_backups']>({
        kind: 'backup_session',
        rowsOf: async (docs) => {
          const users = await this.userIDsOf(docs, 'userID', 'backup', 1, 0);
          return docs.map((d, i) => [{
            userID: users[i]!, version: String(d.version), roomID: String(d.roomID), sessionID: String(d.sessionID),
            firstMessageIndex: d.firstMessageIndex as number, forwardedCount: d.forwardedCount as number, verified: d.isVerified === true,
            sessionData: String(d.sessionData),
          }]);
        },
        toDoc: (x) => ({
          id: docId('s', x.version, x.roomID, x.sessionID), pk: pk('backup', x.userID), k: 'backup_session',
          version: x.version, roomID: x.roomID, sessionID: x.sessionID, firstMessageIndex: x.firstMessageIndex, forwardedCount: x.forwardedCount,
          isVerified: x.verified, sessionData: x.sessionData, userID: x.userID,
        }),
      }),

      // A message per document, keyed by its stream position: paged on the position.
      send_to_device: {
        count: () => this.sum('s2d'),
        read: async (cursor, limit) => {
          const { docs, next } = await this.byNumber<Stored & { position: number; userID: string; deviceID: string; content: string; sentAt?: number; _ts: number }>(
            's2d', 'position', cursor, limit);
          return { rows: docs.map((d) => ({ id: d.position, userID: d.userID, deviceID: d.deviceID, content: d.content, sentAt: d.sentAt ?? d._ts * 1000 })), next };
        },
        write: async (rows) => {
          await Promise.all([
            this.upsert('dump.write.s2d', rows.map((x) => ({
              id: String(x.id), pk: pk('s2d', x.userID, x.deviceID), k: 's2d', position: x.id, userID: x.userID, deviceID: x.deviceID, content: x.content,
              sentAt: x.sentAt,
            }))),
            this.raise('order', rows.map((x) => x.id)),
          ]);
        },
        delete: (rows) => this.remove('dump.delete.s2d', rows.map((x) => ({ id: String(x.id), pk: pk('s2d', x.userID, x.deviceID) }))),
      },
      partition_offsets: simple<DumpRows['partition_offsets']>({
        kind: 'offset',
        rowsOf: (docs) => docs.map((d) => {
          const [topic] = typeof d.topic === 'string' ? [d.topic] : this.keyParts(d, 'offsets', 1);
          return [{ topic: topic!, partition: d.partition as number, offset: d.offset as number }];
        }),
        toDoc: (x) => ({ id: String(x.partition), pk: pk('offsets', x.topic), k: 'offset', partition: x.partition, offset: x.offset, topic: x.topic }),
      }),
    };
  }

  /**
   * Raises the stream counters live writers created for these rows' users past their stream IDs, in bulk: the
   * counters read together, then each one below replaced on its ETag (again one by one after a race).
   */
  private async raiseStreamCounters(rows: readonly DumpRows['device_keys'][]): Promise<void> {
    const r = this.conn.requests;
    const highest = new Map<string, number>();
    for (const x of rows) highest.set(x.userID, Math.max(highest.get(x.userID) ?? 0, x.streamID));
    const users = [...highest.keys()];
    const ref = (userID: string) => ({ id: 'streams', pk: this.conn.pk('keys', userID) });
    const counters = await r.readMany<{ value: number }>('dump.write.streams', users.map(ref));
    const low = users.flatMap((userID, i) => {
      const doc = counters[i];
      return doc && doc.value < highest.get(userID)! ? [{ userID, etag: doc._etag }] : [];
    });
    if (low.length === 0) return;
    const replaced = await r.replaceManyIfMatch('dump.write.streams', low.map(({ userID, etag }) => ({
      doc: { ...ref(userID), k: 'stream_counter', value: highest.get(userID)! }, etag,
    })));
    for (const [i, { userID }] of low.entries()) {
      if (replaced[i]) continue;
      const value = highest.get(userID)!;
      await r.patchWhen<{ value: number }>('dump.write.streams', 'streams', ref(userID).pk, (doc) => doc.value < value, () => [{ op: 'set', path: '/value', value }]);
    }
  }
}

/** An invite in a (room, user) list document; `seq` only where a dump wrote it. */
interface StoredInvite {
  id: string;
  sender: number;
  retired: boolean;
  json: string;
  seq?: number;
}

function parseCursor(cursor: string): unknown {
  try {
    return JSON.parse(cursor) as unknown;
  } catch {
    throw new InvalidInputError(`not a cursor of this dump table: ${cursor.slice(0, 100)}`);
  }
}

function groupCursor(cursor: string): GroupCursor {
  const c = parseCursor(cursor) as Partial<GroupCursor> | null;
  if (!c || typeof c !== 'object' || typeof c.p !== 'string' || (c.i !== undefined && typeof c.i !== 'string')
    || (c.s !== undefined && (c.i === undefined || !Number.isSafeInteger(c.s) || c.s < 0))) {
    throw new InvalidInputError(`not a cursor of this dump table: ${cursor.slice(0, 100)}`);
  }
  return c as GroupCursor;
}

/** Room documents of events that name stored prev events themselves (RoomEventDoc.prev). */
const EMBEDDED_REFERENCES = 'AND IS_DEFINED(c.prev) AND ARRAY_LENGTH(c.prev) > 0';

/** The previous_events table's cursor: which of its two phases, and the grouped read's cursor within it. */
function phasedCursor(cursor: string): { phase: number; inner?: string } {
  const c = parseCursor(cursor) as { phase?: unknown; inner?: unknown } | null;
  if (!c || typeof c !== 'object' || (c.phase !== 0 && c.phase !== 1) || (c.inner !== undefined && typeof c.inner !== 'string')) {
    throw new InvalidInputError(`not a cursor of this dump table: ${cursor.slice(0, 100)}`);
  }
  return c as { phase: number; inner?: string };
}

import type { SqlParameter } from '@azure/cosmos';
import { CorruptionError, InvalidInputError } from '../../types/errors.js';
import { unique } from '../shared/contracts.js';
import type { DumpRows, DumpTableName } from '../tables/dump.js';
import type { CosmosConnection, SequenceName } from './connection.js';
import { decodePart, splitPartitionKey } from './ids.js';
import type { Doc } from './requests.js';
import { roomHashRef } from './content-addressed.js';

/*
 * The document-level primitives the Cosmos DB dump's table specs (dump-room-server-tables.ts, dump-other-tables.ts)
 * share: counting, paging (by a unique number, or grouped by partition), recovering keys documents keep only in their
 * partition key, and bulk writes and deletes that keep derived documents true. How they fit together: the comment of
 * CosmosStoreDump (dump.ts).
 */

/** A document as a query or point read returns it. */
export type Stored = Record<string, unknown> & { id: string; pk: string; _etag?: string; _ts?: number };

type Page<R> = { rows: R[]; next: string | undefined };

/** How one logical table is read, written and deleted on Cosmos DB. */
export interface Table<R> {
  count(): Promise<number>;
  read(cursor: string | undefined, limit: number): Promise<Page<R>>;
  write(rows: readonly R[]): Promise<void>;
  delete(rows: readonly R[]): Promise<void>;
}

/** Every dumped table's spec, by name. */
export type TableSpecs = { readonly [K in DumpTableName]: Table<DumpRows[K]> };

/** Where a document is: its id in its partition. */
export type Ref = { id: string; pk: string };

/**
 * A change to a list document that several rows share (a prev_events set, a redaction target's list, an invite
 * list): the document as stored, to what it becomes (`undefined`: unchanged, `null`: deleted, being empty).
 */
export type ListEdit = { ref: Ref; change: (doc: Stored) => Doc | null | undefined };

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
export interface GroupSpec<R> {
  readonly kind: string;
  /** More conditions on `c` (constant text), e.g. leaving claimed one-time keys out. */
  readonly filter?: string;
  /** What count() adds up per document (default: one per document). */
  readonly countExpression?: string;
  /** The rows of each document, in a fixed order (the documents of one page, so lookups can be made in bulk). */
  readonly rowsOf: (docs: readonly Stored[]) => Promise<R[][]> | R[][];
}

const maxOf = (values: readonly number[]) => values.reduce((a, b) => Math.max(a, b), 0);

/** The document-level operations of one tenant's dump, shared by every table spec. */
export class DumpDocuments {
  constructor(readonly conn: CosmosConnection) {}

  // ---- reading ----

  /** Adds up `expression` over the tenant's documents of `kind`. */
  async sum(kind: string, expression = 'COUNT(1)', filter = ''): Promise<number> {
    const rows = await this.conn.requests.crossPartitionQuery<number | undefined>(`dump.count.${kind}`, this.conn.tenantPrefix,
      `SELECT VALUE ${expression} FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = @k ${filter}`, [{ name: '@k', value: kind }]);
    return rows.reduce<number>((a, b) => a + (b ?? 0), 0);
  }

  /**
   * A page of the documents of `kind` ordered by a unique number `field` (a NID, a stream position) after the
   * cursor's; `next` is set when the page is full (the page after the last full one is empty, without `next`).
   */
  async byNumber<D extends Stored>(kind: string, field: string, cursor: string | undefined, limit: number): Promise<{ docs: D[]; next: string | undefined }> {
    let after = 0;
    if (cursor !== undefined) {
      const parsed = parseCursor(cursor);
      if (!Number.isSafeInteger(parsed)) throw new InvalidInputError(`not a cursor of this dump table: ${cursor.slice(0, 100)}`);
      after = parsed as number;
    }
    // `field` is a constant of the table specs; every value is a parameter.
    const docs = await this.conn.requests.crossPartitionQuery<D>(`dump.read.${kind}`, this.conn.tenantPrefix,
      `SELECT TOP @limit * FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = @k AND c.${field} > @after ORDER BY c.${field}`,
      [{ name: '@limit', value: limit }, { name: '@k', value: kind }, { name: '@after', value: after }]);
    const last = docs.at(-1);
    return { docs, next: docs.length === limit && last ? JSON.stringify(last[field]) : undefined };
  }

  /** A page of a grouped kind's rows (see GroupCursor). */
  async grouped<R>(spec: GroupSpec<R>, cursor: string | undefined, limit: number): Promise<Page<R>> {
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
  partitionParts(doc: Stored, kind: string, count: number): (string | undefined)[] {
    const split = splitPartitionKey(this.conn.config.tenant, doc.pk);
    if (!split || split.kind !== kind || split.parts.length !== count) {
      throw new CorruptionError(`document ${doc.id} has partition key ${doc.pk.slice(0, 200)}, not one of kind ${kind}`);
    }
    return split.parts.map(decodePart);
  }

  /** partitionParts, where nothing else can recover a hashed part: such a document cannot be dumped. */
  keyParts(doc: Stored, kind: string, count: number): string[] {
    return this.partitionParts(doc, kind, count).map((value) => this.partPresent(doc, value));
  }

  partPresent(doc: Stored, value: string | undefined): string {
    if (value === undefined) throw new CorruptionError(`document ${doc.id} in partition ${doc.pk.slice(0, 200)} keeps its key only as a hash: it cannot be dumped`);
    return value;
  }

  /**
   * The user IDs of documents written before the user was also kept as a field, from the partition key's part
   * `index` (counting after the kind); a part kept as a hash (a long user ID) is looked up in that user's key or
   * backup partition, whose device and backup version documents carry the ID (the hash part is the same there).
   */
  async userIDsOf(docs: readonly Stored[], field: string, kind: string, parts: number, index: number): Promise<string[]> {
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
  async previousIDsOf(docs: readonly Stored[]): Promise<string[]> {
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
   * comment of CosmosStoreDump), by the events' locators, in bulk.
   */
  async eventNIDsOf(what: string, ids: readonly string[]): Promise<Map<string, number>> {
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

  upsert(operation: string, docs: readonly Doc[]): Promise<void> {
    return this.conn.requests.upsertMany(operation, docs);
  }

  raise(sequence: SequenceName, values: readonly number[]): Promise<void> {
    return this.conn.sequence(sequence).raiseTo(maxOf(values));
  }

  // ---- deleting ----

  /** Deletes documents in bulk, each once; absent ones are skipped. */
  async remove(operation: string, refs: readonly Ref[]): Promise<void> {
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
  async removeOwned<D>(operation: string, items: readonly { ref: Ref; owned: (doc: D) => boolean }[]): Promise<void> {
    const docs = await this.conn.requests.readMany<D>(operation, items.map((x) => x.ref));
    await this.remove(operation, items.filter((x, i) => docs[i] !== undefined && x.owned(docs[i]!)).map((x) => x.ref));
  }

  /**
   * Applies changes to list documents, one edit per document: read in bulk, then the emptied ones deleted and the
   * others replaced, in bulk, on the ETag read (a document changed meanwhile is read and changed again). The
   * deletes are not conditional (a bulk delete takes no ETag): for a store no live writer is using.
   */
  async editLists(operation: string, edits: readonly ListEdit[]): Promise<void> {
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
  async removeContentAddressed(kind: 'sb' | 'ss', rows: readonly { nid: number; hash: string }[], hashOf: (content: Stored) => string): Promise<void> {
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

  /** A NID mapping (event types, state keys): read from the string side (its commit point), written NID side first. */
  nidMappingTable<R>(kind: 'et' | 'sk', sequence: SequenceName, fromDoc: (d: { s: string; nid: number }) => R, toPair: (row: R) => [string, number]): Table<R> {
    return {
      count: () => this.sum(kind),
      read: async (cursor, limit) => {
        const { docs, next } = await this.byNumber<Stored & { s: string; nid: number }>(kind, 'nid', cursor, limit);
        return { rows: docs.map(fromDoc), next };
      },
      write: async (rows) => {
        const pairs = rows.map(toPair);
        await Promise.all([
          this.upsert(`dump.write.${kind}`, pairs.map(([s, nid]) => ({ id: `${kind}n`, pk: this.conn.pk(`${kind}n`, nid), k: `${kind}n`, s, nid }))),
          this.raise(sequence, pairs.map(([, nid]) => nid)),
        ]);
        await this.upsert(`dump.write.${kind}`, pairs.map(([s, nid]) => ({ id: kind, pk: this.conn.pk(kind, s), k: kind, s, nid })));
      },
      // The string side first (the commit point, keyed by the string: only while it names this NID), then the NID side.
      delete: async (rows) => {
        const pairs = rows.map(toPair);
        await this.removeOwned<{ nid: number }>(`dump.delete.${kind}`, pairs.map(([s, nid]) => ({ ref: { id: kind, pk: this.conn.pk(kind, s) }, owned: (d) => d.nid === nid })));
        await this.remove(`dump.delete.${kind}`, pairs.map(([, nid]) => ({ id: `${kind}n`, pk: this.conn.pk(`${kind}n`, nid) })));
      },
    };
  }

  /** Kinds written as one document per row, into partitions of their own or shared. */
  documentPerRowTable<R>(spec: GroupSpec<R> & {
    toDoc: (row: R) => Doc;
    after?: (rows: readonly R[]) => Promise<void>;
    afterDelete?: (rows: readonly R[]) => Promise<void>;
  }): Table<R> {
    return {
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
    };
  }
}

/** The row's entries removed from a list document (`field`); null once nothing is left, undefined if none was there. */
export function listWithout(doc: Stored, field: string, drop: (entry: unknown) => boolean): Doc | null | undefined {
  const list = Array.isArray(doc[field]) ? doc[field] as unknown[] : [];
  const kept = list.filter((entry) => !drop(entry));
  if (kept.length === list.length) return undefined;
  if (kept.length === 0) return null;
  const { _rid, _self, _etag, _attachments, _ts, ...plain } = doc;
  return { ...plain, [field]: kept } as unknown as Doc;
}

export function parseCursor(cursor: string): unknown {
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

import { CorruptionError, InvalidInputError } from '../../types/errors.js';
import type { EventNID, EventStateKeyNID, EventTypeNID, RoomNID, StateBlockNID, StateSnapshotNID } from '../../types/nids.js';
import type { StateEntry } from '../../types/state.js';
import { checkBlockList, unique } from '../shared/contracts.js';
import { decodeStateBlock, encodeStateBlock, hashBlockList, sha256 } from '../shared/state-codec.js';
import type { DumpEntry, DumpRows } from '../tables/dump.js';
import { listWithout, parseCursor, type DumpDocuments, type Ref, type Stored, type TableSpecs } from './dump-documents.js';
import type { CosmosEventsTable } from './events.js';
import { decodePart, docId } from './ids.js';
import { CosmosPublishedTable } from './published.js';
import type { Doc } from './requests.js';
import type { CosmosRoomsTable } from './rooms.js';
import { ROOM_EVENT_KIND, type CosmosRoomEvents } from './room-events.js';

/** The room server's tables of a dump, in the order of DUMP_TABLES: the state, the events and the rooms' own rows. */
export type RoomServerTableName =
  | 'event_types' | 'event_state_keys' | 'state_blocks' | 'state_snapshots' | 'event_json' | 'events' | 'previous_events'
  | 'redactions' | 'invites' | 'membership' | 'transactions' | 'rooms' | 'room_aliases' | 'published' | 'reported_events'
  | 'user_room_keys';

/** The dump's entries as the codec takes them, and back. */
const entriesOf = (entries: readonly StateEntry[]): DumpEntry[] => entries.map((e) => [e.eventTypeNID, e.eventStateKeyNID, e.eventNID] as const);
const entriesFrom = (entries: readonly DumpEntry[]): StateEntry[] =>
  entries.map(([t, k, e]) => ({ eventTypeNID: t, eventStateKeyNID: k, eventNID: e }) as StateEntry);

/** An invite in a (room, user) list document; `seq` only where a dump wrote it. */
interface StoredInvite {
  id: string;
  sender: number;
  retired: boolean;
  json: string;
  seq?: number;
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

/**
 * How the room server's tables are read, written and deleted on Cosmos DB (see CosmosStoreDump for the approach).
 * `eventsTable` and `roomsTable`: the tables whose caches a delete must keep true.
 */
export function roomServerTableSpecs(
  documents: DumpDocuments,
  roomEvents: CosmosRoomEvents,
  eventsTable: Partial<Pick<CosmosEventsTable, 'forgetEvents'>>,
  roomsTable: Partial<Pick<CosmosRoomsTable, 'forgetRooms'>>,
): Pick<TableSpecs, RoomServerTableName> {
  const conn = documents.conn;
  const r = conn.requests;
  const pk = (kind: string, ...parts: (string | number)[]) => conn.pk(kind, ...parts);

  return {
    event_types: documents.nidMappingTable('et', 'eventType', (d) => ({ nid: d.nid, type: d.s }), (x) => [x.type, x.nid]),
    event_state_keys: documents.nidMappingTable('sk', 'stateKey', (d) => ({ nid: d.nid, key: d.s }), (x) => [x.key, x.nid]),

    // Content-addressed state: the hash document commits a content document (a loser of a race removes its own).
    state_blocks: {
      count: () => documents.sum('sbh'),
      read: async (cursor, limit) => {
        const { docs, next } = await documents.byNumber<Stored & { nid: number }>('sbh', 'nid', cursor, limit);
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
          documents.upsert('dump.write.sb', encoded.map(({ nid, block }) => ({
            id: 'sb', pk: pk('sb', nid), k: 'sb', nid, count: block.entries.length, bytes: block.bytes.toString('base64'),
          }))),
          documents.raise('stateBlock', rows.map((x) => x.nid)),
        ]);
        await documents.upsert('dump.write.sbh', encoded.map(({ nid, block }) => ({ id: 'sbh', pk: pk('sbh', block.hash.toString('hex')), k: 'sbh', nid })));
      },
      delete: (rows) => documents.removeContentAddressed('sb',
        rows.map((x) => ({ nid: x.nid, hash: encodeStateBlock(entriesFrom(x.entries)).hash.toString('hex') })),
        (content) => sha256(Buffer.from(String(content.bytes), 'base64')).toString('hex')),
    },
    state_snapshots: {
      count: () => documents.sum('ssh'),
      read: async (cursor, limit) => {
        const { docs, next } = await documents.byNumber<Stored & { nid: number }>('ssh', 'nid', cursor, limit);
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
          documents.upsert('dump.write.ss', rows.map((x) => ({ id: 'ss', pk: pk('ss', x.nid), k: 'ss', nid: x.nid, room: x.room, blocks: [...x.blocks] }))),
          documents.raise('stateSnapshot', rows.map((x) => x.nid)),
        ]);
        await documents.upsert('dump.write.ssh', rows.map((x) => ({ id: 'ssh', pk: pk('ssh', hashBlockList(x.blocks as StateBlockNID[]).toString('hex')), k: 'ssh', nid: x.nid })));
      },
      delete: (rows) => documents.removeContentAddressed('ss',
        rows.map((x) => ({ nid: x.nid, hash: hashBlockList(x.blocks).toString('hex') })),
        (content) => hashBlockList(Array.isArray(content.blocks) ? content.blocks as number[] : []).toString('hex')),
    },

    // The JSON of every stored event (its room holds it): the JSON is written before the room's commit.
    event_json: {
      count: () => documents.sum(ROOM_EVENT_KIND),
      read: async (cursor, limit) => {
        const { docs, next } = await documents.byNumber<Stored & { nid: number }>(ROOM_EVENT_KIND, 'nid', cursor, limit);
        const json = await r.readMany<{ nid: number; json: string }>('dump.read.json', docs.map((d) => ({ id: 'json', pk: pk('ev', d.nid) })));
        return { rows: json.filter((j) => j !== undefined).map((j) => ({ nid: j.nid, json: j.json })), next };
      },
      write: async (rows) => {
        await Promise.all([
          documents.upsert('dump.write.json', rows.map((x) => ({ id: 'json', pk: pk('ev', x.nid), k: 'event_json', nid: x.nid, json: x.json }))),
          documents.raise('event', rows.map((x) => x.nid)),
        ]);
      },
      delete: (rows) => documents.remove('dump.delete.json', rows.map((x) => ({ id: 'json', pk: pk('ev', x.nid) }))),
    },
    // An event is its room's document of it (the commit point) and its row, read in bulk beside it.
    events: {
      count: () => documents.sum(ROOM_EVENT_KIND),
      read: async (cursor, limit) => {
        const { docs, next } = await documents.byNumber<Stored & { nid: number; eventID: string }>(ROOM_EVENT_KIND, 'nid', cursor, limit);
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
          documents.upsert('dump.write.event', rows.map((x) => ({
            id: 'row', pk: pk('ev', x.nid), k: 'event', nid: x.nid, room: x.room, type: x.type, key: x.key, eventID: x.eventID,
            auth: [...x.auth], depth: x.depth, rejected: x.rejected, snapshot: x.snapshot, sent: x.sent,
          }))),
          documents.raise('event', rows.map((x) => x.nid)),
        ]);
        await documents.upsert('dump.write.eid', rows.map((x) => ({ id: 'eid', pk: pk('eid', x.eventID), k: 'event_id', eventID: x.eventID, nid: x.nid, room: x.room })));
        await documents.upsert('dump.write.event', rows.map((x) => roomEvents.eventDoc({
          eventID: x.eventID, nid: x.nid as EventNID, room: x.room as RoomNID, type: x.type as EventTypeNID, key: x.key as EventStateKeyNID,
          rejected: x.rejected, snapshot: x.snapshot as StateSnapshotNID,
        })));
      },
      // The room's document first (the commit point: only while it names this NID), then the locator, then the row.
      delete: async (rows) => {
        await documents.removeOwned<{ nid: number }>('dump.delete.event', rows.map((x) => ({ ref: roomEvents.eventRef(x.room, x.eventID), owned: (d) => d.nid === x.nid })));
        await documents.removeOwned<{ nid: number }>('dump.delete.eid', rows.map((x) => ({ ref: { id: 'eid', pk: pk('eid', x.eventID) }, owned: (d) => d.nid === x.nid })));
        eventsTable.forgetEvents?.(rows.map((x) => x.eventID));
        await documents.remove('dump.delete.event', rows.map((x) => ({ id: 'row', pk: pk('ev', x.nid) })));
      },
    },

    // A set document per previous event ID, in the room's partition (the input path's) or its own (the table's
    // calls'); its rows are (ID, NID) pairs. A set's rows may come over several pages. Loads go to the latter.
    // Then the references stored events keep in their own documents (RoomEventDoc.prev): a second phase.
    previous_events: {
      count: async () => (await documents.sum('pe', 'SUM(ARRAY_LENGTH(c["values"]))')) + (await documents.sum(ROOM_EVENT_KIND, 'SUM(ARRAY_LENGTH(c.prev))', EMBEDDED_REFERENCES)),
      read: async (cursor, limit) => {
        const at = cursor === undefined ? { phase: 0 } : phasedCursor(cursor);
        if (at.phase === 0) {
          const page = await documents.grouped<DumpRows['previous_events']>({
            kind: 'pe',
            rowsOf: async (docs) => {
              const prevs = await documents.previousIDsOf(docs);
              return docs.map((d, i) => (d.values as number[]).map((nid) => ({ prev: prevs[i]!, nid })));
            },
          }, at.inner, limit);
          return { rows: page.rows, next: JSON.stringify(page.next === undefined ? { phase: 1 } : { phase: 0, inner: page.next }) };
        }
        const page = await documents.grouped<DumpRows['previous_events']>({
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
        await documents.upsert('dump.write.pe', ids.map((id, i) => ({
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
          if (room !== undefined) add(roomEvents.referenceRef(room, x.prev), x.nid);
          const event = eventOf.get(x.nid);
          if (event) {
            const entry = naming.get(x.nid) ?? { ref: roomEvents.eventRef(event.room, event.eventID), prevs: new Set<string>() };
            entry.prevs.add(x.prev);
            naming.set(x.nid, entry);
          }
        }
        await documents.editLists('dump.delete.pe', [
          ...[...byRef.values()].map(({ ref, nids }) => ({ ref, change: (doc: Stored) => listWithout(doc, 'values', (v) => nids.has(v as number)) })),
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
      count: () => documents.sum('redaction'),
      read: (cursor, limit) => documents.grouped<DumpRows['redactions']>({
        kind: 'redaction',
        rowsOf: async (docs) => {
          const nids = await documents.eventNIDsOf('redaction', docs.filter((d) => typeof d.seq !== 'number').map((d) => String(d.redactionEventID)));
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
          const legacy = await documents.eventNIDsOf('redaction', others.filter((_, i) => docs[i] && docs[i]!.seq === undefined));
          // A listed ID without its document is a write that never finished: it is left out.
          others.forEach((id, i) => { if (docs[i]) seqs.set(id, docs[i]!.seq ?? legacy.get(id)!); });
        }
        const byTarget = new Map(targets.map((t, i) => [t, (lists[i]?.values ?? []).map(String)]));
        for (const x of rows) byTarget.get(x.redacts)!.push(x.id);
        // The lists first, the redaction documents last, as the driver writes them.
        await Promise.all([
          documents.upsert('dump.write.redt', targets.map((t) => ({
            id: 'redt', pk: pk('redt', t), k: 'redt', key: t,
            values: unique(byTarget.get(t)!).filter((id) => seqs.has(id)).sort((a, b) => seqs.get(a)! - seqs.get(b)!),
          }))),
          documents.raise('event', rows.map((x) => x.seq)),
        ]);
        await documents.upsert('dump.write.red', rows.map((x) => ({
          id: 'red', pk: pk('red', x.id), k: 'redaction', redactionEventID: x.id, redactsEventID: x.redacts, validated: x.validated, seq: x.seq,
        })));
      },
      // The redaction document first (what commits it), then its entry in the target's list.
      delete: async (rows) => {
        await documents.remove('dump.delete.red', rows.map((x) => ({ id: 'red', pk: pk('red', x.id) })));
        const byTarget = new Map<string, Set<string>>();
        for (const x of rows) byTarget.set(x.redacts, (byTarget.get(x.redacts) ?? new Set()).add(x.id));
        await documents.editLists('dump.delete.redt', [...byTarget].map(([target, ids]) => ({
          ref: { id: 'redt', pk: pk('redt', target) }, change: (doc) => listWithout(doc, 'values', (v) => ids.has(String(v))),
        })));
      },
    },

    // A list document per (room, user); its rows are the invites in it. The ID's claim (`invid`) is derived.
    invites: {
      count: () => documents.sum('invites', 'SUM(ARRAY_LENGTH(c.invites))'),
      read: (cursor, limit) => documents.grouped<DumpRows['invites']>({
        kind: 'invites',
        rowsOf: async (docs) => {
          const lists = docs.map((d) => d.invites as StoredInvite[]);
          const nids = await documents.eventNIDsOf('invite', lists.flat().filter((i) => typeof i.seq !== 'number').map((i) => i.id));
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
          documents.upsert('dump.write.invid', rows.map((x) => ({ id: 'invid', pk: pk('invid', x.id), k: 'invite_id', room: x.room, target: x.target }))),
          documents.raise('event', rows.map((x) => x.seq)),
        ]);
        const stored = all.map((l, i) => (existing[i]?.invites ?? []).filter((inv) => !l.rows.some((x) => x.id === inv.id)));
        const legacy = await documents.eventNIDsOf('invite', stored.flat().filter((i) => typeof i.seq !== 'number').map((i) => i.id));
        await documents.upsert('dump.write.inv', all.map((l, i) => {
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
          documents.editLists('dump.delete.inv', [...lists.values()].map((l) => ({
            ref: { id: `inv|${l.target}`, pk: pk('room', l.room) },
            change: (doc) => listWithout(doc, 'invites', (i) => l.ids.has((i as StoredInvite).id)),
          }))),
          r.readMany<{ room: number; target: number }>('dump.delete.invid', rows.map(claimRef)),
        ]);
        await documents.remove('dump.delete.invid', rows.filter((x, i) => claims[i]?.room === x.room && claims[i]?.target === x.target).map(claimRef));
      },
    },

    // The membership document in the room's partition is the row; the user's mirror (`rm|<room>`) is derived.
    membership: {
      count: () => documents.sum('membership'),
      read: (cursor, limit) => documents.grouped<DumpRows['membership']>({
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
        await documents.upsert('dump.write.membership', rows.map((x) => ({
          id: `m|${x.target}`, pk: pk('room', x.room), k: 'membership', room: x.room, target: x.target, userID: userIDs.get(x.target) ?? null,
          sender: x.sender, membership: x.membership, eventNID: x.event, local: x.local, forgotten: x.forgotten,
        })));
        await documents.upsert('dump.write.mirror', rows.map((x) => ({
          id: `rm|${x.room}`, pk: pk('user', x.target), k: 'user_room', room: x.room, target: x.target, membership: x.membership, forgotten: x.forgotten,
        })));
      },
      // The document in the room's partition, then its mirror in the user's.
      delete: async (rows) => {
        await documents.remove('dump.delete.membership', rows.map((x) => ({ id: `m|${x.target}`, pk: pk('room', x.room) })));
        await documents.remove('dump.delete.mirror', rows.map((x) => ({ id: `rm|${x.room}`, pk: pk('user', x.target) })));
      },
    },

    transactions: documents.documentPerRowTable<DumpRows['transactions']>({
      kind: 'transaction',
      rowsOf: async (docs) => (await documents.userIDsOf(docs, 'userID', 'txn', 1, 0)).map((userID, n) => {
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
      count: () => documents.sum('room_id'),
      read: async (cursor, limit) => {
        const { docs, next } = await documents.byNumber<Stored & { roomNID: number; roomID: string }>('room_id', 'roomNID', cursor, limit);
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
          documents.raise('room', rows.map((x) => x.nid)),
        ]);
        const blocks = new Map(withState.map((x, i) => [x.nid, snapshots[i]?.blocks]));
        await Promise.all([
          documents.upsert('dump.write.room', rows.map((x) => {
            const list = blocks.get(x.nid);
            return {
              id: 'room', pk: pk('room', x.nid), k: 'room', roomNID: x.nid, roomID: x.roomID, version: x.version, latest: [...x.latest],
              lastSent: x.lastSent, snapshot: x.snapshot, appending: [], claimedUntil: null,
              ...(list ? { snapshotBlocks: { nid: x.snapshot, blocks: [...list] } } : {}),
            };
          })),
          documents.upsert('dump.write.room', rows.map((x) => ({ id: String(x.nid), pk: pk('rooms'), k: 'room_list', roomNID: x.nid, roomID: x.roomID }))),
        ]);
        await documents.upsert('dump.write.rid', rows.map((x) => ({ id: 'rid', pk: pk('rid', x.roomID), k: 'room_id', roomID: x.roomID, roomNID: x.nid })));
      },
      // The ID document first (the commit point, keyed by the room ID a new room may take again: only while it
      // names this NID), then the room document and the room's entry in the room list.
      delete: async (rows) => {
        await documents.removeOwned<{ roomNID: number }>('dump.delete.rid', rows.map((x) => ({ ref: { id: 'rid', pk: pk('rid', x.roomID) }, owned: (d) => d.roomNID === x.nid })));
        roomsTable.forgetRooms?.(rows.map((x) => x.nid));
        await documents.remove('dump.delete.room', rows.flatMap((x) => [{ id: 'room', pk: pk('room', x.nid) }, { id: String(x.nid), pk: pk('rooms') }]));
      },
    },

    // Aliases are listed per room by their `seq` (insertion order), which a dump does not carry: a copied alias
    // keeps the seq it has, and new ones take fresh values of the order counter, in the order written.
    room_aliases: {
      count: () => documents.sum('alias'),
      read: (cursor, limit) => documents.grouped<DumpRows['room_aliases']>({
        kind: 'alias',
        rowsOf: (docs) => docs.map((d) => [{ alias: String(d.alias), roomID: String(d.roomID), creator: String(d.creator) }]),
      }, cursor, limit),
      write: async (rows) => {
        const existing = await r.readMany<{ seq: number }>('dump.write.alias', rows.map((x) => ({ id: docId(x.alias), pk: pk('aliases') })));
        const fresh = existing.filter((d) => d === undefined).length;
        let next = fresh > 0 ? await conn.sequence('order').nextRange(fresh) : 0;
        await documents.upsert('dump.write.alias', rows.map((x, i) => ({
          id: docId(x.alias), pk: pk('aliases'), k: 'alias', alias: x.alias, roomID: x.roomID, creator: x.creator, seq: existing[i]?.seq ?? next++,
        })));
      },
      delete: (rows) => documents.remove('dump.delete.alias', rows.map((x) => ({ id: docId(x.alias), pk: pk('aliases') }))),
    },
    // Documents written before the directory had networks carry no appservice or network: the server's own list.
    published: documents.documentPerRowTable<DumpRows['published']>({
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
    reported_events: documents.documentPerRowTable<DumpRows['reported_events']>({
      kind: 'report',
      rowsOf: (docs) => docs.map((d) => [{
        id: d.reportID as number, room: d.roomNID as number, event: d.eventNID as number, reporter: d.reportingUserNID as number,
        sender: d.eventSenderNID as number, reason: String(d.reason), score: d.score as number, receivedTS: d.receivedTS as number,
      }]),
      toDoc: (x) => ({
        id: String(x.id), pk: pk('reports'), k: 'report', reportID: x.id, roomNID: x.room, eventNID: x.event, reportingUserNID: x.reporter,
        eventSenderNID: x.sender, reason: x.reason, score: x.score, receivedTS: x.receivedTS,
      }),
      after: (rows) => documents.raise('order', rows.map((x) => x.id)),
    }),
    user_room_keys: documents.documentPerRowTable<DumpRows['user_room_keys']>({
      kind: 'urk',
      rowsOf: (docs) => docs.map((d) => [{
        user: d.userNID as number, room: d.roomNID as number, privateKey: typeof d.priv === 'string' ? d.priv : null, publicKey: String(d.pub),
      }]),
      toDoc: (x) => ({
        id: `u|${x.user}`, pk: pk('urk', x.room), k: 'urk', userNID: x.user, roomNID: x.room, pub: x.publicKey,
        ...(x.privateKey !== null ? { priv: x.privateKey } : {}),
      }),
    }),
  };
}

import type { RoomContents, Storage } from '../index.js';
import { MembershipState } from '../types/membership.js';
import { NotFoundError } from '../types/errors.js';
import { encodeBlockList, encodeStateBlock } from '../storage/shared/state-codec.js';
import type { StateEntry } from '../types/state.js';
import { rowsOf } from './dump-rows.js';
import { dumpOf } from './copy.js';
import { NIDMap } from './nid-sets.js';

/**
 * `matrix-storage rooms`: what each room takes, from one read of the store's tables (through the dump, the same on
 * every driver); `room` reads one room's own rows instead (roomDetail, below). Each row is counted for exactly one
 * room: events and their JSON by the event's room, snapshots by their room, state blocks by the room of the events
 * they hold (a block holds events of one room; blocks no snapshot names, which stores written before schema version
 * 8 may hold on Cosmos DB, still belong to the room). What no room claims is reported as unattributed, so that the
 * rooms add up to the store's totals.
 *
 * Bytes are the payload as the SQL drivers store it: the event JSON in UTF-8, each state block in its binary
 * encoding (src/storage/shared/state-codec.ts), a snapshot's block list in its binary encoding; indexes and per-row overhead
 * aside (`storage.stats.collect().totalBytes` is the engine's own total). Cosmos DB keeps the same content in JSON
 * documents, somewhat larger.
 */
/**
 * One room's size: what the room server counts of it (RoomContents; its state entries are those of its state
 * blocks, what the state model costs), with its current state's entries and the bytes in all.
 */
export interface RoomSize extends Omit<RoomContents, 'roomNID' | 'rowsRead'> {
  readonly roomNID: number;
  /** Entries of the room's current state. */
  readonly currentState: number;
  /** jsonBytes + stateBytes. */
  readonly bytes: number;
}

export interface SizeTotals {
  readonly events: number;
  readonly stateEntries: number;
  readonly stateBlocks: number;
  readonly stateSnapshots: number;
  readonly jsonBytes: number;
  readonly stateBytes: number;
  readonly bytes: number;
}

export interface StoreSizes {
  readonly rooms: readonly RoomSize[];
  /** Every row of the store, whether a room claims it or not. */
  readonly totals: SizeTotals;
  /** What no room claims (rows naming a room that is not stored, blocks no snapshot names): zero in a whole store. */
  readonly unattributed: SizeTotals;
  /** The engine's own figure for the whole store (on disk for SQL engines), where it can tell. */
  readonly storeBytes: number | undefined;
}

export type RoomSort = 'bytes' | 'events' | 'members';
export const ROOM_SORTS: readonly RoomSort[] = ['bytes', 'events', 'members'];

interface Tally { events: number; stateEntries: number; stateBlocks: number; stateSnapshots: number; jsonBytes: number; stateBytes: number; joined: number }
const emptyTally = (): Tally => ({ events: 0, stateEntries: 0, stateBlocks: 0, stateSnapshots: 0, jsonBytes: 0, stateBytes: 0, joined: 0 });
const totalsOf = (t: Tally): SizeTotals => ({
  events: t.events, stateEntries: t.stateEntries, stateBlocks: t.stateBlocks, stateSnapshots: t.stateSnapshots,
  jsonBytes: t.jsonBytes, stateBytes: t.stateBytes, bytes: t.jsonBytes + t.stateBytes,
});

/** Sizes of every room, from one read of every table, sorted by `sort`, largest first (`room` reads one room: roomDetail). */
export async function storeSizes(storage: Storage, options: { sort?: RoomSort } = {}): Promise<StoreSizes> {
  const dump = dumpOf(storage, 'store');
  const rooms = new Map<number, { roomID: string; version: string; tally: Tally }>();
  for await (const r of rowsOf(dump, 'rooms')) {
    rooms.set(r.nid, { roomID: r.roomID, version: r.version, tally: emptyTally() });
  }
  const all = emptyTally();
  const none = emptyTally();
  const tallyOf = (roomNID: number) => rooms.get(roomNID)?.tally ?? none;

  const roomOfEvent = new NIDMap();
  for await (const e of rowsOf(dump, 'events')) {
    roomOfEvent.set(e.nid, e.room);
    all.events++;
    const t = tallyOf(e.room);
    if (t) t.events++;
  }
  for await (const j of rowsOf(dump, 'event_json')) {
    const bytes = Buffer.byteLength(j.json, 'utf8');
    all.jsonBytes += bytes;
    const t = tallyOf(roomOfEvent.get(j.nid));
    if (t) t.jsonBytes += bytes;
  }
  for await (const s of rowsOf(dump, 'state_snapshots')) {
    const bytes = encodeBlockList(s.blocks).length;
    all.stateSnapshots++;
    all.stateBytes += bytes;
    const t = tallyOf(s.room);
    if (t) { t.stateSnapshots++; t.stateBytes += bytes; }
  }
  for await (const b of rowsOf(dump, 'state_blocks')) {
    const bytes = encodeStateBlock(b.entries.map(([t, k, e]) => ({ eventTypeNID: t, eventStateKeyNID: k, eventNID: e }) as StateEntry)).bytes.length;
    all.stateBlocks++;
    all.stateEntries += b.entries.length;
    all.stateBytes += bytes;
    // The empty block is every room's empty state and no room's own: counted in the totals, never as unattributed.
    const t = b.entries.length > 0 ? tallyOf(roomOfEvent.get(b.entries[0]![2])) : undefined;
    if (t) { t.stateBlocks++; t.stateEntries += b.entries.length; t.stateBytes += bytes; }
  }
  for await (const m of rowsOf(dump, 'membership')) {
    if (m.membership === MembershipState.join) {
      const t = rooms.get(m.room)?.tally;
      if (t) t.joined++;
    }
  }

  const out: RoomSize[] = [];
  for (const [roomNID, { roomID, version, tally }] of rooms) {
    out.push({
      roomID, roomNID, version, events: tally.events, currentState: (await storage.roomserver.currentState(roomID)).length,
      stateEntries: tally.stateEntries, stateBlocks: tally.stateBlocks, stateSnapshots: tally.stateSnapshots, joinedMembers: tally.joined,
      jsonBytes: tally.jsonBytes, stateBytes: tally.stateBytes, bytes: tally.jsonBytes + tally.stateBytes,
    });
  }
  const key = { bytes: (r: RoomSize) => r.bytes, events: (r: RoomSize) => r.events, members: (r: RoomSize) => r.joinedMembers }[options.sort ?? 'bytes'];
  out.sort((a, b) => key(b) - key(a) || (a.roomID < b.roomID ? -1 : 1));
  return { rooms: out, totals: totalsOf(all), unattributed: totalsOf(none), storeBytes: (await storage.stats.collect()).totalBytes };
}

/** One room in detail: its sizes, its forward extremities (latest events, with depth) and its create event's version. */
export interface RoomDetail extends RoomSize {
  readonly latestEvents: readonly { readonly eventID: string; readonly depth: number }[];
  /** What the room's create event declares (content.room_version, "1" when absent), or null if it is not stored. */
  readonly createEventVersion: string | null;
  readonly createEventID: string | null;
}

/**
 * One room from its own rows (RoomserverDatabase.roomContents: by index or partition, never every table), with its
 * current state, latest events and create event. `rowsRead` counts the rows read for it: the room's rows and, for
 * the current state, at most its current snapshot and that snapshot's blocks.
 */
export async function roomDetail(storage: Storage, roomID: string): Promise<RoomDetail & { readonly rowsRead: number }> {
  const db = storage.roomserver;
  const info = await db.roomInfo(roomID);
  if (!info) throw new NotFoundError(`room ${roomID} is not in this store`);
  const { rowsRead, ...contents } = await db.roomContents(roomID);
  const currentState = (await db.currentState(roomID)).length;
  const current = info.stateSnapshotNID === 0 ? [] : await db.stateBlockNIDs([info.stateSnapshotNID]);
  const latest = await db.latestEventIDs(info.roomNID);
  const latestEvents = await db.events([...(await db.eventNIDs(latest.eventIDs)).values()]);
  const create = info.isStub ? null : await db.getStateEvent(roomID, 'm.room.create', '');
  const declared = create ? (JSON.parse(create.event.json) as { content?: { room_version?: unknown } }).content?.room_version : undefined;
  return {
    ...contents, roomID, currentState, bytes: contents.jsonBytes + contents.stateBytes,
    latestEvents: latestEvents.map((e) => ({ eventID: e.event.eventID, depth: e.event.depth })),
    createEventVersion: create ? String(declared ?? '1') : null,
    createEventID: create ? create.event.eventID : null,
    rowsRead: rowsRead + (current[0] ? 1 + current[0].stateBlockNIDs.length : 0) + latestEvents.length,
  };
}

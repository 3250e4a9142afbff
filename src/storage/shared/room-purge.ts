import { ConcurrentUpdateError, InvalidInputError, NotFoundError, PurgeRefusedError, RoomBeingWrittenError } from '../../types/errors.js';
import { EMPTY_STATE_KEY_NID, EventTypes, type RoomNID } from '../../types/nids.js';
import { MembershipState } from '../../types/membership.js';
import type { StateEntry } from '../../types/state.js';
import type { DumpRows, DumpTableName } from '../tables/dump.js';
import type { RoomScopeTable, RoomserverTables, Tx } from '../tables/index.js';
import { ROOM_CLAIM_MS } from './append-writer.js';
import { encodeBlockList, encodeStateBlock } from './state-codec.js';

/**
 * Purging a room, or the older part of its history, and measuring one room: Database operations over the room's
 * own rows (RoomScopeTable: by index on SQL, by the room's partition or an indexed query on Cosmos DB), never a
 * read of every table.
 *
 * A purge holds the room as the input path does: on SQL the room's row lock (selectLatestEventsNIDsForUpdate) for
 * one transaction that reads and deletes, so an append of the room waits for the purge or the purge for it; on
 * Cosmos DB the room's claim (claimRoom), renewed while the purge runs, which appenders wait for; while another
 * writer holds the claim the purge refuses with RoomBeingWrittenError rather than wait.
 *
 * Deletes go table by table in an order that is safe to interrupt where nothing rolls back (Cosmos DB): what is
 * found through another row goes before that row (an event's JSON, references and redactions before the event;
 * state blocks, found through snapshots, before the snapshots; the room row, through which a re-run finds
 * everything, last). Run again after a crash, a purge finds what is left and finishes.
 *
 * Which state goes with the room: the snapshots stored for it that no other room's event or row names (the empty
 * state, before every create event, is one snapshot shared by all rooms, and stays), and the blocks those name that
 * no snapshot staying in the room names and that hold only the room's events (a block holding another room's event
 * could be that room's state).
 */

/** Rows deleted per table. */
export type DeletedRows = Partial<Record<DumpTableName, number>>;

export interface RoomPurgeOptions {
  /** Called as each table's deletes begin: the table, and how many of its rows go. */
  readonly onTable?: (table: DumpTableName, rows: number) => void;
}

export interface RoomPurgeResult {
  readonly roomID: string;
  readonly roomNID: RoomNID;
  readonly deleted: DeletedRows;
  readonly rowsDeleted: number;
  /** Events kept (purgeHistory): those after the cut, and the older ones the room still needs. */
  readonly eventsKept?: number;
  /** Rows the purge read (RoomScopeTable.rowsRead over the call). */
  readonly rowsRead: number;
}

/** Where purgeHistory cuts: the events stored before this event, or those sent before this time. */
export type HistoryCut = { readonly beforeEventID: string } | { readonly beforeTimestamp: number };

/** What one room holds, counted from its own rows (see RoomScopeTable). */
export interface RoomContents {
  readonly roomID: string;
  readonly roomNID: RoomNID;
  readonly version: string;
  readonly events: number;
  /** Entries of the state blocks the room's snapshots name. */
  readonly stateEntries: number;
  readonly stateBlocks: number;
  readonly stateSnapshots: number;
  readonly joinedMembers: number;
  /** The event JSON in UTF-8. */
  readonly jsonBytes: number;
  /** The state blocks and snapshot block lists in their binary encodings (state-codec.ts). */
  readonly stateBytes: number;
  readonly rowsRead: number;
}

/** The room held for a purge: the claim renewed while it runs, released at the end (Cosmos DB; nothing on SQL). */
interface Hold {
  renew(): Promise<void>;
  release(): Promise<void>;
}

const NO_CLAIM: Hold = { renew: async () => {}, release: async () => {} };

type Step = { [K in DumpTableName]: readonly [K, () => Promise<readonly DumpRows[K][]> | readonly DumpRows[K][]] }[DumpTableName];
const step = <K extends DumpTableName>(name: K, rows: () => Promise<readonly DumpRows[K][]> | readonly DumpRows[K][]) => [name, rows] as Step;

export class RoomPurger {
  constructor(
    private readonly tables: RoomserverTables,
    private readonly scope: RoomScopeTable,
    /** A transaction (SQL) or the context a sequence runs in (Cosmos DB), as the Database's other writes take it. */
    private readonly transaction: <T>(fn: (tx: Tx) => Promise<T>) => Promise<T>,
    private readonly autocommit: () => Tx,
  ) {}

  /** Deletes every trace of the room: events, JSON, state no other room uses, memberships, invites, aliases, ... */
  purgeRoom(roomID: string, options: RoomPurgeOptions = {}): Promise<RoomPurgeResult> {
    return this.underLock(roomID, async (tx, room, hold) => {
      const s = this.scope;
      const events = await s.events(tx, room.nid);
      const roomEvents = new Set(events.map((e) => e.nid));
      const ids = events.map((e) => e.eventID);
      const nids = [...roomEvents];
      const snapshots = await s.snapshots(tx, room.nid);
      const shared = await s.snapshotsNamedOutside(tx, room.nid, snapshots.map((x) => x.nid));
      const dropped = snapshots.filter((x) => !shared.has(x.nid));
      const blocks = await this.blocksToDelete(tx, dropped, snapshots.filter((x) => shared.has(x.nid)), roomEvents);
      const deleted = await this.run(tx, hold, options, [
        step('room_aliases', () => s.aliases(tx, roomID)),
        step('published', () => s.published(tx, roomID)),
        step('reported_events', () => s.reportedEvents(tx, room.nid)),
        step('user_room_keys', () => s.userRoomKeys(tx, room.nid)),
        step('invites', () => s.invites(tx, room.nid)),
        step('membership', () => s.memberships(tx, room.nid)),
        step('redactions', () => s.redactions(tx, ids)),
        step('transactions', () => s.transactions(tx, ids)),
        step('previous_events', () => s.previousEvents(tx, nids)),
        // Deleted by key: the JSON itself need not be read.
        step('event_json', () => nids.map((nid) => ({ nid, json: '' }))),
        step('events', () => events),
        step('state_blocks', () => blocks),
        step('state_snapshots', () => dropped),
        step('rooms', () => [room]),
      ]);
      return { deleted };
    });
  }

  /**
   * Deletes the room's events before the cut, keeping what the room still needs: the latest events, the create
   * event, the current state, and, for every event kept, the state before it (its snapshot, the snapshot's blocks
   * and the state events they name) and its auth events, to a fixed point; the events of the memberships and active
   * invites too. So `state` answers for every kept event and the store passes `check`. "Before an event" is before
   * it in the room's stored order (event NIDs grow as events are stored).
   */
  purgeHistory(roomID: string, cut: HistoryCut, options: RoomPurgeOptions = {}): Promise<RoomPurgeResult> {
    if ('beforeTimestamp' in cut && (!Number.isSafeInteger(cut.beforeTimestamp) || cut.beforeTimestamp < 0)) {
      return Promise.reject(new InvalidInputError(`a cut time must be milliseconds since 1970, got ${cut.beforeTimestamp}`));
    }
    return this.underLock(roomID, async (tx, room, hold) => {
      const s = this.scope;
      const events = new Map((await s.events(tx, room.nid)).map((e) => [e.nid, e]));
      const before = await this.olderEvents(tx, events, cut);
      const keep = new Set<number>();
      const work: number[] = [];
      const need = (nid: number) => {
        if (nid !== 0 && events.has(nid) && !keep.has(nid)) { keep.add(nid); work.push(nid); }
      };
      for (const nid of events.keys()) if (!before.has(nid)) need(nid);
      for (const nid of room.latest) need(nid);
      for (const e of events.values()) if (e.type === EventTypes.create && e.key === EMPTY_STATE_KEY_NID) need(e.nid);
      for (const m of await s.memberships(tx, room.nid)) need(m.event);
      const invites = await s.invites(tx, room.nid);
      const activeInvites = new Set(invites.filter((i) => !i.retired).map((i) => i.id));
      for (const e of events.values()) if (activeInvites.has(e.eventID)) need(e.nid);

      // The room's state, read once: snapshot -> blocks -> the events they name.
      const snapshots = new Map((await s.snapshots(tx, room.nid)).map((x) => [x.nid, x]));
      const blocks = new Map((await s.blocks(tx, [...snapshots.values()].flatMap((x) => x.blocks))).map((b) => [b.nid, b]));
      const keptSnapshots = new Set<number>();
      const needSnapshot = (nid: number) => {
        if (nid === 0 || keptSnapshots.has(nid)) return;
        keptSnapshots.add(nid);
        for (const block of snapshots.get(nid)?.blocks ?? []) for (const entry of blocks.get(block)?.entries ?? []) need(entry[2]);
      };
      needSnapshot(room.snapshot);
      while (work.length > 0) {
        const e = events.get(work.pop()!)!;
        needSnapshot(e.snapshot);
        for (const auth of e.auth) need(auth);
      }

      const gone = [...events.values()].filter((e) => !keep.has(e.nid));
      const goneIDs = new Set(gone.map((e) => e.eventID));
      const goneNIDs = gone.map((e) => e.nid);
      const candidates = [...snapshots.values()].filter((x) => !keptSnapshots.has(x.nid));
      const shared = await s.snapshotsNamedOutside(tx, room.nid, candidates.map((x) => x.nid));
      const dropped = candidates.filter((x) => !shared.has(x.nid));
      const droppedNIDs = new Set(dropped.map((x) => x.nid));
      const staying = [...snapshots.values()].filter((x) => !droppedNIDs.has(x.nid));
      const doomedBlocks = this.doomedBlocks(dropped, staying, new Set(events.keys()), (nids) => nids.map((nid) => blocks.get(nid)!).filter(Boolean));
      const deleted = await this.run(tx, hold, options, [
        step('redactions', () => s.redactions(tx, [...goneIDs])),
        step('transactions', () => s.transactions(tx, [...goneIDs])),
        step('invites', () => invites.filter((i) => goneIDs.has(i.id))),
        step('previous_events', () => s.previousEvents(tx, goneNIDs)),
        step('event_json', () => goneNIDs.map((nid) => ({ nid, json: '' }))),
        step('events', () => gone),
        step('state_blocks', () => doomedBlocks),
        step('state_snapshots', () => dropped),
      ]);
      return { deleted, eventsKept: events.size - gone.length };
    });
  }

  /** The room's sizes, from its own rows. NotFoundError if the room is not stored. */
  async contents(roomID: string): Promise<RoomContents> {
    const s = this.scope;
    const tx = this.autocommit();
    const readBefore = s.rowsRead;
    const room = await s.room(tx, roomID);
    if (!room) throw new NotFoundError(`room ${roomID} is not in this store`);
    const events = await s.events(tx, room.nid);
    const [json, snapshots, memberships] = await Promise.all([
      s.eventJSON(tx, events.map((e) => e.nid)), s.snapshots(tx, room.nid), s.memberships(tx, room.nid),
    ]);
    const blocks = await s.blocks(tx, snapshots.flatMap((x) => x.blocks));
    const blockBytes = blocks.reduce((n, b) => n + encodeStateBlock(b.entries.map(([t, k, e]) => ({ eventTypeNID: t, eventStateKeyNID: k, eventNID: e }) as StateEntry)).bytes.length, 0);
    return {
      roomID, roomNID: room.nid as RoomNID, version: room.version,
      events: events.length,
      stateEntries: blocks.reduce((n, b) => n + b.entries.length, 0),
      stateBlocks: blocks.length,
      stateSnapshots: snapshots.length,
      joinedMembers: memberships.filter((m) => m.membership === MembershipState.join).length,
      jsonBytes: json.reduce((n, j) => n + Buffer.byteLength(j.json, 'utf8'), 0),
      stateBytes: blockBytes + snapshots.reduce((n, x) => n + encodeBlockList(x.blocks).length, 0),
      rowsRead: s.rowsRead - readBefore,
    };
  }

  /** Finds the room, holds it, runs `purge`, and releases what is left of the hold (the room row may be gone). */
  private async underLock(
    roomID: string,
    purge: (tx: Tx, room: DumpRows['rooms'], hold: Hold) => Promise<{ deleted: DeletedRows; eventsKept?: number }>,
  ): Promise<RoomPurgeResult> {
    const readBefore = this.scope.rowsRead;
    const result = await this.transaction(async (tx) => {
      const found = await this.scope.room(tx, roomID);
      if (!found) throw new NotFoundError(`room ${roomID} is not in this store`);
      const hold = await this.hold(tx, found.nid as RoomNID);
      try {
        // Read again once held: a writer that held the room before may have moved its latest events and state.
        const room = await this.scope.room(tx, roomID);
        if (!room) throw new NotFoundError(`room ${roomID} is not in this store`);
        if (room.nid !== found.nid) throw new ConcurrentUpdateError(`room ${roomID} was purged and stored again while this purge started: run it again`);
        const done = await purge(tx, room, hold);
        if (done.deleted.rooms === undefined) await hold.release();
        return { room, ...done };
      } catch (e) {
        // Best effort: let the room's writers in at once rather than when the claim runs out.
        await hold.release().catch(() => {});
        throw e;
      }
    });
    const { room, deleted, eventsKept } = result;
    return {
      roomID, roomNID: room.nid as RoomNID, deleted, rowsDeleted: Object.values(deleted).reduce((n, c) => n + (c ?? 0), 0),
      ...(eventsKept !== undefined ? { eventsKept } : {}), rowsRead: this.scope.rowsRead - readBefore,
    };
  }

  /**
   * Holds the room as the input path does. SQL: the row lock, until the transaction ends. Cosmos DB: the claim
   * (refused while another writer's claim runs), which the input path waits for; taken again should the room move
   * between the read and the claim, at most three times.
   */
  private async hold(tx: Tx, roomNID: RoomNID): Promise<Hold> {
    const rooms = this.tables.rooms;
    for (let attempt = 1; ; attempt++) {
      const held = await rooms.selectLatestEventsNIDsForUpdate(tx, roomNID);
      if (!rooms.claimRoom) return NO_CLAIM;
      const now = Date.now();
      if ((held.claimedUntil ?? 0) > now) {
        throw new RoomBeingWrittenError(`room NID ${roomNID} is being written by another writer until ` +
          `${new Date(held.claimedUntil!).toISOString()}: nothing was purged; run the purge again once the room is quiet`, held.claimedUntil!);
      }
      let until = now + ROOM_CLAIM_MS;
      let version: string;
      try {
        version = await rooms.claimRoom(tx, roomNID, held.appending ?? [], until, held.version);
      } catch (e) {
        if (e instanceof ConcurrentUpdateError && attempt < 3) continue;
        if (e instanceof ConcurrentUpdateError) throw new RoomBeingWrittenError(`room NID ${roomNID} is being written by another writer: ${e.message}`, now);
        throw e;
      }
      const appending = held.appending ?? [];
      return {
        renew: async () => {
          if (until - Date.now() > ROOM_CLAIM_MS / 2) return;
          until = Date.now() + ROOM_CLAIM_MS;
          version = await rooms.claimRoom!(tx, roomNID, appending, until, version);
        },
        release: async () => { await rooms.releaseRoom?.(tx, roomNID, version); },
      };
    }
  }

  /** The room's events before the cut. */
  private async olderEvents(tx: Tx, events: ReadonlyMap<number, DumpRows['events']>, cut: HistoryCut): Promise<Set<number>> {
    if ('beforeEventID' in cut) {
      const at = [...events.values()].find((e) => e.eventID === cut.beforeEventID);
      if (!at) throw new PurgeRefusedError(`event ${cut.beforeEventID} is not an event of this room`);
      return new Set([...events.keys()].filter((nid) => nid < at.nid));
    }
    const older = new Set<number>();
    for (const j of await this.scope.eventJSON(tx, [...events.keys()])) {
      const ts = (JSON.parse(j.json) as { origin_server_ts?: unknown }).origin_server_ts;
      if (typeof ts === 'number' && ts < cut.beforeTimestamp) older.add(j.nid);
    }
    return older;
  }

  /** The blocks that go with `dropped` snapshots (see the top of this file), read from the store. */
  private async blocksToDelete(tx: Tx, dropped: readonly DumpRows['state_snapshots'][], staying: readonly DumpRows['state_snapshots'][],
    roomEvents: ReadonlySet<number>): Promise<DumpRows['state_blocks'][]> {
    const read = await this.scope.blocks(tx, this.candidateBlocks(dropped, staying));
    return this.doomedBlocks(dropped, staying, roomEvents, () => read);
  }

  private candidateBlocks(dropped: readonly DumpRows['state_snapshots'][], staying: readonly DumpRows['state_snapshots'][]): number[] {
    const kept = new Set(staying.flatMap((x) => x.blocks));
    return [...new Set(dropped.flatMap((x) => x.blocks))].filter((nid) => !kept.has(nid));
  }

  private doomedBlocks(dropped: readonly DumpRows['state_snapshots'][], staying: readonly DumpRows['state_snapshots'][], roomEvents: ReadonlySet<number>,
    rowsOf: (nids: number[]) => readonly DumpRows['state_blocks'][]): DumpRows['state_blocks'][] {
    return rowsOf(this.candidateBlocks(dropped, staying)).filter((b) => b.entries.length > 0 && b.entries.every((x) => roomEvents.has(x[2])));
  }

  /** Each step's rows, then their deletes, in order; the hold renewed between steps. */
  private async run(tx: Tx, hold: Hold, options: RoomPurgeOptions, steps: readonly Step[]): Promise<DeletedRows> {
    const deleted: DeletedRows = {};
    for (const [name, rowsOf] of steps) {
      const rows = await rowsOf();
      options.onTable?.(name, rows.length);
      for (let i = 0; i < rows.length; i += PAGE) {
        await hold.renew();
        await this.scope.delete(tx, name, rows.slice(i, i + PAGE) as never);
      }
      deleted[name] = rows.length;
    }
    return deleted;
  }
}

const PAGE = 500;

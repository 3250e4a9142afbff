import { expect } from 'chai';
import type { Storage } from '../../src/index.js';
import { checkStore } from '../../src/io/check.js';
import { purgeHistory, purgeRoom, PurgeRefusedError } from '../../src/io/purge.js';
import { roomDetail, storeSizes } from '../../src/io/room-sizes.js';
import { stableJSON } from '../../src/io/dump-rows.js';
import { DUMP_TABLES, type DumpRows, type DumpTableName } from '../../src/storage/tables/dump.js';
import { parsePDU, type RoomEvent } from '../../src/types/event.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { makeEvent } from './fixtures.js';
import { fillEveryTable, fillGeneratedRoom, readWholeDump } from './fill-store.js';
import { generateRoom } from '../../src/io/generate-room.js';
import { MissingPrevEventsError, RoomBeingWrittenError } from '../../src/types/errors.js';
import type { RoomNID } from '../../src/types/nids.js';

type WholeDump = { [K in DumpTableName]: DumpRows[K][] };

/** Every room's current state and the state after each of its events, as text: what must not change for a room a purge leaves. */
async function stateHashes(s: Storage, roomIDs: readonly string[], dump: WholeDump): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const entries = (list: readonly { eventTypeNID: number; eventStateKeyNID: number; eventNID: number }[]) =>
    list.map((e) => `${e.eventTypeNID}/${e.eventStateKeyNID}/${e.eventNID}`).sort().join(' ');
  for (const roomID of roomIDs) {
    out[`${roomID} now`] = entries(await s.roomserver.currentState(roomID));
    const nid = dump.rooms.find((r) => r.roomID === roomID)!.nid;
    for (const e of dump.events.filter((x) => x.room === nid)) out[`${roomID} after ${e.eventID}`] = entries(await s.roomserver.loadStateAfterEvent(e.eventID));
  }
  return out;
}

/** The rows of `before` that are not in `after`, per table. */
function removedRows(before: WholeDump, after: WholeDump): Partial<Record<DumpTableName, unknown[]>> {
  const out: Partial<Record<DumpTableName, unknown[]>> = {};
  for (const name of DUMP_TABLES) {
    const left = new Set((after[name] as unknown[]).map(stableJSON));
    const gone = (before[name] as unknown[]).filter((r) => !left.has(stableJSON(r)));
    if (gone.length > 0) out[name] = gone;
  }
  return out;
}

/** Operator tools on every driver: room sizes, purging a room, purging a room's history. */
export function operatorToolTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Operator tools: room sizes and purges', (test) => {
    test('room sizes add up to the store totals; rooms sort by bytes, events and members; one room in detail', async ({ storage }) => {
      await fillEveryTable(storage);
      const generated = await fillGeneratedRoom(storage, { members: 15, events: 120, seed: 3 });
      const sizes = await storeSizes(storage);
      const stats = await storage.stats.collect();
      const sum = (f: (r: (typeof sizes.rooms)[number]) => number) => sizes.rooms.reduce((n, r) => n + f(r), 0);
      expect(sizes.rooms.length).to.equal(stats.rooms);
      expect(sum((r) => r.events)).to.equal(stats.events).and.equal(sizes.totals.events);
      expect(sum((r) => r.stateBlocks)).to.equal(stats.stateBlocks).and.equal(sizes.totals.stateBlocks);
      expect(sum((r) => r.stateEntries)).to.equal(stats.stateTuples).and.equal(sizes.totals.stateEntries);
      expect(sum((r) => r.stateSnapshots)).to.equal(stats.stateSnapshots).and.equal(sizes.totals.stateSnapshots);
      expect(sum((r) => r.bytes)).to.equal(sizes.totals.bytes);
      expect(sizes.unattributed).to.deep.equal({ events: 0, stateEntries: 0, stateBlocks: 0, stateSnapshots: 0, jsonBytes: 0, stateBytes: 0, bytes: 0 });
      // The JSON bytes, by another road: every event's JSON read through the Database API.
      const all = await readWholeDump(storage.dump!);
      const json = await storage.roomserver.events(all.events.map((e) => e.nid as never));
      expect(sizes.totals.jsonBytes).to.equal(json.reduce((n, e) => n + Buffer.byteLength(e.event.json, 'utf8'), 0));
      // Sorted largest first; the generated room is the largest by every measure.
      expect(sizes.rooms[0]!.roomID).to.equal(generated.roomID);
      const bytes = sizes.rooms.map((r) => r.bytes);
      expect(bytes).to.deep.equal([...bytes].sort((a, b) => b - a));
      const byMembers = await storeSizes(storage, { sort: 'members' });
      const joined = await storage.roomserver.joinedUsersSetInRooms([generated.roomID]);
      expect(byMembers.rooms[0]!.joinedMembers).to.equal(joined.size).and.be.greaterThan(1);
      expect((await storeSizes(storage, { sort: 'events' })).rooms.map((r) => r.events)).to.deep.equal(sizes.rooms.map((r) => r.events).sort((a, b) => b - a));
      const generatedSize = sizes.rooms[0]!;
      expect(generatedSize.currentState).to.equal((await storage.roomserver.currentState(generated.roomID)).length);

      const detail = await roomDetail(storage, generated.roomID);
      expect(detail).to.deep.include(generatedSize);
      expect(detail.createEventVersion).to.equal('10');
      expect(detail.createEventID).to.equal(generated.events[0]!.eventID);
      const latest = generated.events.at(-1)!;
      expect(detail.latestEvents).to.deep.equal([{ eventID: latest.eventID, depth: latest.depth }]);
    });

    test('purge-room deletes every row of the room and nothing else; the other rooms answer as before; a purge stopped part-way finishes when run again', async ({ storage }) => {
      // The generated room first: the state snapshots it stores first (the empty state before its create event) are
      // shared by the rooms stored after it, which keep them.
      const generated = await fillGeneratedRoom(storage, { members: 15, events: 150, seed: 4 });
      await fillEveryTable(storage);
      await storage.roomserver.setRoomAlias('#generated:example.org', generated.roomID, '@alice:example.org');
      await storage.roomserver.publishRoom(generated.roomID, true);
      const before = await readWholeDump(storage.dump!);
      const others = before.rooms.map((r) => r.roomID).filter((id) => id !== generated.roomID);
      const othersBefore = await stateHashes(storage, others, before);
      const room = before.rooms.find((r) => r.roomID === generated.roomID)!;

      // Stopped as the event JSON was about to go: aliases, directory, memberships, invites, references gone.
      const stopped = await purgeRoom(storage, generated.roomID, { reclaim: false, onTable: (t) => { if (t === 'event_json') throw new Error('stopped'); } })
        .catch((e: Error) => e.message);
      expect(stopped).to.equal('stopped');
      const report = await purgeRoom(storage, generated.roomID);
      expect(report.deleted.events).to.equal(150);
      expect(report.deleted.rooms).to.equal(1);

      const after = await readWholeDump(storage.dump!);
      const nids = new Set(before.events.filter((e) => e.room === room.nid).map((e) => e.nid));
      const roomBlocks = new Set(before.state_snapshots.filter((s) => s.room === room.nid).flatMap((s) => s.blocks));
      const otherBlocks = new Set(before.state_snapshots.filter((s) => s.room !== room.nid).flatMap((s) => s.blocks));
      // Exactly the room's rows are gone.
      expect(removedRows(before, after)).to.deep.equal(Object.fromEntries(Object.entries({
        // Its blocks: those its snapshots name, and those no snapshot names that hold its events.
        state_blocks: before.state_blocks.filter((b) => !otherBlocks.has(b.nid) && (roomBlocks.has(b.nid) || b.entries.some((x) => nids.has(x[2])))),
        state_snapshots: before.state_snapshots.filter((s) => s.room === room.nid
          && !before.events.some((e) => !nids.has(e.nid) && e.snapshot === s.nid) && !before.rooms.some((r) => r.nid !== room.nid && r.snapshot === s.nid)),
        event_json: before.event_json.filter((j) => nids.has(j.nid)),
        events: before.events.filter((e) => nids.has(e.nid)),
        previous_events: before.previous_events.filter((p) => nids.has(p.nid)),
        redactions: before.redactions.filter((r) => before.events.some((e) => nids.has(e.nid) && e.eventID === r.id)),
        invites: before.invites.filter((i) => i.room === room.nid),
        membership: before.membership.filter((m) => m.room === room.nid),
        rooms: [room],
        room_aliases: before.room_aliases.filter((a) => a.roomID === generated.roomID),
        published: before.published.filter((p) => p.roomID === generated.roomID),
      }).filter(([, rows]) => rows.length > 0)));
      expect(await stateHashes(storage, others, after)).to.deep.equal(othersBefore);
      expect((await checkStore(storage)).violations).to.deep.equal([]);
      expect(await storage.roomserver.roomInfo(generated.roomID)).to.equal(null);
      expect(await storage.roomserver.getRoomIDForAlias('#generated:example.org')).to.equal(null);
      expect(await purgeRoom(storage, generated.roomID).catch((e: Error) => e.constructor.name)).to.equal('NotFoundError');
      // The room comes back as a new room if its events arrive again.
      await storage.roomserver.appendEvents(generated.events.slice(0, 20));
      expect((await storage.roomserver.roomInfo(generated.roomID))!.roomNID).to.be.greaterThan(room.nid);
    });

    test('purge-history keeps what the room needs: every kept event answers state as before, the store passes check', async ({ storage }) => {
      const generated = await fillGeneratedRoom(storage, { members: 20, events: 300, seed: 5 });
      const cut = generated.events[180]!;
      const before = await readWholeDump(storage.dump!);
      const hashes = await stateHashes(storage, [generated.roomID], before);
      const latest = await storage.roomserver.latestEventIDs((await storage.roomserver.roomInfo(generated.roomID))!.roomNID);
      // Stopped once, then finished.
      const stopped = await purgeHistory(storage, generated.roomID, { beforeEventID: cut.eventID }, { reclaim: false, onTable: (t) => { if (t === 'events') throw new Error('stopped'); } })
        .catch((e: Error) => e.message);
      expect(stopped).to.equal('stopped');
      const report = await purgeHistory(storage, generated.roomID, { beforeEventID: cut.eventID });
      expect(report.deleted.events).to.be.greaterThan(50);
      expect((await checkStore(storage)).violations).to.deep.equal([]);

      const after = await readWholeDump(storage.dump!);
      const kept = new Set(after.events.map((e) => e.eventID));
      expect(kept.size).to.equal(report.eventsKept);
      // Every event from the cut on is kept, and the create event, the latest events and the current state.
      for (const e of generated.events.slice(180)) expect(kept.has(e.eventID), e.eventID).to.equal(true);
      expect(kept.has(generated.events[0]!.eventID)).to.equal(true);
      for (const id of latest.eventIDs) expect(kept.has(id)).to.equal(true);
      const gone = generated.events.slice(0, 180).filter((e) => !kept.has(e.eventID));
      expect(gone.length).to.equal(report.deleted.events);
      // State answers for every kept event as it did, and for the room now.
      const afterHashes = await stateHashes(storage, [generated.roomID], after);
      for (const [key, value] of Object.entries(afterHashes)) expect(value, key).to.equal(hashes[key]);
      expect(Object.keys(afterHashes).length).to.equal(kept.size + 1);
      expect((await storage.roomserver.eventNIDs(gone.map((e) => e.eventID))).size).to.equal(0);
      // The room works on: a new event after the latest.
      await storage.roomserver.appendEvent(makeEvent({ id: '$after-purge', room: generated.roomID, depth: latest.depth, prev: latest.eventIDs }));
      expect((await storage.roomserver.latestEventIDs((await storage.roomserver.roomInfo(generated.roomID))!.roomNID)).eventIDs).to.deep.equal(['$after-purge']);
    });

    test('purge-history by time deletes only events sent before it; an unknown cut or room is refused, nothing deleted', async ({ storage }) => {
      const generated = await fillGeneratedRoom(storage, { members: 10, events: 200, seed: 6 });
      const ts = (e: RoomEvent) => (JSON.parse(e.json) as { origin_server_ts: number }).origin_server_ts;
      const at = ts(generated.events[120]!);
      const print = await storage.stats.fingerprint();
      expect(await purgeHistory(storage, generated.roomID, { beforeEventID: '$not-in-room' }).catch((e: unknown) => e)).to.be.instanceOf(PurgeRefusedError);
      expect(await purgeHistory(storage, '!nowhere:example.org', { beforeTimestamp: at }).catch((e: Error) => e.constructor.name)).to.equal('NotFoundError');
      expect(await storage.stats.fingerprint()).to.equal(print);
      const report = await purgeHistory(storage, generated.roomID, { beforeTimestamp: at });
      expect(report.deleted.events).to.be.greaterThan(10);
      const left = new Set((await readWholeDump(storage.dump!)).events.map((e) => e.eventID));
      for (const e of generated.events) if (!left.has(e.eventID)) expect(ts(e)).to.be.lessThan(at);
      expect((await checkStore(storage)).ok).to.equal(true);
    });

    test('room and purge-room read the room\'s own rows, not the store: at most twice what the room holds, beside a far larger room', async ({ storage }) => {
      const large = await fillGeneratedRoom(storage, { members: 30, events: 400, seed: 7 });
      await fillEveryTable(storage);
      const roomID = '!fill:example.org';
      const detail = await roomDetail(storage, roomID);
      const report = await purgeRoom(storage, roomID, { reclaim: false });
      // What the room held: every row the purge deleted (the shared empty snapshot stays, as it must).
      expect(report.rowsDeleted).to.be.greaterThan(20);
      expect(report.rowsRead, 'purge-room').to.be.at.most(2 * report.rowsDeleted);
      expect(detail.rowsRead, 'room').to.be.at.most(2 * report.rowsDeleted);
      // The large room's events alone outnumber everything read: no table was read whole.
      expect(report.rowsRead + detail.rowsRead).to.be.lessThan(large.events.length);
      // purge-history reads the room it cuts: at most twice its events, JSON, references, memberships and state.
      const all = await readWholeDump(storage.dump!);
      const nid = all.rooms.find((r) => r.roomID === large.roomID)!.nid;
      const nids = new Set(all.events.filter((e) => e.room === nid).map((e) => e.nid));
      const snapshots = all.state_snapshots.filter((x) => x.room === nid);
      const held = nids.size * 2 + all.previous_events.filter((p) => nids.has(p.nid)).length + all.membership.filter((m) => m.room === nid).length
        + snapshots.length + new Set(snapshots.flatMap((x) => x.blocks)).size;
      const history = await purgeHistory(storage, large.roomID, { beforeEventID: large.events[200]!.eventID }, { reclaim: false });
      expect(history.rowsRead, 'purge-history').to.be.at.most(2 * held);
      expect((await checkStore(storage)).violations).to.deep.equal([]);
    });

    test('a purge holds the room as the input path does: refused while another writer\'s claim runs (Cosmos DB), waiting for its transaction (SQL)', async ({ storage }) => {
      const generated = await fillGeneratedRoom(storage, { members: 5, events: 60, seed: 8 });
      const info = (await storage.roomserver.roomInfo(generated.roomID))!;
      const rooms = storage.tables.rooms;
      if (rooms.claimRoom) {
        // Another writer's claim, as a batch append takes it.
        const tx = storage.roomserver.uow.autocommit;
        const held = await rooms.selectLatestEventsNIDsForUpdate(tx, info.roomNID);
        const version = await rooms.claimRoom(tx, info.roomNID, held.appending ?? [], Date.now() + 10_000, held.version);
        const print = await storage.stats.fingerprint();
        const refused = await purgeRoom(storage, generated.roomID, { reclaim: false }).catch((e: unknown) => e);
        expect(refused).to.be.instanceOf(RoomBeingWrittenError);
        expect((refused as RoomBeingWrittenError).until).to.be.greaterThan(Date.now());
        expect(await storage.stats.fingerprint()).to.equal(print);
        await rooms.releaseRoom!(tx, info.roomNID, version);
      } else {
        // The row lock: an updater's transaction holds the room; the purge waits for it, then runs.
        let release!: () => void;
        let held!: () => void;
        const isHeld = new Promise<void>((r) => { held = r; });
        const updater = storage.roomserver.updateLatestEvents(info.roomNID as RoomNID, async () => {
          held();
          await new Promise<void>((r) => { release = r; });
        });
        await isHeld;
        let settled = false;
        const purge = purgeRoom(storage, generated.roomID, { reclaim: false }).finally(() => { settled = true; });
        await new Promise((r) => setTimeout(r, 300));
        expect(settled, 'the purge waited for the room').to.equal(false);
        release();
        await updater;
        expect((await purge).deleted.events).to.equal(60);
        expect(await storage.roomserver.roomInfo(generated.roomID)).to.equal(null);
        return;
      }
      expect((await purgeRoom(storage, generated.roomID, { reclaim: false })).deleted.events).to.equal(60);
      expect((await checkStore(storage)).violations).to.deep.equal([]);
    });

    test('a purge while a batch append of the same room runs leaves the room before or after, never a mix', async ({ storage }) => {
      for (const seed of [11, 12, 13, 14]) {
        const events = [...generateRoom({ members: 8, events: 160, seed })].map((line) => parsePDU(line, '10').event);
        const roomID = events[0]!.roomID;
        const first = events.slice(0, 80);
        const batch = events.slice(80);
        for (let i = 0; i < first.length; i += 40) await storage.roomserver.appendEvents(first.slice(i, i + 40));
        // Started in either order, the other a moment later.
        const later = <T>(ms: number, f: () => Promise<T>) => new Promise((r) => setTimeout(r, ms)).then(f);
        const purgeFirst = seed % 2 === 0;
        const [appended, purged] = await Promise.allSettled([
          later(purgeFirst ? 25 : 0, () => storage.roomserver.appendEvents(batch)),
          later(purgeFirst ? 0 : 2, () => purgeRoom(storage, roomID, { reclaim: false })),
        ]);
        const stored = new Set((await storage.roomserver.eventNIDs(events.map((e) => e.eventID))).keys());
        const has = (list: readonly { eventID: string }[]) => list.filter((e) => stored.has(e.eventID)).length;
        const outcome = `append ${appended.status}${appended.status === 'rejected' ? ` (${(appended.reason as Error).constructor.name}: ${(appended.reason as Error).message.slice(0, 120)})` : ''}, purge ${purged.status}` +
          `${purged.status === 'rejected' ? ` (${(purged.reason as Error).constructor.name})` : ''}, ${has(first)} + ${has(batch)} stored`;
        if (purged.status === 'fulfilled') {
          // The purge took the room whole: the batch before it (gone with the room), or after it into a new room, whole or refused.
          expect(has(first), outcome).to.equal(0);
          expect([0, batch.length], outcome).to.include(has(batch));
          // An append that came after the purge finds the room gone, and its events' prev events with it: refused whole.
          if (appended.status === 'rejected') expect(appended.reason, outcome).to.be.instanceOf(MissingPrevEventsError);
        } else {
          // Refused while the append held the room: the room after the append, untouched.
          expect(purged.reason, outcome).to.be.instanceOf(RoomBeingWrittenError);
          expect(appended.status, outcome).to.equal('fulfilled');
          expect([has(first), has(batch)], outcome).to.deep.equal([first.length, batch.length]);
        }
        expect((await checkStore(storage)).violations, outcome).to.deep.equal([]);
      }
    });
  });
}

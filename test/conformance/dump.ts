import { expect } from 'chai';
import type { RoomNID } from '../../src/index.js';
import { DUMP_TABLES, type DumpRows, type DumpTableName, type StoreDump } from '../../src/storage/tables/dump.js';
import { stableJSON } from '../../src/io/dump-rows.js';
import { dumpOf } from '../../src/io/copy.js';
import { checkStore } from '../../src/io/check.js';
import { group, SUITE_SETTINGS, type DriverUnderTest, type TestFramework } from './harness.js';
import { makeEvent } from './fixtures.js';
import { behaviourAfterFill, fillEveryTable, fillGeneratedRoom, highestInUse, readWholeDump } from './fill-store.js';


/** Writes every table of `from` into `to`, in pages, as a copy does, then raises the counters. */
async function writeAll(from: StoreDump, to: StoreDump, pageSize: number): Promise<void> {
  for (const name of DUMP_TABLES) {
    let cursor: string | undefined;
    do {
      const page = await from.table(name).read(cursor, pageSize);
      await to.table(name).write(page.rows as never);
      cursor = page.next;
    } while (cursor !== undefined);
  }
  await to.raiseCounters(await from.counters());
}

/** The store's whole content in a driver-neutral form: every table read, written elsewhere, and read back the same. */
export function dumpTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Store dump (copy and check)', (test) => {
    test('the fixture puts rows in every table, and a full read returns as many rows as count says', async ({ storage }) => {
      await fillEveryTable(storage);
      const dump = dumpOf(storage, 'store');
      const all = await readWholeDump(dump, 4);
      for (const name of DUMP_TABLES) {
        expect(all[name].length, name).to.be.greaterThan(0);
        expect(await dump.table(name).count(), name).to.equal(all[name].length);
      }
    });

    test('any page size reads every row exactly once', async ({ storage }) => {
      await fillEveryTable(storage);
      const dump = dumpOf(storage, 'store');
      const whole = await readWholeDump(dump, 1000);
      expect(await readWholeDump(dump, 1)).to.deep.equal(whole);
      expect(await readWholeDump(dump, 3)).to.deep.equal(whole);
    });

    test('a dump written into an empty store reads back the same, and that store works on as the first does', async ({ storage }) => {
      await fillEveryTable(storage);
      const copy = await driver.open(SUITE_SETTINGS);
      try {
        await writeAll(dumpOf(storage, 'store'), dumpOf(copy, 'store'), 5);
        expect(await readWholeDump(dumpOf(copy, 'store'))).to.deep.equal(await readWholeDump(dumpOf(storage, 'store')));
        // Writing the same pages again (a copy that resumes) changes nothing.
        const print = await copy.stats.fingerprint();
        await writeAll(dumpOf(storage, 'store'), dumpOf(copy, 'store'), 2);
        expect(await copy.stats.fingerprint()).to.equal(print);
        // The same calls on both stores give the same answers, and the copy hands out no NID or position in use.
        const inUse = highestInUse(await readWholeDump(dumpOf(storage, 'store')));
        const [original, copied] = [await behaviourAfterFill(storage), await behaviourAfterFill(copy)];
        expect(copied.same).to.deep.equal(original.same);
        for (const [counter, value] of Object.entries(copied.fresh)) expect(value, counter).to.be.greaterThan(inUse[counter]!);
      } finally {
        await copy.close();
      }
    });

    test('counters are at least every NID and position in use; raiseCounters only raises them', async ({ storage }) => {
      await fillEveryTable(storage);
      const dump = dumpOf(storage, 'store');
      const counters = await dump.counters();
      const all = await readWholeDump(dump);
      const max = (xs: number[]) => Math.max(0, ...xs);
      expect(counters.event_nid).to.be.at.least(max(all.events.map((e) => e.nid)));
      expect(counters.room_nid).to.be.at.least(max(all.rooms.map((r) => r.nid)));
      expect(counters.state_block_nid).to.be.at.least(max(all.state_blocks.map((b) => b.nid)));
      expect(counters.state_snapshot_nid).to.be.at.least(max(all.state_snapshots.map((b) => b.nid)));
      expect(counters.key_backup_version).to.be.at.least(max(all.key_backup_versions.map((v) => v.version)));
      expect(counters.send_to_device_id).to.be.at.least(max(all.send_to_device.map((m) => m.id)));
      await dump.raiseCounters({ event_nid: 1 });
      expect((await dump.counters()).event_nid).to.equal(counters.event_nid);
      await dump.raiseCounters({ event_nid: counters.event_nid! + 500 });
      expect((await dump.counters()).event_nid).to.be.at.least(counters.event_nid! + 500);
      const next = await storage.roomserver.appendEvent(makeEvent({ id: '$after-raise', room: '!raise:example.org', type: 'm.room.create', stateKey: '', content: { room_version: '10' } }));
      expect(next.stateAtEvent.eventNID).to.be.greaterThan(counters.event_nid! + 500);
    });

    test('storing events stored already reserves no NIDs: a re-import leaves the block and snapshot counters where they were', async ({ storage }) => {
      const { events } = await fillGeneratedRoom(storage, { members: 25, events: 250, seed: 8 });
      const dump = dumpOf(storage, 'store');
      const stateCounters = async () => { const c = await dump.counters(); return { blocks: c.state_block_nid, snapshots: c.state_snapshot_nid }; };
      const before = await stateCounters();
      const print = await storage.stats.fingerprint();
      expect(before.blocks).to.be.greaterThan(20);
      // The room again, as resumed imports write it: batches cut elsewhere, then single events.
      for (let i = 0; i < events.length; i += 7) await storage.roomserver.appendEvents(events.slice(i, i + 7));
      for (const e of events.slice(-30)) await storage.roomserver.appendEvent(e);
      expect(await stateCounters()).to.deep.equal(before);
      expect(await storage.stats.fingerprint(), 'the store changed').to.equal(print);
      // The state of every event again, straight through the state API: the same NIDs, still none reserved.
      const room = (await storage.roomserver.roomInfo(events[0]!.roomID))!;
      const current = await storage.roomserver.currentState(events[0]!.roomID);
      const blocks = await storage.roomserver.stateBlockNIDs([room.stateSnapshotNID]);
      expect(await storage.roomserver.addState(room.roomNID, blocks[0]!.stateBlockNIDs, [])).to.equal(room.stateSnapshotNID);
      expect(await storage.roomserver.addState(room.roomNID, [], current)).to.be.a('number');
      const afterFlat = await stateCounters();
      expect(await storage.roomserver.addState(room.roomNID, [], current)).to.be.a('number');
      expect(await stateCounters()).to.deep.equal(afterFlat);
      // New state still takes the next values.
      const last = events[events.length - 1]!;
      await storage.roomserver.appendEvent(makeEvent({ id: '$after-reimport', room: last.roomID, type: 'm.room.topic', stateKey: '', depth: last.depth + 1,
        prev: [last.eventID], content: { topic: 'new' } }));
      const after = await stateCounters();
      expect(after.blocks).to.be.greaterThan(before.blocks!);
      expect(after.snapshots).to.be.greaterThan(before.snapshots!);
    });

    test('deleting rows removes them and what the driver derived from them; deleting them again changes nothing', async ({ storage }) => {
      await fillEveryTable(storage);
      const dump = dumpOf(storage, 'store');
      const all = await readWholeDump(dump);
      // A whole room (its events, JSON, references, state, memberships and the room itself), and a row or all rows
      // of every other table.
      const roomID = "!it's 100%_/room:example.org";
      const room = all.rooms.find((r) => r.roomID === roomID)!;
      const nids = new Set(all.events.filter((e) => e.room === room.nid).map((e) => e.nid));
      const snapshots = all.state_snapshots.filter((x) => x.room === room.nid);
      const blocksKept = new Set(all.state_snapshots.filter((x) => x.room !== room.nid).flatMap((x) => x.blocks));
      const blocksGone = new Set(snapshots.flatMap((x) => x.blocks).filter((b) => !blocksKept.has(b)));
      const gone: { [K in DumpTableName]?: DumpRows[K][] } = {
        events: all.events.filter((e) => nids.has(e.nid)),
        event_json: all.event_json.filter((j) => nids.has(j.nid)),
        previous_events: all.previous_events.filter((p) => nids.has(p.nid)),
        membership: all.membership.filter((m) => m.room === room.nid),
        state_snapshots: snapshots,
        state_blocks: all.state_blocks.filter((b) => blocksGone.has(b.nid)),
        rooms: [room],
        invites: all.invites, redactions: all.redactions, transactions: all.transactions,
        room_aliases: all.room_aliases.filter((a) => a.alias === '#fill:example.org'),
        published: all.published, federation_blacklist: all.federation_blacklist,
        device_keys: all.device_keys.filter((d) => d.deviceID === 'LAPTOP'),
        one_time_keys: all.one_time_keys.filter((k) => k.keyID === 'AAAA'),
        fallback_keys: all.fallback_keys.filter((k) => k.deviceID === 'LAPTOP'),
        key_changes: all.key_changes.filter((c) => c.userID === '@alice:example.org'),
        cross_signing_keys: all.cross_signing_keys.slice(0, 1), cross_signing_sigs: all.cross_signing_sigs,
        stale_device_lists: all.stale_device_lists,
        key_backups: all.key_backups.slice(0, 1),
        send_to_device: all.send_to_device.slice(0, 1),
        partition_offsets: all.partition_offsets.filter((o) => o.partition === 3),
      };
      for (const name of [...DUMP_TABLES].reverse()) {
        expect(gone[name]?.length ?? 1, `rows of ${name} to delete`).to.be.greaterThan(0);
        await dump.table(name).delete((gone[name] ?? []) as never);
      }
      const left = await readWholeDump(dump);
      const key = (row: unknown) => stableJSON(row);
      for (const name of DUMP_TABLES) {
        const removed = new Set((gone[name] ?? []).map(key));
        expect(left[name], name).to.deep.equal((all[name] as unknown[]).filter((r) => !removed.has(key(r))));
      }
      // Deleting the same rows again (a purge that resumes) changes nothing.
      const print = await storage.stats.fingerprint();
      for (const name of [...DUMP_TABLES].reverse()) await dump.table(name).delete((gone[name] ?? []) as never);
      expect(await storage.stats.fingerprint()).to.equal(print);

      // What the driver derived from the rows went with them: every API answers as for rows never stored (once the
      // Database has forgotten the room it cached, as a purge tells it to).
      const db = storage.roomserver;
      await db.evictRoom(roomID, room.nid as RoomNID);
      expect(await db.roomInfo(roomID)).to.equal(null);
      expect((await db.eventNIDs(gone.events!.map((e) => e.eventID))).size).to.equal(0);
      expect(await db.getRoomIDForAlias('#fill:example.org')).to.equal(null);
      expect(await db.getRoomIDForAlias('#it_s 100%:example.org')).to.equal('!fill:example.org');
      expect(await db.getPublishedRooms()).to.deep.equal([]);
      expect(await db.getRoomsByMembership('@alice:example.org', 'join')).to.deep.equal(['!fill:example.org']);
      expect(await db.getTransactionEventID({ transactionID: "txn'1%", sessionID: 3, userID: '@alice:example.org' })).to.equal(null);
      expect((await storage.keys.deviceKeysForUser('@alice:example.org', [])).map((d) => d.deviceID)).to.deep.equal(['PHONE']);
      const claimed = await storage.keys.claimKeys(new Map([['@alice:example.org', new Map([['PHONE', 'signed_curve25519']])]]));
      expect(claimed.flatMap((k) => [...k.keyJSON.keys()])).to.deep.equal(['signed_curve25519:AAAB']);
      expect(await storage.keys.unusedFallbackKeyAlgorithms('@alice:example.org', 'LAPTOP')).to.deep.equal([]);
      expect(await storage.keys.claimKeys(new Map([['@alice:example.org', new Map([['LAPTOP', 'curve25519']])]]))).to.deep.equal([]);
      expect(await storage.keys.unusedFallbackKeyAlgorithms('@bob:remote.net', 'TAB')).to.deep.equal(['signed_curve25519']);
      expect((await storage.sendToDevice.sendToDeviceUpdatesForSync('@alice:example.org', 'PHONE', 0, 1000)).events.map((m) => m.content))
        .to.deep.equal([{ n: 2 }]);
      expect(await storage.federation.isServerBlacklisted('evil.example.org')).to.equal(false);
      expect(await storage.partitionStorer.partitionOffsets("topic/with'quote")).to.deep.equal([]);
      // The room can be created again, as a new room.
      const again = await db.appendEvent(makeEvent({ id: '$again-create', room: roomID, type: 'm.room.create', stateKey: '', content: { room_version: '10' } }));
      expect((await db.roomInfo(roomID))!.roomNID).to.be.greaterThan(room.nid);
      expect((await db.currentState(roomID)).map((e) => e.eventNID)).to.deep.equal([again.stateAtEvent.eventNID]);
      // The other room works on.
      const latest = await db.latestEventIDs((await db.roomInfo('!fill:example.org'))!.roomNID);
      await db.appendEvent(makeEvent({ id: '$after-delete', room: '!fill:example.org', depth: latest.depth, prev: latest.eventIDs }));
      expect((await checkStore(storage)).violations).to.deep.equal([]);
    });

    test("the copy progress record round-trips, can be removed, and is not part of the store's content", async ({ storage }) => {
      const dump = dumpOf(storage, 'store');
      expect(await dump.readProgress()).to.equal(undefined);
      const before = await storage.stats.fingerprint();
      const progress = { source: 'sqlite ./a.db', startedAt: '2026-12-01T00:00:00Z', table: 'events' as const, cursor: '[17]', rows: { event_types: 9, events: 12 } };
      await dump.writeProgress(progress);
      expect(await dump.readProgress()).to.deep.equal(progress);
      expect(await storage.stats.fingerprint()).to.equal(before);
      await dump.writeProgress(undefined);
      expect(await dump.readProgress()).to.equal(undefined);
    });
  });
}

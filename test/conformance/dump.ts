import { expect } from 'chai';
import type { Storage } from '../../src/index.js';
import { DUMP_TABLES, type StoreDump } from '../../src/storage/tables/dump.js';
import { group, SUITE_SETTINGS, type DriverUnderTest, type TestFramework } from './harness.js';
import { makeEvent } from './fixtures.js';
import { dm } from './keys-fixtures.js';
import { fillEveryTable, readWholeDump } from './fill-store.js';

const dumpOf = (s: Storage): StoreDump => {
  if (!s.dump) throw new Error('this driver has no StoreDump');
  return s.dump;
};

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
      const dump = dumpOf(storage);
      const all = await readWholeDump(dump, 4);
      for (const name of DUMP_TABLES) {
        expect(all[name].length, name).to.be.greaterThan(0);
        expect(await dump.table(name).count(), name).to.equal(all[name].length);
      }
    });

    test('any page size reads every row exactly once', async ({ storage }) => {
      await fillEveryTable(storage);
      const dump = dumpOf(storage);
      const whole = await readWholeDump(dump, 1000);
      expect(await readWholeDump(dump, 1)).to.deep.equal(whole);
      expect(await readWholeDump(dump, 3)).to.deep.equal(whole);
    });

    test('a dump written into an empty store reads back the same, and that store works on as the first does', async ({ storage }) => {
      await fillEveryTable(storage);
      const copy = await driver.open(SUITE_SETTINGS);
      try {
        await writeAll(dumpOf(storage), dumpOf(copy), 5);
        expect(await readWholeDump(dumpOf(copy))).to.deep.equal(await readWholeDump(dumpOf(storage)));
        // Writing the same pages again (a copy that resumes) changes nothing.
        const print = await copy.stats.fingerprint();
        await writeAll(dumpOf(storage), dumpOf(copy), 2);
        expect(await copy.stats.fingerprint()).to.equal(print);
        // The same calls on both stores give the same answers: the copy is a live store with the same NIDs and counters.
        for (const s of [storage, copy]) {
          const latest = await s.roomserver.latestEventIDs((await s.roomserver.roomInfo('!fill:example.org'))!.roomNID);
          const e = makeEvent({ id: '$after-copy', room: '!fill:example.org', type: 'm.room.topic', stateKey: '', depth: latest.depth, prev: latest.eventIDs });
          await s.roomserver.appendEvent(e);
          await s.roomserver.appendEvent(makeEvent({ id: '$new-room-create', room: '!after:example.org', type: 'm.room.create', stateKey: '', content: { room_version: '10' } }));
          await s.keys.storeLocalDeviceKeys([dm('@alice:example.org', 'NEW', '{}')]);
        }
        const answers = async (s: Storage) => ({
          event: [...(await s.roomserver.eventNIDs(['$after-copy', '$new-room-create'])).entries()],
          room: (await s.roomserver.roomInfo('!after:example.org'))!.roomNID,
          state: (await s.roomserver.currentState('!fill:example.org')).map((e) => [e.eventTypeNID, e.eventStateKeyNID, e.eventNID]),
          devices: (await s.keys.deviceKeysForUser('@alice:example.org', [])).map((d) => [d.deviceID, d.streamID]),
          claimed: (await s.keys.claimKeys(new Map([['@alice:example.org', new Map([['PHONE', 'signed_curve25519']])]]))).map((k) => [...k.keyJSON.keys()]),
          sent: await s.sendToDevice.storeNewSendForDeviceMessage('@alice:example.org', 'PHONE', { sender: '@bob:remote.net', type: 't', content: {} }),
          keyChange: await s.keys.storeKeyChange('@carol:example.org'),
          backup: await s.keyBackup.createKeyBackup('@bob:remote.net', 'm.megolm_backup.v1.curve25519-aes-sha2', '{}'),
          alias: await s.roomserver.getRoomIDForAlias('#it_s 100%:example.org'),
          invites: await s.roomserver.getInvitesForUser((await s.roomserver.roomInfo('!fill:example.org'))!.roomNID,
            (await s.roomserver.eventStateKeyNIDs(['@dave:example.org'])).get('@dave:example.org')!),
        });
        expect(await answers(copy)).to.deep.equal(await answers(storage));
      } finally {
        await copy.close();
      }
    });

    test('counters are at least every NID and position in use; raiseCounters only raises them', async ({ storage }) => {
      await fillEveryTable(storage);
      const dump = dumpOf(storage);
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

    test("the copy progress record round-trips, can be removed, and is not part of the store's content", async ({ storage }) => {
      const dump = dumpOf(storage);
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

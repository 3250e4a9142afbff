import { expect } from 'chai';
import type { Storage } from '../../src/index.js';
import { DUMP_TABLES, type StoreDump } from '../../src/storage/tables/dump.js';
import { group, SUITE_SETTINGS, type DriverUnderTest, type TestFramework } from './harness.js';
import { makeEvent } from './fixtures.js';
import { behaviourAfterFill, fillEveryTable, highestInUse, readWholeDump } from './fill-store.js';

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
        // The same calls on both stores give the same answers, and the copy hands out no NID or position in use.
        const inUse = highestInUse(await readWholeDump(dumpOf(storage)));
        const [original, copied] = [await behaviourAfterFill(storage), await behaviourAfterFill(copy)];
        expect(copied.same).to.deep.equal(original.same);
        for (const [counter, value] of Object.entries(copied.fresh)) expect(value, counter).to.be.greaterThan(inUse[counter]!);
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

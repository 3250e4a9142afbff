import { expect } from 'chai';
import { dumpOf } from '../../src/io/copy.js';
import { checkStore, type ViolationKind } from '../../src/io/check.js';
import { EventTypes } from '../../src/types/nids.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { makeEvent } from './fixtures.js';
import { fillEveryTable, readWholeDump } from './fill-store.js';


/** NIDs no row uses: what the damaged rows point at. */
const NOWHERE = 900_000;

/**
 * `check` on every driver: a whole store passes; a store damaged row by row, through the dump's writes (as a
 * faulty tool or a half-restored backup would leave it), fails with each kind of violation named.
 */
export function checkTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'check (a store\'s invariants)', (test) => {
    test('a store written through the API passes, and check writes nothing', async ({ storage }) => {
      await fillEveryTable(storage);
      const before = await storage.stats.fingerprint();
      const report = await checkStore(storage, { pageSize: 3 });
      expect(report.violations).to.deep.equal([]);
      expect(report.ok).to.equal(true);
      expect(report.rows.events).to.be.greaterThan(10);
      expect(report.roomsStateChecked).to.equal(2);
      expect(await storage.stats.fingerprint()).to.equal(before);
    });

    test('a damaged store fails, each kind of damage named', async ({ storage }) => {
      await fillEveryTable(storage);
      await storage.roomserver.appendEvent(makeEvent({ id: '$third-create', room: '!third:example.org', type: 'm.room.create', stateKey: '', content: { room_version: '10' } }));
      const dump = dumpOf(storage, 'store');
      const all = await readWholeDump(dump);
      const max = (xs: number[]) => Math.max(0, ...xs);
      const [E, S, B] = [max(all.events.map((e) => e.nid)), max(all.state_snapshots.map((s) => s.nid)), max(all.state_blocks.map((b) => b.nid))];
      // Room for the damaged rows below the counters, so that only the damage itself is a violation.
      await dump.raiseCounters({ event_nid: E + 100, state_snapshot_nid: S + 100, state_block_nid: B + 100 });
      const room = (id: string) => all.rooms.find((r) => r.roomID === id)!;
      const [fill, other, third] = [room('!fill:example.org'), room("!it's 100%_/room:example.org"), room('!third:example.org')];
      const event = (nid: number, eventID: string, changes: object = {}) => ({
        nid, room: fill.nid, type: EventTypes.create as number, key: 0, eventID, auth: [], depth: 99, rejected: false, snapshot: 0, sent: false, ...changes,
      });
      await dump.table('events').write([
        event(E + 1, '$damaged-no-json'),
        event(E + 2, '$damaged-no-room', { room: NOWHERE }),
        event(E + 3, '$damaged-no-type', { type: NOWHERE }),
        event(E + 4, '$damaged-no-snapshot', { snapshot: NOWHERE + 1 }),
        event(E + 5, '$state-with-damaged-block', { snapshot: S + 2 }),
      ]);
      await dump.table('event_json').write([E + 2, E + 3, E + 4, E + 5].map((nid) => ({ nid, json: '{}' })));
      // A damaged block some stored event's state names; and state that nothing names (garbage, as a writer that
      // lost its commit leaves on Cosmos DB), whose block names an event not stored: not a violation.
      await dump.table('state_snapshots').write([
        { nid: S + 1, room: third.nid, blocks: [NOWHERE + 2] },
        { nid: S + 2, room: fill.nid, blocks: [B + 1] },
        { nid: S + 3, room: fill.nid, blocks: [B + 2] },
      ]);
      await dump.table('state_blocks').write([
        { nid: B + 1, entries: [[EventTypes.create, 1, NOWHERE + 3]] },
        { nid: B + 2, entries: [[EventTypes.create, 1, NOWHERE + 7]] },
      ]);
      // The first room's current state set back to an older snapshot of its own; the second room's latest event
      // gone; the third room's state pointing at a snapshot whose block is missing.
      const older = all.events.find((e) => e.room === fill.nid && e.snapshot !== 0 && e.snapshot !== fill.snapshot)!;
      await dump.table('rooms').write([
        { ...fill, snapshot: older.snapshot },
        { ...other, latest: [NOWHERE + 4] },
        { ...third, snapshot: S + 1 },
      ]);
      const member = all.membership.find((m) => m.room === fill.nid && m.event !== 0)!;
      await dump.table('membership').write([
        { ...member, event: NOWHERE + 5 },
        { ...member, target: NOWHERE + 6, event: 0 },
      ]);

      const before = await storage.stats.fingerprint();
      const report = await checkStore(storage);
      expect(await storage.stats.fingerprint()).to.equal(before);
      expect(report.ok).to.equal(false);
      const found = (kind: ViolationKind) => report.violations.filter((v) => v.kind === kind).map((v) => v.message).join(' | ');
      expect(found('event-without-json')).to.include('$damaged-no-json');
      expect(found('event-unknown-room')).to.include('$damaged-no-room');
      expect(found('event-unknown-type')).to.include('$damaged-no-type');
      expect(found('missing-snapshot')).to.include(String(NOWHERE + 1));
      expect(found('snapshot-missing-block')).to.include(String(NOWHERE + 2));
      expect(found('block-missing-event')).to.include(String(NOWHERE + 3));
      expect(found('block-missing-event'), 'garbage state is not a violation').not.to.include(String(NOWHERE + 7));
      expect(found('latest-event-missing')).to.include(String(NOWHERE + 4));
      expect(found('current-state-differs')).to.include('!fill:example.org');
      expect(found('state-unreadable')).to.include('!third:example.org');
      expect(found('membership-missing-event')).to.include(String(NOWHERE + 5));
      expect(found('membership-unknown-user')).to.include(String(NOWHERE + 6));
      expect(report.counts['counter-behind'] ?? 0).to.equal(0);
    });
  });
}

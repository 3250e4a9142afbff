import { expect } from 'chai';
import type { Storage } from '../../src/index.js';
import type { AppendEventResult, StoreEventOptions } from '../../src/storage/shared/roomserver-database.js';
import { ConflictError, InvalidInputError, type StorageError } from '../../src/types/errors.js';
import type { RoomEvent } from '../../src/types/event.js';
import type { EventNID, StateSnapshotNID } from '../../src/types/nids.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { makeEvent, rejects } from './fixtures.js';

type Fields = Parameters<typeof makeEvent>[0];
interface Step { readonly fields: Fields; readonly options?: StoreEventOptions }

/**
 * A room's history that exercises every rule appendEvent applies, in the order a server could receive it: state
 * chained from event to event, membership transitions (invites retired by a join, a leave and a ban; a knock; a
 * profile change; a membership value nobody knows), redactions stored before and after their targets, a fork and
 * its merge, a rejected state event, an event whose prev_event arrives after it, duplicates, client transactions.
 * Short IDs are made unique per room by `roomSteps`.
 */
const SCENARIO: readonly Step[] = (() => {
  const s: Step[] = [];
  const add = (fields: Fields, options?: StoreEventOptions) => s.push(options ? { fields, options } : { fields });
  const member = (id: string, user: string, membership: string, prev: string, sender = '@alice:example.org') =>
    add({ id, type: 'm.room.member', stateKey: user, sender, prev: [prev], content: { membership } });
  add({ id: 'create', type: 'm.room.create', stateKey: '', content: { creator: '@alice:example.org', room_version: '10' } });
  member('alice', '@alice:example.org', 'join', 'create');
  add({ id: 'power', type: 'm.room.power_levels', stateKey: '', prev: ['alice'], content: { users: { '@alice:example.org': 100 } } });
  add({ id: 'rules', type: 'm.room.join_rules', stateKey: '', prev: ['power'], content: { join_rule: 'public' } });
  add({ id: 'm1', prev: ['rules'] });
  member('invite-carol', '@carol:example.org', 'invite', 'm1');
  member('bob', '@bob:remote.net', 'join', 'invite-carol', '@bob:remote.net');
  member('carol', '@carol:example.org', 'join', 'bob', '@carol:example.org');
  add({ id: 'r1', type: 'm.room.redaction', prev: ['carol'], redacts: 'm1', content: {} });
  add({ id: 'r2', type: 'm.room.redaction', prev: ['r1'], redacts: 'm3', content: {} });
  add({ id: 'm2', prev: ['r2'] });
  add({ id: 'm3', prev: ['m2'] });
  add({ id: 'topic1', type: 'm.room.topic', stateKey: '', prev: ['m3'], content: { topic: 'one' } });
  add({ id: 'topic2', type: 'm.room.topic', stateKey: '', prev: ['topic1'], content: { topic: 'two' } });
  member('carol-leaves', '@carol:example.org', 'leave', 'topic2', '@carol:example.org');
  member('invite-dave', '@dave:example.org', 'invite', 'carol-leaves');
  member('ban-dave', '@dave:example.org', 'ban', 'invite-dave');
  member('knock-erin', '@erin:remote.net', 'knock', 'ban-dave', '@erin:remote.net');
  member('erin', '@erin:remote.net', 'join', 'knock-erin', '@erin:remote.net');
  member('bob-profile', '@bob:remote.net', 'join', 'erin', '@bob:remote.net');
  add({ id: 'rejected', type: 'm.room.name', stateKey: '', prev: ['bob-profile'], content: { name: 'not allowed' } }, { isRejected: true });
  // A fork: an event naming an older event, beside the room's latest; then an event merging both.
  add({ id: 'fork', type: 'org.example.fork', stateKey: 'f', prev: ['topic2'], content: { side: 'fork' } });
  // The merge names both extremities (a rejected event is never one).
  add({ id: 'merge', prev: ['bob-profile', 'fork'] });
  add({ id: 'm2', prev: ['r2'] });
  add({ id: 'sent', prev: ['merge'] }, { transaction: { transactionID: 'txn-1', sessionID: 7, userID: '@alice:example.org' } });
  add({ id: 'sent', prev: ['merge'] }, { transaction: { transactionID: 'txn-1', sessionID: 7, userID: '@alice:example.org' } });
  member('frank', '@frank:example.org', 'shrug', 'sent');
  // An event whose prev_event comes after it, with the state before it supplied (as a server that fetched it would):
  // it becomes a forward extremity beside frank; the late event, named already, does not.
  add({ id: 'after-late', prev: ['late'] }, { stateBefore: ['create', 'alice', 'power', 'rules'] });
  add({ id: 'late', prev: ['frank'] });
  add({ id: 'r3', type: 'm.room.redaction', prev: ['after-late'], redacts: 'power', content: {} });
  add({ id: 'self', type: 'm.room.redaction', prev: ['r3'], redacts: 'self', content: {} });
  member('gina', '@gina:example.org', 'join', 'self', '@gina:example.org');
  member('gina-profile', '@gina:example.org', 'join', 'gina', '@gina:example.org');
  add({ id: 'alice-again', type: 'm.room.member', stateKey: '@alice:example.org', prev: ['gina-profile'], content: { membership: 'join', displayname: 'A' } });
  return s;
})();

/** The scenario's events for one room: every ID (and every ID an event names) made that room's own. */
export function roomSteps(room: string): { event: RoomEvent; options?: StoreEventOptions }[] {
  // The room's name before the short ID, not after: IDs then sort alike in every room (state resolution breaks
  // ties by event ID), so every room's copy resolves its fork alike.
  const id = (short: string) => `$${room.slice(1, room.indexOf(':'))}~${short}`;
  return SCENARIO.map(({ fields, options }) => {
    const event = makeEvent({
      ...fields, id: id(fields.id), room, prev: (fields.prev ?? []).map(id), ...(fields.redacts ? { redacts: id(fields.redacts) } : {}),
      depth: SCENARIO.findIndex((x) => x.fields.id === fields.id) + 1,
    });
    // A client transaction belongs to one event: each room's copy of the scenario gets its own.
    if (!options) return { event };
    const own = { ...options, ...(options.stateBefore ? { stateBefore: options.stateBefore.map(id) } : {}) };
    return { event, options: own.transaction ? { ...own, transaction: { ...own.transaction, transactionID: `${own.transaction.transactionID}${room}` } } : own };
  });
}

/** A result with its NIDs named: comparable across rooms and stores. */
async function describeResults(storage: Storage, results: readonly AppendEventResult[], room: string) {
  const db = storage.roomserver;
  const prefix = `$${room.slice(1, room.indexOf(':'))}~`;
  const short = (id: string) => id.replace(prefix, '$');
  const names = async (nids: readonly EventNID[]) => {
    const ids = await db.eventIDs(nids.filter((n) => n !== 0));
    return nids.map((n) => (n === 0 ? '(none)' : short(ids.get(n)!)));
  };
  const stateOf = async (snapshot: StateSnapshotNID) => (snapshot === 0 ? 'unknown'
    : (await names((await db.loadStateAtSnapshot(snapshot)).map((e) => e.eventNID))).sort().join(' '));
  const out = [];
  for (const r of results) {
    out.push({
      event: (await names([r.stateAtEvent.eventNID]))[0],
      duplicate: r.duplicate,
      applied: r.applied,
      isRejected: r.stateAtEvent.isRejected,
      stateKey: r.stateAtEvent.eventStateKeyNID === 0 ? null : (await db.eventStateKeys([r.stateAtEvent.eventStateKeyNID])).get(r.stateAtEvent.eventStateKeyNID),
      before: await stateOf(r.stateAtEvent.beforeStateSnapshotNID),
      after: await stateOf(r.stateAfterSnapshotNID),
      retired: r.retiredInviteIDs.map(short),
      redaction: r.redaction ? [short(r.redaction.redactionEvent.eventID), short(r.redaction.redactedEventID)] : null,
    });
  }
  return out;
}

/** What a room looks like to a reader: latest events, current state, memberships, invites, every event's JSON. */
async function describeRoom(storage: Storage, room: string) {
  const db = storage.roomserver;
  const prefix = `$${room.slice(1, room.indexOf(':'))}~`;
  const short = (text: string) => text.replaceAll(prefix, '$').replaceAll(room, '!R');
  const info = (await db.roomInfo(room))!;
  const latest = await db.latestEventIDs(info.roomNID);
  const state = await db.currentState(room);
  const stateIDs = await db.eventIDs(state.map((e) => e.eventNID));
  const users = ['@alice:example.org', '@bob:remote.net', '@carol:example.org', '@dave:example.org', '@erin:remote.net', '@frank:example.org', '@gina:example.org'];
  const memberships = [];
  for (const u of users) {
    const m = await db.getMembership(info.roomNID, u);
    const [userNID] = (await db.eventStateKeyNIDs([u])).values();
    const invites = await db.getInvitesForUser(info.roomNID, userNID!);
    memberships.push([u, m.stillInRoom, m.membershipEventNID === 0 ? '(none)' : short((await db.eventIDs([m.membershipEventNID])).get(m.membershipEventNID)!), invites.eventIDs.map(short)]);
  }
  const ids = [...new Set(roomSteps(room).map((s) => s.event.eventID))];
  const stored = await db.eventsFromIDs(ids);
  return {
    version: info.roomVersion,
    latest: latest.eventIDs.map(short).sort(),
    depth: latest.depth,
    state: [...stateIDs.values()].map(short).sort(),
    memberships,
    joined: (await db.getMembershipEventNIDsForRoom(info.roomNID, true, false)).length,
    events: stored.map((s) => [short(s.event.eventID), short(s.event.json)]).sort(),
  };
}

/** appendEvents: the batch input path, against appendEvent one by one. */
export function databaseAppendBatchTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Database: appending batches', (test) => {
    test('appendEvents gives each event the result appendEvent gives it one by one, whatever the batches', async ({ storage }) => {
      const db = storage.roomserver;
      const oneByOne = '!single:example.org';
      const single: AppendEventResult[] = [];
      for (const { event, options } of roomSteps(oneByOne)) single.push(await db.appendEvent(event, options));
      const expected = { results: await describeResults(storage, single, oneByOne), room: await describeRoom(storage, oneByOne) };
      // The rules were really exercised (otherwise equality would prove little).
      expect(expected.results.filter((r) => !r.applied).map((r) => r.event)).to.deep.equal(['$rejected', '$m2', '$sent']);
      expect(expected.results.filter((r) => r.duplicate).map((r) => r.event)).to.deep.equal(['$m2', '$sent']);
      expect(expected.results.flatMap((r) => r.retired)).to.deep.equal(['$invite-carol', '$invite-dave']);
      expect(expected.results.flatMap((r) => (r.redaction ? [r.redaction.join('>')] : []))).to.deep.equal(['$r1>$m1', '$r2>$m3', '$r3>$power']);
      // The late event's child came first, with its state supplied: it stayed a forward extremity, and the late event,
      // named by it, took frank's place without becoming one.
      expect(expected.room.latest).to.deep.equal(['$alice-again']);

      for (const [room, sizes] of [['!whole:example.org', [SCENARIO.length]], ['!pieces:example.org', [3, 1, 9, 2, 7, 30]], ['!pairs:example.org', Array(20).fill(2)]] as const) {
        const steps = roomSteps(room);
        const results: AppendEventResult[] = [];
        let at = 0;
        for (const size of sizes) {
          if (at >= steps.length) break;
          results.push(...await db.appendEvents(steps.slice(at, at + size)));
          at += size;
        }
        expect(results, room).to.have.length(steps.length);
        expect(await describeResults(storage, results, room), `${room}: results`).to.deep.equal(expected.results);
        expect(await describeRoom(storage, room), `${room}: the room`).to.deep.equal(expected.room);
      }
    });

    test('a batch appended again is all duplicates, applies nothing and changes nothing', async ({ storage }) => {
      const db = storage.roomserver;
      const steps = roomSteps('!again:example.org');
      await db.appendEvents(steps);
      const before = await storage.stats.fingerprint();
      const again = await db.appendEvents(steps);
      expect(again.every((r) => r.duplicate)).to.equal(true);
      expect(again.filter((r) => r.applied)).to.deep.equal([]);
      expect(await storage.stats.fingerprint()).to.equal(before);
    });

    test('the same event twice in one batch is stored once; the second is a duplicate that is not applied again', async ({ storage }) => {
      const db = storage.roomserver;
      const [create, alice] = roomSteps('!twice:example.org').map((s) => s.event);
      const [a, b, c] = await db.appendEvents([create!, alice!, alice!]);
      expect([a!.duplicate, b!.duplicate, c!.duplicate]).to.deep.equal([false, false, true]);
      expect([a!.applied, b!.applied, c!.applied]).to.deep.equal([true, true, false]);
      expect(c!.stateAtEvent).to.deep.equal(b!.stateAtEvent);
      expect(c!.stateAfterSnapshotNID).to.equal(b!.stateAfterSnapshotNID);
      expect((await storage.stats.collect()).events).to.equal(2);
    });

    test('events of several rooms in one call are grouped by room, each room as if appended alone', async ({ storage }) => {
      const db = storage.roomserver;
      const rooms = ['!mixed-a:example.org', '!mixed-b:example.org', '!mixed-c:example.org'];
      const steps = rooms.map(roomSteps);
      // Interleaved: a, b, c, a, b, c, ...
      const interleaved = steps[0]!.flatMap((_, i) => steps.map((s) => s[i]!));
      const results = await db.appendEvents(interleaved);
      const alone = '!mixed-alone:example.org';
      const single: AppendEventResult[] = [];
      for (const { event, options } of roomSteps(alone)) single.push(await db.appendEvent(event, options));
      const expected = { results: await describeResults(storage, single, alone), room: await describeRoom(storage, alone) };
      rooms.forEach((room, r) => expect(results.filter((_, i) => i % rooms.length === r).every((x) => x.roomNID === results[r]!.roomNID), room).to.equal(true));
      for (const [r, room] of rooms.entries()) {
        const own = results.filter((_, i) => i % rooms.length === r);
        expect(await describeResults(storage, own, room), `${room}: results`).to.deep.equal(expected.results);
        expect(await describeRoom(storage, room), `${room}: the room`).to.deep.equal(expected.room);
      }
    });

    test('a malformed event refuses the whole batch: InvalidInputError naming its index, nothing written', async ({ storage }) => {
      const db = storage.roomserver;
      const steps = roomSteps('!bad:example.org');
      await db.appendEvents(steps.slice(0, 3));
      const before = await storage.stats.fingerprint();
      const bad = { ...steps[4]!.event, depth: -1 };
      const e = await rejects(db.appendEvents([steps[3]!, bad, steps[5]!]), InvalidInputError, /depth/) as StorageError;
      expect(e.eventIndex).to.equal(1);
      const e2 = await rejects(db.appendEvents([steps[3]!, { event: steps[4]!.event, options: { isRejected: 'yes' as never } }]), InvalidInputError, /isRejected/) as StorageError;
      expect(e2.eventIndex).to.equal(1);
      await rejects(db.appendEvents('not a list' as never), InvalidInputError, /events must be an array/);
      expect(await storage.stats.fingerprint()).to.equal(before);
    });

    test('a refused event refuses the whole batch: its own error, its index, and nothing written, not even a new room', async ({ storage }) => {
      const db = storage.roomserver;
      const [create, alice, power] = roomSteps('!first:example.org').map((s) => s.event);
      await db.appendEvents([create!, alice!]);
      const before = await storage.stats.fingerprint();
      const other = roomSteps('!second:example.org').map((s) => s.event);
      // Index 2 is an event ID already stored in another room.
      const stolen = makeEvent({ id: alice!.eventID, room: '!second:example.org', prev: [other[1]!.eventID] });
      const e = await rejects(db.appendEvents([other[0]!, other[1]!, stolen, other[2]!]), ConflictError, /another room/) as StorageError;
      expect(e.eventIndex).to.equal(2);
      // Index 1 goes into a room nobody stored, without saying its version.
      const versionless = { ...makeEvent({ id: '$nowhere', room: '!nowhere:example.org' }), roomVersion: undefined };
      const e2 = await rejects(db.appendEvents([power!, versionless]), InvalidInputError, /room version/) as StorageError;
      expect(e2.eventIndex).to.equal(1);
      // Index 1 reuses a client transaction that index 0 used for another event.
      const key = { transactionID: 't', sessionID: 1, userID: '@alice:example.org' };
      const e3 = await rejects(db.appendEvents([{ event: power!, options: { transaction: key } }, { event: other[3]!, options: { transaction: key } }]), ConflictError, /already sent/) as StorageError;
      expect(e3.eventIndex).to.equal(1);
      expect(await storage.stats.fingerprint()).to.equal(before);
      expect(await db.roomInfo('!second:example.org')).to.equal(null);
      // appendEvent reports no index: it is not a batch.
      const single = await rejects(db.appendEvent(stolen), ConflictError, /another room/) as StorageError;
      expect(single.eventIndex).to.equal(undefined);
    });

    test('an empty batch is an empty answer; more than 1,000 events is refused before anything is read', async ({ storage }) => {
      const db = storage.roomserver;
      expect(await db.appendEvents([])).to.deep.equal([]);
      const many = Array.from({ length: 1001 }, (_, i) => makeEvent({ id: `$many${i}`, room: '!many:example.org' }));
      await rejects(db.appendEvents(many), InvalidInputError, /at most 1000 events/);
      expect(await db.roomInfo('!many:example.org')).to.equal(null);
    });

    test('concurrent batches on one room: each event applies once and the room ends as one serial order leaves it', async ({ storage }) => {
      const db = storage.roomserver;
      const steps = roomSteps('!busy:example.org');
      await db.appendEvents(steps.slice(0, 2));
      const rest = steps.slice(2);
      // Four writers append the same events at once, as importers of one file would, in different batch sizes.
      const writer = async (size: number) => {
        const results: AppendEventResult[] = [];
        for (let at = 0; at < rest.length; at += size) results.push(...await db.appendEvents(rest.slice(at, at + size)));
        return results;
      };
      const all = await Promise.all([writer(5), writer(8), writer(3), writer(36)]);
      // Each event applies once across the writers, except those that apply nowhere (see the one-by-one case).
      const appliedCount = new Map<EventNID, number>();
      for (const results of all) for (const r of results) if (r.applied) appliedCount.set(r.stateAtEvent.eventNID, (appliedCount.get(r.stateAtEvent.eventNID) ?? 0) + 1);
      expect([...appliedCount.values()].every((n) => n === 1)).to.equal(true);
      const serial = '!serial:example.org';
      for (const { event, options } of roomSteps(serial)) await db.appendEvent(event, options);
      expect(JSON.stringify(await describeRoom(storage, '!busy:example.org'), null, 1)).to.equal(JSON.stringify(await describeRoom(storage, serial), null, 1));
    });
  });
}

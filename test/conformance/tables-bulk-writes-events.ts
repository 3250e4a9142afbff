import { expect } from 'chai';
import type { Storage } from '../../src/index.js';
import type { StoredEventRow } from '../../src/storage/tables/index.js';
import { ConflictError, NotFoundError } from '../../src/types/errors.js';
import {
  asEventNID, asEventStateKeyNID, asEventTypeNID, asStateSnapshotNID, type EventNID,
} from '../../src/types/nids.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { rejects } from './fixtures.js';
import { ascending, HOSTILE_EVENT_IDS, isPositive, LOOKALIKE_EVENT_IDS, rolledBack } from './bulk-write-fixtures.js';

/*
 * The batch write path's set-based methods on the event tables: events (NID reservation, bulk inserts and reads),
 * event_json, previous_events and redactions.
 */

const MEMBER = asEventTypeNID(5);
const NOT_STATE = asEventStateKeyNID(0);
const EMPTY_KEY = asEventStateKeyNID(1);

const missingNID = (...known: number[]) => asEventNID(Math.max(0, ...known) + 1_000_000);

/** What a case needs to write event rows: two rooms and a message type. */
async function eventSetup(storage: Storage) {
  const tx = storage.unitOfWork.autocommit;
  const room = await storage.tables.rooms.insertRoomNID(tx, '!bulk:example.org', '10');
  const other = await storage.tables.rooms.insertRoomNID(tx, '!other:example.org', '10');
  const message = await storage.tables.eventTypes.insertEventTypeNID(tx, 'm.room.message');
  const alice = await storage.tables.eventStateKeys.insertEventStateKeyNID(tx, '@alice:example.org');
  const row = (fields: Partial<StoredEventRow> & { eventNID: EventNID; eventID: string }): StoredEventRow => ({
    roomNID: room, eventTypeNID: message, eventStateKeyNID: NOT_STATE, authEventNIDs: [], depth: 1, isRejected: false,
    stateSnapshotNID: asStateSnapshotNID(0), ...fields,
  });
  return { tx, room, other, message, alice, row };
}

/** Everything the events table tells about a stored event, as plain values (NotFoundError if missing). */
async function readEvent(storage: Storage, eventID: string) {
  const events = storage.tables.events;
  const tx = storage.unitOfWork.autocommit;
  const { eventNID, roomNID, stateSnapshotNID } = await events.selectEvent(tx, eventID);
  const [ref] = await events.bulkSelectStateAtEventAndReference(tx, [eventNID]);
  return {
    eventID: ref!.eventID, eventNID, roomNID, stateSnapshotNID, eventTypeNID: ref!.eventTypeNID, eventStateKeyNID: ref!.eventStateKeyNID,
    beforeStateSnapshotNID: ref!.beforeStateSnapshotNID, isRejected: ref!.isRejected,
    depth: (await events.selectMaxEventDepth(tx, [eventNID])) - 1,
    idByNID: await events.selectEventID(tx, eventNID),
  };
}

export function bulkWriteEventTableTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Table: events (batch writes)', (test) => {
    test('reserveEventNIDsFor: one fresh NID per distinct new ID, none for stored IDs, ascending, never handed out before', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, row } = await eventSetup(storage);
      const handedOut: number[] = [];
      // Stored events, under NIDs from both reservation methods.
      const [s1, s2] = await events.reserveEventNIDsFor(tx, ['$stored-1', '$stored-2']);
      handedOut.push(s1!, s2!);
      const s3 = await events.reserveEventNID(tx);
      handedOut.push(s3);
      expect(await events.bulkInsertEvents(tx, [row({ eventNID: s1!, eventID: '$stored-1' }), row({ eventNID: s2!, eventID: '$stored-2' })])).to.equal(undefined);
      await events.insertEvent(tx, { ...row({ eventNID: s3, eventID: '$stored-3' }) });
      // Three distinct new IDs, two of them repeated, among the stored ones.
      const asked = ['$new-b', '$stored-1', '$new-a', '$new-b', '$stored-3', '$new-c', '$new-a', '$stored-2'];
      const got = await events.reserveEventNIDsFor(tx, asked);
      expect(got, 'one NID per distinct new ID').to.have.length(3);
      for (const nid of got) expect(isPositive(nid), `NID ${nid}`).to.equal(true);
      expect(got, 'ascending').to.deep.equal(ascending(got));
      expect(new Set(got).size, 'distinct').to.equal(got.length);
      for (const nid of got) expect(handedOut, `NID ${nid} was handed out before`).to.not.include(nid);
      handedOut.push(...got);
      // Only stored IDs: no NIDs.
      expect(await events.reserveEventNIDsFor(tx, ['$stored-2', '$stored-1', '$stored-3', '$stored-1'])).to.deep.equal([]);
      // Reserved but never inserted is not stored: asking again gives new NIDs.
      const again = await events.reserveEventNIDsFor(tx, ['$new-a', '$new-b', '$new-c']);
      expect(again).to.have.length(3);
      expect(again).to.deep.equal(ascending(again));
      for (const nid of again) expect(handedOut, `NID ${nid} was handed out before`).to.not.include(nid);
      handedOut.push(...again);
      // Later reservations of either kind never return one of these.
      handedOut.push(await events.reserveEventNID(tx));
      handedOut.push(...await events.reserveEventNIDsFor(tx, ['$later']));
      expect(new Set(handedOut).size, 'no NID handed out twice').to.equal(handedOut.length);
    });

    test('reserveEventNIDsFor of no IDs is no NIDs, in and out of transactions; reservation goes on after it', async ({ storage }) => {
      const events = storage.tables.events;
      const tx = storage.unitOfWork.autocommit;
      expect(await events.reserveEventNIDsFor(tx, [])).to.deep.equal([]);
      expect(await storage.unitOfWork.transaction((inTx) => events.reserveEventNIDsFor(inTx, []))).to.deep.equal([]);
      const before = await events.reserveEventNID(tx);
      expect(await events.reserveEventNIDsFor(tx, [])).to.deep.equal([]);
      const [after] = await events.reserveEventNIDsFor(tx, ['$one']);
      expect(after).to.be.greaterThan(before);
    });

    test('reserveEventNIDsFor in transactions and from concurrent callers: every NID distinct, each call ascending', async ({ storage }) => {
      const events = storage.tables.events;
      const tx = storage.unitOfWork.autocommit;
      const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `$${prefix}-${i}`);
      const inTx = await storage.unitOfWork.transaction(async (t) => [
        await events.reserveEventNIDsFor(t, ids('tx-a', 4)), await events.reserveEventNIDsFor(t, ids('tx-b', 3)),
      ]);
      // The same IDs from several callers at once: NIDs are for this call's rows, never shared between calls.
      const concurrent = await Promise.all([
        events.reserveEventNIDsFor(tx, ids('c', 10)),
        events.reserveEventNIDsFor(tx, [...ids('c', 10)].reverse()),
        storage.unitOfWork.transaction((t) => events.reserveEventNIDsFor(t, ids('c', 10))),
        events.reserveEventNIDsFor(tx, ids('d', 5)),
        storage.unitOfWork.transaction((t) => events.reserveEventNIDsFor(t, ids('e', 6))),
      ]);
      const calls = [...inTx, ...concurrent];
      expect(calls.map((c) => c.length)).to.deep.equal([4, 3, 10, 10, 10, 5, 6]);
      for (const c of calls) expect(c).to.deep.equal(ascending(c));
      const all = calls.flat();
      for (const nid of all) expect(isPositive(nid), `NID ${nid}`).to.equal(true);
      expect(new Set(all).size, 'no NID handed out twice').to.equal(all.length);
      // Within one transaction, NIDs keep rising from call to call.
      expect(Math.min(...inTx[1]!)).to.be.greaterThan(Math.max(...inTx[0]!));
    });

    test('reserveEventNIDsFor counts hostile IDs exactly: % and _ are not wildcards, variants are distinct IDs', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, row } = await eventSetup(storage);
      const nids = await events.reserveEventNIDsFor(tx, HOSTILE_EVENT_IDS);
      expect(nids, 'every hostile ID is its own new ID').to.have.length(HOSTILE_EVENT_IDS.length);
      expect(await events.bulkInsertEvents(tx, HOSTILE_EVENT_IDS.map((id, i) => row({ eventNID: nids[i]!, eventID: id })))).to.equal(undefined);
      expect(await events.reserveEventNIDsFor(tx, HOSTILE_EVENT_IDS), 'all of them are stored now').to.deep.equal([]);
      // Lookalikes are new IDs, each counted once.
      const lookalikes = await events.reserveEventNIDsFor(tx, [...LOOKALIKE_EVENT_IDS, ...HOSTILE_EVENT_IDS, ...LOOKALIKE_EVENT_IDS]);
      expect(lookalikes).to.have.length(LOOKALIKE_EVENT_IDS.length);
      for (const nid of lookalikes) expect(nids).to.not.include(nid);
    });

    test('bulkInsertEvents stores every field of each row, as insertEvent + updateEventState would', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, other, message, alice, row } = await eventSetup(storage);
      const shapes = [
        { roomNID: room, eventTypeNID: message, eventStateKeyNID: NOT_STATE, depth: 3, isRejected: false, stateSnapshotNID: asStateSnapshotNID(0) },
        { roomNID: other, eventTypeNID: MEMBER, eventStateKeyNID: alice, depth: 0, isRejected: true, stateSnapshotNID: asStateSnapshotNID(7) },
        { roomNID: room, eventTypeNID: asEventTypeNID(1), eventStateKeyNID: EMPTY_KEY, depth: 2 ** 40, isRejected: false, stateSnapshotNID: asStateSnapshotNID(2 ** 40 + 3) },
      ];
      const bulkNIDs = await events.reserveEventNIDsFor(tx, shapes.map((_, i) => `$bulk-${i}`));
      const singleNIDs = await events.reserveEventNIDsFor(tx, shapes.map((_, i) => `$single-${i}`));
      // Written in reverse NID order: the rows are keyed by their own NIDs, whatever order they come in.
      const rows = shapes.map((s, i) => row({ ...s, eventNID: bulkNIDs[i]!, eventID: `$bulk-${i}`, authEventNIDs: singleNIDs.slice(0, i) })).reverse();
      expect(await events.bulkInsertEvents(tx, rows)).to.equal(undefined);
      for (const [i, s] of shapes.entries()) {
        const { stateSnapshotNID, ...fields } = s;
        await events.insertEvent(tx, { ...fields, eventNID: singleNIDs[i]!, eventID: `$single-${i}`, authEventNIDs: bulkNIDs.slice(0, i) });
        if (stateSnapshotNID !== 0) await events.updateEventState(tx, singleNIDs[i]!, stateSnapshotNID);
      }
      for (const [i, s] of shapes.entries()) {
        const bulk = await readEvent(storage, `$bulk-${i}`);
        expect(bulk).to.deep.equal({
          eventID: `$bulk-${i}`, eventNID: bulkNIDs[i], roomNID: s.roomNID, stateSnapshotNID: s.stateSnapshotNID, eventTypeNID: s.eventTypeNID,
          eventStateKeyNID: s.eventStateKeyNID, beforeStateSnapshotNID: s.stateSnapshotNID, isRejected: s.isRejected, depth: s.depth, idByNID: `$bulk-${i}`,
        });
        const single = await readEvent(storage, `$single-${i}`);
        expect({ ...bulk, eventID: '', eventNID: 0, idByNID: '' }, `shape ${i}: bulk and single-row inserts agree`)
          .to.deep.equal({ ...single, eventID: '', eventNID: 0, idByNID: '' });
      }
      expect(await events.bulkSelectEventNID(tx, ['$bulk-0', '$bulk-1', '$bulk-2']))
        .to.deep.equal(new Map([['$bulk-0', bulkNIDs[0]], ['$bulk-1', bulkNIDs[1]], ['$bulk-2', bulkNIDs[2]]]));
      expect(await events.selectRoomsWithEventTypeNID(tx, MEMBER)).to.deep.equal([other]);
    });

    test('bulkInsertEvents refuses a call naming a stored ID with a ConflictError, storing none of its rows; [] is a no-op', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, other, message, alice, row } = await eventSetup(storage);
      expect(await events.bulkInsertEvents(tx, [])).to.equal(undefined);
      expect(await storage.unitOfWork.transaction((t) => events.bulkInsertEvents(t, []))).to.equal(undefined);
      const [a, b] = await events.reserveEventNIDsFor(tx, ['$a', '$b']);
      await events.insertEvent(tx, { ...row({ eventNID: a!, eventID: '$a', eventTypeNID: MEMBER, eventStateKeyNID: alice, depth: 4 }) });
      await events.updateEventState(tx, a!, asStateSnapshotNID(9));
      expect(await events.bulkInsertEvents(tx, [row({ eventNID: b!, eventID: '$b', depth: 6, stateSnapshotNID: asStateSnapshotNID(3) })])).to.equal(undefined);
      const before = { a: await readEvent(storage, '$a'), b: await readEvent(storage, '$b') };
      // Fresh NIDs for the lot, as a writer that reserved them before another writer stored $a and $b would hold.
      const [f1, f2] = await events.reserveEventNIDsFor(tx, ['$a', '$new-1', '$b', '$new-2']) as [EventNID, EventNID];
      const [fa, fb] = [await events.reserveEventNID(tx), await events.reserveEventNID(tx)];
      const lot = [
        row({ eventNID: f1, eventID: '$new-1', depth: 2 }),
        row({ eventNID: fa, eventID: '$a', roomNID: other, eventTypeNID: message, depth: 50, isRejected: true, stateSnapshotNID: asStateSnapshotNID(1) }),
        row({ eventNID: fb, eventID: '$b', roomNID: other, depth: 51 }),
        row({ eventNID: f2, eventID: '$new-2', depth: 3, stateSnapshotNID: asStateSnapshotNID(4) }),
      ];
      // In a transaction: the error fails it, and nothing of the call is stored.
      await rejects(storage.unitOfWork.transaction((t) => events.bulkInsertEvents(t, lot)), ConflictError, /\$a|already exists/);
      expect(await readEvent(storage, '$a'), 'the stored row is kept as it was').to.deep.equal(before.a);
      expect(await readEvent(storage, '$b'), 'the stored row is kept as it was').to.deep.equal(before.b);
      await rejects(events.selectEventID(tx, fa), NotFoundError);
      await rejects(events.selectEventID(tx, fb), NotFoundError);
      expect((await events.selectRoomNIDsForEventNIDs(tx, [fa, fb])).size).to.equal(0);
      expect(await events.selectRoomsWithEventTypeNID(tx, message)).to.deep.equal([room]);
      // On its own (autocommit) likewise: an engine without transactions refuses the call before it writes.
      await rejects(events.bulkInsertEvents(tx, lot), ConflictError);
      expect((await events.bulkSelectEventsByID(tx, ['$new-1', '$new-2'])).size).to.equal(0);
      await rejects(events.selectEventID(tx, f2), NotFoundError);
    });

    test('a transaction\'s last writes (UnitOfWork.lastWrites) decide it: one fails, nothing of the transaction commits and it rejects with that error', async ({ storage }) => {
      const events = storage.tables.events;
      const uow = storage.unitOfWork;
      const { tx, row } = await eventSetup(storage);
      const [stored] = await events.reserveEventNIDsFor(tx, ['$stored']);
      await events.bulkInsertEvents(tx, [row({ eventNID: stored!, eventID: '$stored' })]);
      const [fresh] = await events.reserveEventNIDsFor(tx, ['$fresh']);
      const [again] = await events.reserveEventNIDsFor(tx, ['$again']);
      await rejects(uow.transaction(async (t) => {
        await storage.tables.eventTypes.insertEventTypeNID(t, 'org.example.before-last');
        uow.lastWrites(t, events.bulkInsertEvents(t, [row({ eventNID: fresh!, eventID: '$fresh' }), row({ eventNID: again!, eventID: '$stored' })]));
        return 'returned before its last writes were answered';
      }), ConflictError);
      const typeKept = (await storage.tables.eventTypes.bulkSelectEventTypeNID(tx, ['org.example.before-last'])).size;
      // Without atomic transactions (Cosmos DB) the writes before stay; with, none of it. The refused call itself
      // stores none of its rows either way.
      expect(typeKept).to.equal(uow.atomicTransactions ? 0 : 1);
      expect((await events.bulkSelectEventsByID(tx, ['$fresh'])).size).to.equal(0);
      // Last writes that succeed: the transaction commits them and returns what fn returned.
      const result = await uow.transaction(async (t) => {
        uow.lastWrites(t, events.bulkInsertEvents(t, [row({ eventNID: fresh!, eventID: '$fresh' })]));
        return 'done';
      });
      expect(result).to.equal('done');
      expect((await events.bulkSelectEventsByID(tx, ['$fresh'])).get('$fresh')?.eventNID).to.equal(fresh);
    });

    test('bulkInsertEvents with an ID twice in one call is a ConflictError that stores none of the rows', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, row } = await eventSetup(storage);
      const [n1, n2, n3] = [await events.reserveEventNID(tx), await events.reserveEventNID(tx), await events.reserveEventNID(tx)];
      await rejects(events.bulkInsertEvents(tx, [
        row({ eventNID: n1, eventID: '$twice', depth: 10 }),
        row({ eventNID: n2, eventID: '$once', depth: 20 }),
        row({ eventNID: n3, eventID: '$twice', depth: 30, isRejected: true }),
      ]), ConflictError);
      expect((await events.bulkSelectEventsByID(tx, ['$twice', '$once'])).size).to.equal(0);
      for (const n of [n1, n2, n3]) await rejects(events.selectEventID(tx, n), NotFoundError);
    });

    test('bulkSelectEventsByID agrees with selectEvent for every stored ID, omits missing ones, and takes repeats and []', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, other, row, message } = await eventSetup(storage);
      const ids = ['$e1', '$e2', '$e3'];
      const nids = await events.reserveEventNIDsFor(tx, ids);
      await events.bulkInsertEvents(tx, [
        row({ eventNID: nids[0]!, eventID: '$e1' }),
        row({ eventNID: nids[1]!, eventID: '$e2', roomNID: other, stateSnapshotNID: asStateSnapshotNID(5) }),
      ]);
      await events.insertEvent(tx, { ...row({ eventNID: nids[2]!, eventID: '$e3' }) });
      await events.updateEventState(tx, nids[2]!, asStateSnapshotNID(6));
      const reservedOnly = await events.reserveEventNIDsFor(tx, ['$reserved-only']);
      expect(reservedOnly).to.have.length(1);
      const got = await events.bulkSelectEventsByID(tx, ['$e3', '$missing', '$e1', '$e3', '$reserved-only', '$E1', '$e2']);
      const expected = new Map<string, unknown>();
      for (const id of ids) {
        const [at] = await events.bulkSelectStateAtEventAndReference(tx, [(await events.selectEvent(tx, id)).eventNID]);
        expected.set(id, {
          ...await events.selectEvent(tx, id), eventTypeNID: at!.eventTypeNID, eventStateKeyNID: at!.eventStateKeyNID, isRejected: at!.isRejected,
        });
      }
      expect(got).to.deep.equal(expected);
      const rest = { eventTypeNID: message, eventStateKeyNID: NOT_STATE, isRejected: false };
      expect(got.get('$e1')).to.deep.equal({ eventNID: nids[0], roomNID: room, stateSnapshotNID: 0, ...rest });
      expect(got.get('$e2')).to.deep.equal({ eventNID: nids[1], roomNID: other, stateSnapshotNID: 5, ...rest });
      expect(got.get('$e3')).to.deep.equal({ eventNID: nids[2], roomNID: room, stateSnapshotNID: 6, ...rest });
      // It reads the current row: a later state update shows.
      await events.updateEventState(tx, nids[0]!, asStateSnapshotNID(8));
      expect((await events.bulkSelectEventsByID(tx, ['$e1'])).get('$e1')!.stateSnapshotNID).to.equal(8);
      expect((await events.bulkSelectEventsByID(tx, [])).size).to.equal(0);
      expect((await events.bulkSelectEventsByID(tx, ['$missing', '$reserved-only'])).size).to.equal(0);
      expect((await storage.unitOfWork.transaction((t) => events.bulkSelectEventsByID(t, ['$e2', '$nope']))).get('$e2')!.roomNID).to.equal(other);
    });

    test('hostile event IDs round-trip through bulkInsertEvents and bulkSelectEventsByID exactly; lookalikes are not found', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, row } = await eventSetup(storage);
      const nids = await events.reserveEventNIDsFor(tx, HOSTILE_EVENT_IDS);
      expect(await events.bulkInsertEvents(tx, HOSTILE_EVENT_IDS.map((id, i) => row({ eventNID: nids[i]!, eventID: id, depth: i })))).to.equal(undefined);
      const got = await events.bulkSelectEventsByID(tx, [...HOSTILE_EVENT_IDS, ...LOOKALIKE_EVENT_IDS]);
      expect(got.size).to.equal(HOSTILE_EVENT_IDS.length);
      for (const [i, id] of HOSTILE_EVENT_IDS.entries()) {
        expect(got.get(id)?.eventNID, JSON.stringify(id.slice(0, 40))).to.equal(nids[i]);
        const { eventNID, roomNID, stateSnapshotNID } = got.get(id)!;
        expect(await events.selectEvent(tx, id), JSON.stringify(id.slice(0, 40))).to.deep.equal({ eventNID, roomNID, stateSnapshotNID });
        expect(await events.selectEventID(tx, nids[i]!) === id, JSON.stringify(id.slice(0, 40))).to.equal(true);
      }
      for (const id of LOOKALIKE_EVENT_IDS) await rejects(events.selectEvent(tx, id), NotFoundError);
      // Stored already, each of them, however it is spelt in the call.
      const again = await events.reserveEventNIDsFor(tx, HOSTILE_EVENT_IDS);
      expect(again).to.deep.equal([]);
      const extra = await events.reserveEventNIDsFor(tx, HOSTILE_EVENT_IDS.map((_, i) => `$fresh-${i}`));
      await rejects(events.bulkInsertEvents(tx, HOSTILE_EVENT_IDS.map((id, i) => row({ eventNID: extra[i]!, eventID: id }))), ConflictError);
    });

    test('bulkInsertEvents in a transaction: visible inside, kept on commit, gone on rollback (SQL)', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, row } = await eventSetup(storage);
      const seenInside = await storage.unitOfWork.transaction(async (t) => {
        const nids = await events.reserveEventNIDsFor(t, ['$c1', '$c2']);
        expect(await events.bulkInsertEvents(t, [row({ eventNID: nids[0]!, eventID: '$c1' }), row({ eventNID: nids[1]!, eventID: '$c2' })])).to.equal(undefined);
        return events.bulkSelectEventsByID(t, ['$c1', '$c2']);
      });
      expect(seenInside.size).to.equal(2);
      expect(await events.bulkSelectEventsByID(tx, ['$c1', '$c2'])).to.deep.equal(seenInside);
      let reserved: EventNID[] = [];
      await rolledBack(storage, async (t) => {
        reserved = await events.reserveEventNIDsFor(t, ['$r1', '$r2', '$c1']);
        expect(reserved).to.have.length(2);
        expect(await events.bulkInsertEvents(t, [row({ eventNID: reserved[0]!, eventID: '$r1' }), row({ eventNID: reserved[1]!, eventID: '$r2' })])).to.equal(undefined);
        expect((await events.bulkSelectEventsByID(t, ['$r1', '$r2'])).size, 'visible inside the transaction').to.equal(2);
      });
      if (storage.unitOfWork.atomicTransactions) {
        expect((await events.bulkSelectEventsByID(tx, ['$r1', '$r2'])).size, 'rolled back').to.equal(0);
        await rejects(events.selectEvent(tx, '$r1'), NotFoundError);
        expect((await events.selectRoomNIDsForEventNIDs(tx, reserved)).size).to.equal(0);
        expect(await events.reserveEventNIDsFor(tx, ['$r1', '$r2'])).to.have.length(2);
      }
      // Else (Cosmos DB, no rollback): the rows written before the failure stay; the write path orders its writes
      // so that this is safe, and there is nothing to assert about a rollback here.
      expect((await events.bulkSelectEventsByID(tx, ['$c1', '$c2'])).size, 'the committed rows are untouched').to.equal(2);
    });
  });

  group(fw, driver, 'Table: event_json (batch writes)', (test) => {
    test('bulkInsertEventJSON stores each text verbatim, as insertEventJSON does; [] is a no-op', async ({ storage }) => {
      const j = storage.tables.eventJSON;
      const tx = storage.unitOfWork.autocommit;
      await j.bulkInsertEventJSON(tx, []);
      await storage.unitOfWork.transaction((t) => j.bulkInsertEventJSON(t, []));
      const nids = await storage.tables.events.reserveEventNIDsFor(tx, ['$j1', '$j2', '$j3', '$j4']);
      const texts = [
        '{"z": 1,  "a":"caf\\u00e9 é 🎉", "n": 1.50, "a": "again",\n "q": "it\'s \\"x\\" 100%_"}',
        `{"long":"${'é'.repeat(30_000)}"}`,
        '{}',
        '{"sql":"\'; DROP TABLE roomserver_event_json; --","path":"a/b\\\\c?#"}',
      ];
      // The bulk call for two of them, the single call for the others: both read back the same way.
      await j.bulkInsertEventJSON(tx, [{ eventNID: nids[2]!, eventJSON: texts[2]! }, { eventNID: nids[0]!, eventJSON: texts[0]! }]);
      await j.insertEventJSON(tx, nids[1]!, texts[1]!);
      await j.insertEventJSON(tx, nids[3]!, texts[3]!);
      const got = await j.bulkSelectEventJSON(tx, nids);
      expect(got).to.have.length(4);
      for (const [i, nid] of nids.entries()) expect(got.find((p) => p.eventNID === nid)?.eventJSON === texts[i], `text ${i}`).to.equal(true);
      expect((await j.bulkSelectEventJSON(tx, [missingNID(...nids)]))).to.deep.equal([]);
    });

    test('bulkInsertEventJSON replaces existing JSON (UPSERT each); a NID twice in one call ends with the last text', async ({ storage }) => {
      const j = storage.tables.eventJSON;
      const tx = storage.unitOfWork.autocommit;
      const [a, b, c] = await storage.tables.events.reserveEventNIDsFor(tx, ['$a', '$b', '$c']) as [EventNID, EventNID, EventNID];
      await j.insertEventJSON(tx, a, '{"v":"a1"}');
      await j.bulkInsertEventJSON(tx, [{ eventNID: b, eventJSON: '{"v":"b1"}' }]);
      await j.bulkInsertEventJSON(tx, [
        { eventNID: a, eventJSON: '{"v":"a2"}' },
        { eventNID: c, eventJSON: '{"v":"c1"}' },
        { eventNID: c, eventJSON: '{"v":"c2"}' },
        { eventNID: a, eventJSON: '{"v":"a3"}' },
      ]);
      expect(await j.bulkSelectEventJSON(tx, [a, b, c])).to.deep.equal([
        { eventNID: a, eventJSON: '{"v":"a3"}' }, { eventNID: b, eventJSON: '{"v":"b1"}' }, { eventNID: c, eventJSON: '{"v":"c2"}' },
      ].sort((x, y) => x.eventNID - y.eventNID));
      // An upsert written by the bulk call is replaced by the single call and back.
      await j.insertEventJSON(tx, c, '{"v":"c3"}');
      await storage.unitOfWork.transaction((t) => j.bulkInsertEventJSON(t, [{ eventNID: c, eventJSON: '{"v":"c4"}' }, { eventNID: b, eventJSON: '{"v":"b2"}' }]));
      expect(await j.bulkSelectEventJSON(tx, [c, b])).to.deep.equal([
        { eventNID: b, eventJSON: '{"v":"b2"}' }, { eventNID: c, eventJSON: '{"v":"c4"}' },
      ].sort((x, y) => x.eventNID - y.eventNID));
      expect(await j.bulkSelectEventJSON(tx, [a])).to.deep.equal([{ eventNID: a, eventJSON: '{"v":"a3"}' }]);
    });

    test('bulkInsertEventJSON in a rolled-back transaction writes nothing and replaces nothing (SQL)', async ({ storage }) => {
      const j = storage.tables.eventJSON;
      const tx = storage.unitOfWork.autocommit;
      const [a, b] = await storage.tables.events.reserveEventNIDsFor(tx, ['$a', '$b']) as [EventNID, EventNID];
      await j.bulkInsertEventJSON(tx, [{ eventNID: a, eventJSON: '{"v":"kept"}' }]);
      await rolledBack(storage, async (t) => {
        await j.bulkInsertEventJSON(t, [{ eventNID: a, eventJSON: '{"v":"replaced"}' }, { eventNID: b, eventJSON: '{"v":"new"}' }]);
        expect(await j.bulkSelectEventJSON(t, [a, b]), 'visible inside the transaction').to.have.length(2);
      });
      if (storage.unitOfWork.atomicTransactions) {
        expect(await j.bulkSelectEventJSON(tx, [a, b])).to.deep.equal([{ eventNID: a, eventJSON: '{"v":"kept"}' }]);
      }
      // Else (Cosmos DB, no rollback): the upserts made before the failure stay; nothing to assert about a rollback.
    });
  });

  group(fw, driver, 'Table: previous_events (batch writes)', (test) => {
    const pair = (previousEventID: string, nid: number) => ({ previousEventID, eventNID: asEventNID(nid) });
    const references = async (storage: Storage, ids: readonly string[]) => {
      const got = await storage.tables.previousEvents.bulkSelectPreviousEventReferences(storage.unitOfWork.autocommit, ids);
      return new Map([...got].map(([id, nids]) => [id, ascending(nids)]));
    };

    test('bulkInsertPreviousEvents has set semantics: pairs repeated in one call or already stored are kept once', async ({ storage }) => {
      const p = storage.tables.previousEvents;
      const tx = storage.unitOfWork.autocommit;
      await p.bulkInsertPreviousEvents(tx, []);
      await storage.unitOfWork.transaction((t) => p.bulkInsertPreviousEvents(t, []));
      await p.insertPreviousEvent(tx, '$p1', asEventNID(10));
      await p.bulkInsertPreviousEvents(tx, [pair('$p1', 11), pair('$p2', 10)]);
      await p.bulkInsertPreviousEvents(tx, [pair('$p1', 10), pair('$p1', 12), pair('$p1', 11), pair('$p1', 12), pair('$p3', 13), pair('$p3', 13), pair('$p2', 10)]);
      await storage.unitOfWork.transaction((t) => p.bulkInsertPreviousEvents(t, [pair('$p1', 10), pair('$p2', 14)]));
      await p.insertPreviousEvent(tx, '$p3', asEventNID(13));
      expect(await references(storage, ['$p1', '$p2', '$p3'])).to.deep.equal(new Map([
        ['$p1', [10, 11, 12]], ['$p2', [10, 14]], ['$p3', [13]],
      ]));
      // What the bulk call stored, the single-row check sees, and the other way round.
      for (const id of ['$p1', '$p2', '$p3']) await p.selectPreviousEventExists(tx, id);
      await rejects(p.selectPreviousEventExists(tx, '$p4'), NotFoundError);
    });

    test('bulkSelectPreviousEventReferences: only IDs some event names, each with all its referrers; repeats and [] are fine', async ({ storage }) => {
      const p = storage.tables.previousEvents;
      const tx = storage.unitOfWork.autocommit;
      expect((await p.bulkSelectPreviousEventReferences(tx, [])).size).to.equal(0);
      expect((await p.bulkSelectPreviousEventReferences(tx, ['$nothing'])).size).to.equal(0);
      // Many events naming one ID, one event naming many.
      await p.bulkInsertPreviousEvents(tx, [pair('$root', 1), pair('$root', 2), pair('$root', 3), pair('$a', 3), pair('$b', 3), pair('$big', 2 ** 40 + 1)]);
      expect(await references(storage, ['$b', '$missing', '$root', '$b', '$a', '$big'])).to.deep.equal(new Map([
        ['$b', [3]], ['$root', [1, 2, 3]], ['$a', [3]], ['$big', [2 ** 40 + 1]],
      ]));
      expect(await references(storage, ['$ROOT', '$roo', '$root '])).to.deep.equal(new Map());
      const inTx = await storage.unitOfWork.transaction((t) => p.bulkSelectPreviousEventReferences(t, ['$a']));
      expect(inTx).to.deep.equal(new Map([['$a', [3]]]));
    });

    test('hostile previous event IDs are stored and matched exactly; % and _ are not wildcards', async ({ storage }) => {
      const p = storage.tables.previousEvents;
      const tx = storage.unitOfWork.autocommit;
      await p.bulkInsertPreviousEvents(tx, HOSTILE_EVENT_IDS.map((id, i) => pair(id, i + 1)));
      const got = await references(storage, [...HOSTILE_EVENT_IDS, ...LOOKALIKE_EVENT_IDS]);
      expect(got.size).to.equal(HOSTILE_EVENT_IDS.length);
      for (const [i, id] of HOSTILE_EVENT_IDS.entries()) {
        expect(got.get(id), JSON.stringify(id.slice(0, 40))).to.deep.equal([i + 1]);
        await p.selectPreviousEventExists(tx, id);
      }
      for (const id of LOOKALIKE_EVENT_IDS) await rejects(p.selectPreviousEventExists(tx, id), NotFoundError);
    });

    test('bulkInsertPreviousEvents in a rolled-back transaction leaves no reference (SQL)', async ({ storage }) => {
      const p = storage.tables.previousEvents;
      const tx = storage.unitOfWork.autocommit;
      await p.bulkInsertPreviousEvents(tx, [pair('$kept', 1)]);
      await rolledBack(storage, async (t) => {
        await p.bulkInsertPreviousEvents(t, [pair('$kept', 2), pair('$gone', 3)]);
        expect((await p.bulkSelectPreviousEventReferences(t, ['$gone'])).size, 'visible inside the transaction').to.equal(1);
      });
      if (storage.unitOfWork.atomicTransactions) {
        expect(await references(storage, ['$kept', '$gone'])).to.deep.equal(new Map([['$kept', [1]]]));
        await rejects(p.selectPreviousEventExists(tx, '$gone'), NotFoundError);
      }
      // Else (Cosmos DB, no rollback): the pairs written before the failure stay; nothing to assert about a rollback.
    });
  });

  group(fw, driver, 'Table: redactions (batch writes)', (test) => {
    test('bulkSelectRedactionInfoByEventsBeingRedacted gives each target its first stored redaction, as the single select does', async ({ storage }) => {
      const r = storage.tables.redactions;
      const tx = storage.unitOfWork.autocommit;
      expect((await r.bulkSelectRedactionInfoByEventsBeingRedacted(tx, [])).size).to.equal(0);
      expect((await r.bulkSelectRedactionInfoByEventsBeingRedacted(tx, ['$t1'])).size).to.equal(0);
      // Stored out of ID order, so that "first by ID" and "first stored" differ.
      await r.insertRedaction(tx, { redactionEventID: '$zz-first', redactsEventID: '$t1', validated: false });
      await r.insertRedaction(tx, { redactionEventID: '$aa-second', redactsEventID: '$t1', validated: true });
      await r.insertRedaction(tx, { redactionEventID: '$mm-only', redactsEventID: '$t2', validated: true });
      await storage.unitOfWork.transaction((t) => r.insertRedaction(t, { redactionEventID: '$bb-third', redactsEventID: '$t1', validated: true }));
      await r.insertRedaction(tx, { redactionEventID: '$t3-redaction', redactsEventID: '$t3', validated: false });
      await r.markRedactionValidated(tx, '$t3-redaction', true);
      const asked = ['$t2', '$missing', '$t1', '$t2', '$zz-first', '$t3', '$T1'];
      const got = await r.bulkSelectRedactionInfoByEventsBeingRedacted(tx, asked);
      expect(got).to.deep.equal(new Map([
        ['$t2', { redactionEventID: '$mm-only', redactsEventID: '$t2', validated: true }],
        ['$t1', { redactionEventID: '$zz-first', redactsEventID: '$t1', validated: false }],
        ['$t3', { redactionEventID: '$t3-redaction', redactsEventID: '$t3', validated: true }],
      ]));
      for (const id of asked) {
        const single = await r.selectRedactionInfoByEventBeingRedacted(tx, id);
        expect(got.get(id) ?? null, id).to.deep.equal(single);
      }
      expect(await storage.unitOfWork.transaction((t) => r.bulkSelectRedactionInfoByEventsBeingRedacted(t, ['$t1'])))
        .to.deep.equal(new Map([['$t1', { redactionEventID: '$zz-first', redactsEventID: '$t1', validated: false }]]));
    });

    test('hostile redacted event IDs are matched exactly; % and _ are not wildcards', async ({ storage }) => {
      const r = storage.tables.redactions;
      const tx = storage.unitOfWork.autocommit;
      for (const [i, id] of HOSTILE_EVENT_IDS.entries()) await r.insertRedaction(tx, { redactionEventID: `$redaction-${i}`, redactsEventID: id, validated: i % 2 === 0 });
      const got = await r.bulkSelectRedactionInfoByEventsBeingRedacted(tx, [...LOOKALIKE_EVENT_IDS, ...HOSTILE_EVENT_IDS]);
      expect(got.size).to.equal(HOSTILE_EVENT_IDS.length);
      for (const [i, id] of HOSTILE_EVENT_IDS.entries()) {
        const info = got.get(id);
        expect(info?.redactionEventID, JSON.stringify(id.slice(0, 40))).to.equal(`$redaction-${i}`);
        expect(info?.redactsEventID === id).to.equal(true);
        expect(info?.validated).to.equal(i % 2 === 0);
      }
    });
  });
}

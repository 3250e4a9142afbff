import { expect } from 'chai';
import type { Storage } from '../../src/index.js';
import { ConflictError, MissingEventError, MissingStateError, NotFoundError } from '../../src/types/errors.js';
import {
  asEventNID, asEventStateKeyNID, asEventTypeNID, asStateSnapshotNID,
  type EventNID, type EventStateKeyNID, type EventTypeNID, type RoomNID,
} from '../../src/types/nids.js';
import { compareTuples, type StateAtEvent, type StateEntry, type StateKeyTuple } from '../../src/types/state.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { rejects, triples } from './fixtures.js';

const CREATE = asEventTypeNID(1);
const POWER = asEventTypeNID(2);
const JOIN_RULES = asEventTypeNID(3);
const MEMBER = asEventTypeNID(5);
const EMPTY_KEY = asEventStateKeyNID(1);
const NOT_STATE = asEventStateKeyNID(0);

/** What a case needs to write event rows: a room, a message type, some user state keys. */
async function setup(storage: Storage) {
  const tx = storage.unitOfWork.autocommit;
  const room = await storage.tables.rooms.insertRoomNID(tx, '!events:example.org', '10');
  const message = await storage.tables.eventTypes.insertEventTypeNID(tx, 'm.room.message');
  const alice = await storage.tables.eventStateKeys.insertEventStateKeyNID(tx, '@alice:example.org');
  const bob = await storage.tables.eventStateKeys.insertEventStateKeyNID(tx, '@bob:example.org');
  const carol = await storage.tables.eventStateKeys.insertEventStateKeyNID(tx, '@carol:example.org');
  return { tx, room, message, alice, bob, carol };
}

interface NewEvent {
  id: string;
  type: EventTypeNID;
  key: EventStateKeyNID;
  room: RoomNID;
  depth?: number;
  rejected?: boolean;
  auth?: EventNID[];
}

/** Reserves a NID and inserts the row, as the shared layer does. */
async function addEvent(storage: Storage, e: NewEvent): Promise<EventNID> {
  const tx = storage.unitOfWork.autocommit;
  const eventNID = await storage.tables.events.reserveEventNID(tx);
  await storage.tables.events.insertEvent(tx, {
    eventNID, roomNID: e.room, eventTypeNID: e.type, eventStateKeyNID: e.key, eventID: e.id,
    authEventNIDs: e.auth ?? [], depth: e.depth ?? 1, isRejected: e.rejected ?? false,
  });
  return eventNID;
}

const entryOf = (type: number, key: number, nid: number): StateEntry =>
  ({ eventTypeNID: asEventTypeNID(type), eventStateKeyNID: asEventStateKeyNID(key), eventNID: asEventNID(nid) });

/** Sorted by (type, key), then event NID: the order the contract promises, computed from the actual NIDs. */
const sortedTriples = (entries: StateEntry[]) => triples([...entries].sort((a, b) => compareTuples(a, b) || a.eventNID - b.eventNID));

/** StateAtEvent reduced to comparable plain values, in event NID order (the table does not promise an order). */
const stateAtRows = (rows: readonly StateAtEvent[]) => [...rows].sort((a, b) => a.eventNID - b.eventNID).map((r) => ({
  eventTypeNID: r.eventTypeNID, eventStateKeyNID: r.eventStateKeyNID, eventNID: r.eventNID,
  beforeStateSnapshotNID: r.beforeStateSnapshotNID, isRejected: r.isRejected,
}));

const missingNID = (...known: number[]) => asEventNID(Math.max(0, ...known) + 1_000_000);

export function eventTableTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Table: events', (test) => {
    test('reserveEventNID hands out positive NIDs never handed out before, in and out of transactions', async ({ storage }) => {
      const events = storage.tables.events;
      const { room, message } = await setup(storage);
      const seen: number[] = [];
      for (let i = 0; i < 5; i++) seen.push(await events.reserveEventNID(storage.unitOfWork.autocommit));
      seen.push(...await storage.unitOfWork.transaction(async (tx) => [await events.reserveEventNID(tx), await events.reserveEventNID(tx)]));
      seen.push(...await Promise.all([1, 2, 3].map(() => events.reserveEventNID(storage.unitOfWork.autocommit))));
      // An event inserted under a reserved NID does not make that NID come back.
      const stored = await addEvent(storage, { id: '$reserve', type: message, key: NOT_STATE, room });
      seen.push(stored);
      seen.push(await events.reserveEventNID(storage.unitOfWork.autocommit));
      for (const nid of seen) expect(Number.isSafeInteger(nid) && nid > 0, `NID ${nid}`).to.equal(true);
      expect(new Set(seen).size).to.equal(seen.length);
    });

    test('insertEvent stores the row with state snapshot 0; selectEvent returns its NID, room and snapshot', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, message } = await setup(storage);
      const nid = await addEvent(storage, { id: '$one', type: message, key: NOT_STATE, room, depth: 4 });
      expect(await events.selectEvent(tx, '$one')).to.deep.equal({ eventNID: nid, roomNID: room, stateSnapshotNID: 0 });
      expect(await events.selectEventID(tx, nid)).to.equal('$one');
      await rejects(events.selectEvent(tx, '$two'), NotFoundError);
      await rejects(events.selectEvent(tx, '$ONE'), NotFoundError);
    });

    test('a duplicate event ID is a ConflictError and keeps the original row', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, message, alice } = await setup(storage);
      const other = await storage.tables.rooms.insertRoomNID(tx, '!other:example.org', '10');
      const original = await addEvent(storage, { id: '$dup', type: MEMBER, key: alice, room, depth: 3 });
      await events.updateEventState(tx, original, asStateSnapshotNID(9));
      const second = await events.reserveEventNID(tx);
      await rejects(events.insertEvent(tx, {
        eventNID: second, roomNID: other, eventTypeNID: message, eventStateKeyNID: NOT_STATE, eventID: '$dup',
        authEventNIDs: [], depth: 50, isRejected: true,
      }), ConflictError);
      await rejects(storage.unitOfWork.transaction((inTx) => events.insertEvent(inTx, {
        eventNID: second, roomNID: other, eventTypeNID: message, eventStateKeyNID: NOT_STATE, eventID: '$dup',
        authEventNIDs: [], depth: 50, isRejected: true,
      })), ConflictError);
      expect(await events.selectEvent(tx, '$dup')).to.deep.equal({ eventNID: original, roomNID: room, stateSnapshotNID: 9 });
      expect(triples(await events.bulkSelectStateEventByID(tx, ['$dup']))).to.deep.equal([[MEMBER, alice, original]]);
      expect(await events.selectMaxEventDepth(tx, [original])).to.equal(4);
      expect(await events.bulkSelectEventNID(tx, ['$dup'])).to.deep.equal(new Map([['$dup', original]]));
      // Nothing was stored under the refused row's NID.
      await rejects(events.selectEventID(tx, second), NotFoundError);
      expect((await events.selectRoomNIDsForEventNIDs(tx, [second])).size).to.equal(0);
    });

    test('bulkSelectStateEventByID returns the entries sorted by (type, state key), whatever the input order', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, alice, bob, carol } = await setup(storage);
      const e = {
        bob: await addEvent(storage, { id: '$bob', type: MEMBER, key: bob, room }),
        rules: await addEvent(storage, { id: '$rules', type: JOIN_RULES, key: EMPTY_KEY, room }),
        alice: await addEvent(storage, { id: '$alice', type: MEMBER, key: alice, room }),
        create: await addEvent(storage, { id: '$create', type: CREATE, key: EMPTY_KEY, room }),
        carol: await addEvent(storage, { id: '$carol', type: MEMBER, key: carol, room }),
        power: await addEvent(storage, { id: '$power', type: POWER, key: EMPTY_KEY, room }),
      };
      const expected = sortedTriples([
        entryOf(MEMBER, bob, e.bob), entryOf(JOIN_RULES, 1, e.rules), entryOf(MEMBER, alice, e.alice),
        entryOf(CREATE, 1, e.create), entryOf(MEMBER, carol, e.carol), entryOf(POWER, 1, e.power),
      ]);
      const ids = ['$carol', '$power', '$bob', '$create', '$alice', '$rules'];
      expect(triples(await events.bulkSelectStateEventByID(tx, ids))).to.deep.equal(expected);
      expect(triples(await events.bulkSelectStateEventByID(tx, [...ids].reverse()))).to.deep.equal(expected);
      expect(triples(await events.bulkSelectStateEventByID(tx, ['$alice']))).to.deep.equal([[MEMBER, alice, e.alice]]);
      expect(await events.bulkSelectStateEventByID(tx, [])).to.deep.equal([]);
    });

    test('bulkSelectStateEventByID is a MissingEventError if an ID is missing or asked for twice', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, alice } = await setup(storage);
      await addEvent(storage, { id: '$a', type: MEMBER, key: alice, room });
      await addEvent(storage, { id: '$b', type: JOIN_RULES, key: EMPTY_KEY, room });
      await rejects(events.bulkSelectStateEventByID(tx, ['$a', '$missing', '$b']), MissingEventError);
      await rejects(events.bulkSelectStateEventByID(tx, ['$missing']), MissingEventError);
      await rejects(events.bulkSelectStateEventByID(tx, ['$a', '$b', '$a']), MissingEventError);
      await rejects(events.bulkSelectStateEventByID(tx, ['$A']), MissingEventError);
    });

    test('bulkSelectStateEventByID with excludeRejected leaves rejected events out silently; unknown ones are still missing', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, alice, bob } = await setup(storage);
      const good = await addEvent(storage, { id: '$good', type: MEMBER, key: alice, room });
      const bad = await addEvent(storage, { id: '$bad', type: MEMBER, key: bob, room, rejected: true });
      // Without the flag, a rejected event is returned like any other.
      expect(sortedTriples(await events.bulkSelectStateEventByID(tx, ['$good', '$bad'])))
        .to.deep.equal(sortedTriples([entryOf(MEMBER, alice, good), entryOf(MEMBER, bob, bad)]));
      expect(triples(await events.bulkSelectStateEventByID(tx, ['$bad'], false))).to.deep.equal([[MEMBER, bob, bad]]);
      // With it, a rejected event is dropped without an error (Dendrite's send_join and backfill paths rely on that).
      expect(triples(await events.bulkSelectStateEventByID(tx, ['$good', '$bad'], true))).to.deep.equal([[MEMBER, alice, good]]);
      expect(triples(await events.bulkSelectStateEventByID(tx, ['$bad'], true))).to.deep.equal([]);
      expect(triples(await events.bulkSelectStateEventByID(tx, ['$good'], true))).to.deep.equal([[MEMBER, alice, good]]);
      await rejects(events.bulkSelectStateEventByID(tx, ['$good', '$unknown'], true), MissingEventError);
    });

    test('bulkSelectStateEventByNID sorts by (type, state key) and drops missing NIDs', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, alice, bob } = await setup(storage);
      const bobJoin = await addEvent(storage, { id: '$bob', type: MEMBER, key: bob, room });
      const create = await addEvent(storage, { id: '$create', type: CREATE, key: EMPTY_KEY, room });
      const aliceJoin = await addEvent(storage, { id: '$alice', type: MEMBER, key: alice, room });
      const missing = missingNID(bobJoin, create, aliceJoin);
      const expected = sortedTriples([entryOf(MEMBER, bob, bobJoin), entryOf(CREATE, 1, create), entryOf(MEMBER, alice, aliceJoin)]);
      expect(triples(await events.bulkSelectStateEventByNID(tx, [aliceJoin, missing, bobJoin, create], []))).to.deep.equal(expected);
      expect(triples(await events.bulkSelectStateEventByNID(tx, [create, aliceJoin, bobJoin], []))).to.deep.equal(expected);
      expect(await events.bulkSelectStateEventByNID(tx, [missing], [])).to.deep.equal([]);
      expect(await events.bulkSelectStateEventByNID(tx, [], [])).to.deep.equal([]);
    });

    test('bulkSelectStateEventByNID with tuples keeps type in {their types} AND key in {their keys} (the cross product)', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, alice, bob } = await setup(storage);
      const memberAlice = await addEvent(storage, { id: '$m-alice', type: MEMBER, key: alice, room });
      const memberBob = await addEvent(storage, { id: '$m-bob', type: MEMBER, key: bob, room });
      const rules = await addEvent(storage, { id: '$rules', type: JOIN_RULES, key: EMPTY_KEY, room });
      const rulesAlice = await addEvent(storage, { id: '$rules-alice', type: JOIN_RULES, key: alice, room });
      const power = await addEvent(storage, { id: '$power', type: POWER, key: EMPTY_KEY, room });
      const all = [memberAlice, memberBob, rules, rulesAlice, power];
      const tuples: StateKeyTuple[] = [
        { eventTypeNID: MEMBER, eventStateKeyNID: alice },
        { eventTypeNID: JOIN_RULES, eventStateKeyNID: EMPTY_KEY },
      ];
      // Types {member, join_rules} x keys {alice, ""}: (join_rules, alice) is in the cross product although not asked
      // for; (member, bob) has a key outside the set and power levels a type outside it.
      expect(triples(await events.bulkSelectStateEventByNID(tx, all, tuples))).to.deep.equal(sortedTriples([
        entryOf(MEMBER, alice, memberAlice), entryOf(JOIN_RULES, 1, rules), entryOf(JOIN_RULES, alice, rulesAlice),
      ]));
      // Only events among the NIDs given are considered.
      expect(triples(await events.bulkSelectStateEventByNID(tx, [memberBob, rules, missingNID(...all)], tuples)))
        .to.deep.equal([[JOIN_RULES, 1, rules]]);
      expect(await events.bulkSelectStateEventByNID(tx, all, [{ eventTypeNID: CREATE, eventStateKeyNID: EMPTY_KEY }])).to.deep.equal([]);
    });

    test('bulkSelectStateAtEventByID returns each event\'s entry, state before and rejection flag', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, message, alice } = await setup(storage);
      const create = await addEvent(storage, { id: '$create', type: CREATE, key: EMPTY_KEY, room });
      const join = await addEvent(storage, { id: '$join', type: MEMBER, key: alice, room, rejected: true });
      const msg = await addEvent(storage, { id: '$msg', type: message, key: NOT_STATE, room });
      await events.updateEventState(tx, join, asStateSnapshotNID(3));
      await events.updateEventState(tx, msg, asStateSnapshotNID(4));
      const rows = await events.bulkSelectStateAtEventByID(tx, ['$msg', '$create', '$join']);
      expect(stateAtRows(rows)).to.deep.equal(stateAtRows([
        { ...entryOf(CREATE, 1, create), beforeStateSnapshotNID: asStateSnapshotNID(0), isRejected: false },
        { ...entryOf(MEMBER, alice, join), beforeStateSnapshotNID: asStateSnapshotNID(3), isRejected: true },
        { ...entryOf(message, 0, msg), beforeStateSnapshotNID: asStateSnapshotNID(4), isRejected: false },
      ]));
      expect(await events.bulkSelectStateAtEventByID(tx, [])).to.deep.equal([]);
    });

    test('bulkSelectStateAtEventByID: MissingEventError for a missing ID; MissingStateError for unknown state, except a genuine create event', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, message, alice } = await setup(storage);
      await addEvent(storage, { id: '$create', type: CREATE, key: EMPTY_KEY, room });
      await addEvent(storage, { id: '$create-keyed', type: CREATE, key: alice, room });
      await addEvent(storage, { id: '$create-nonstate', type: CREATE, key: NOT_STATE, room });
      await addEvent(storage, { id: '$rules', type: JOIN_RULES, key: EMPTY_KEY, room });
      const msg = await addEvent(storage, { id: '$msg', type: message, key: NOT_STATE, room });
      await events.updateEventState(tx, msg, asStateSnapshotNID(2));
      // (type 1, key "") with snapshot 0 is fine: a create event's state before is empty by definition.
      const [create] = await events.bulkSelectStateAtEventByID(tx, ['$create']);
      expect(create!.beforeStateSnapshotNID).to.equal(0);
      expect(create!.eventTypeNID).to.equal(CREATE);
      await rejects(events.bulkSelectStateAtEventByID(tx, ['$msg', '$missing']), MissingEventError);
      await rejects(events.bulkSelectStateAtEventByID(tx, ['$missing']), MissingEventError);
      await rejects(events.bulkSelectStateAtEventByID(tx, ['$rules']), MissingStateError);
      await rejects(events.bulkSelectStateAtEventByID(tx, ['$msg', '$rules']), MissingStateError);
      await rejects(events.bulkSelectStateAtEventByID(tx, ['$create-keyed']), MissingStateError);
      await rejects(events.bulkSelectStateAtEventByID(tx, ['$create-nonstate']), MissingStateError);
      // Once the state is known, the same event is fine.
      const rulesNID = (await events.selectEvent(tx, '$rules')).eventNID;
      await events.updateEventState(tx, rulesNID, asStateSnapshotNID(2));
      expect(await events.bulkSelectStateAtEventByID(tx, ['$rules', '$msg', '$create'])).to.have.length(3);
    });

    test('updateEventState sets the state before an event and nothing else; a missing NID is no error', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, message } = await setup(storage);
      const a = await addEvent(storage, { id: '$a', type: message, key: NOT_STATE, room });
      const b = await addEvent(storage, { id: '$b', type: message, key: NOT_STATE, room });
      await events.updateEventState(tx, a, asStateSnapshotNID(7));
      expect((await events.selectEvent(tx, '$a')).stateSnapshotNID).to.equal(7);
      expect((await events.selectEvent(tx, '$b')).stateSnapshotNID).to.equal(0);
      await storage.unitOfWork.transaction((inTx) => events.updateEventState(inTx, a, asStateSnapshotNID(8)));
      expect((await events.selectEvent(tx, '$a')).stateSnapshotNID).to.equal(8);
      const missing = missingNID(a, b);
      await events.updateEventState(tx, missing, asStateSnapshotNID(7));
      await rejects(events.selectEventID(tx, missing), NotFoundError);
    });

    test('sent-to-output starts false and updateEventSentToOutput sets it for that event only; missing is a NotFoundError', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, message } = await setup(storage);
      const a = await addEvent(storage, { id: '$a', type: message, key: NOT_STATE, room });
      const b = await addEvent(storage, { id: '$b', type: message, key: NOT_STATE, room });
      expect(await events.selectEventSentToOutput(tx, a)).to.equal(false);
      await events.updateEventSentToOutput(tx, a);
      expect(await events.selectEventSentToOutput(tx, a)).to.equal(true);
      expect(await events.selectEventSentToOutput(tx, b)).to.equal(false);
      await storage.unitOfWork.transaction((inTx) => events.updateEventSentToOutput(inTx, b));
      expect(await events.selectEventSentToOutput(tx, b)).to.equal(true);
      // Setting it twice keeps it set.
      await events.updateEventSentToOutput(tx, a);
      expect(await events.selectEventSentToOutput(tx, a)).to.equal(true);
      await rejects(events.selectEventSentToOutput(tx, missingNID(a, b)), NotFoundError);
    });

    test('selectEventID maps a NID to its event ID; a missing NID is a NotFoundError', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, message } = await setup(storage);
      const a = await addEvent(storage, { id: "$it's/100%_é", type: message, key: NOT_STATE, room });
      expect(await events.selectEventID(tx, a)).to.equal("$it's/100%_é");
      await rejects(events.selectEventID(tx, missingNID(a)), NotFoundError);
      const reserved = await events.reserveEventNID(tx);
      await rejects(events.selectEventID(tx, reserved), NotFoundError);
    });

    test('bulkSelectStateAtEventAndReference returns state and event ID per NID; MissingEventError if any is missing', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, message, alice } = await setup(storage);
      const join = await addEvent(storage, { id: '$join', type: MEMBER, key: alice, room, rejected: true });
      const msg = await addEvent(storage, { id: '$msg', type: message, key: NOT_STATE, room });
      await events.updateEventState(tx, join, asStateSnapshotNID(5));
      const rows = await events.bulkSelectStateAtEventAndReference(tx, [msg, join]);
      const plain = [...rows].sort((x, y) => x.eventNID - y.eventNID).map((r) => ({
        eventID: r.eventID, type: r.eventTypeNID, key: r.eventStateKeyNID, nid: r.eventNID, before: r.beforeStateSnapshotNID, rejected: r.isRejected,
      }));
      expect(plain).to.deep.equal([
        { eventID: '$join', type: MEMBER, key: alice, nid: join, before: 5, rejected: true },
        { eventID: '$msg', type: message, key: 0, nid: msg, before: 0, rejected: false },
      ].sort((x, y) => x.nid - y.nid));
      await rejects(events.bulkSelectStateAtEventAndReference(tx, [join, missingNID(join, msg)]), MissingEventError);
      expect(await events.bulkSelectStateAtEventAndReference(tx, [])).to.deep.equal([]);
    });

    test('bulkSelectEventID maps every NID to its ID; MissingEventError if any is missing', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, message } = await setup(storage);
      const a = await addEvent(storage, { id: '$a', type: message, key: NOT_STATE, room });
      const b = await addEvent(storage, { id: '$b', type: message, key: NOT_STATE, room });
      expect(await events.bulkSelectEventID(tx, [b, a])).to.deep.equal(new Map([[a, '$a'], [b, '$b']]));
      await rejects(events.bulkSelectEventID(tx, [a, missingNID(a, b)]), MissingEventError);
      await rejects(events.bulkSelectEventID(tx, [missingNID(a, b)]), MissingEventError);
      expect((await events.bulkSelectEventID(tx, [])).size).to.equal(0);
    });

    test('bulkSelectEventNID maps known IDs to NIDs and omits missing ones', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, message } = await setup(storage);
      const a = await addEvent(storage, { id: '$a', type: message, key: NOT_STATE, room });
      const b = await addEvent(storage, { id: '$b%', type: message, key: NOT_STATE, room });
      expect(await events.bulkSelectEventNID(tx, ['$missing', '$b%', '$a', '$a'])).to.deep.equal(new Map([['$a', a], ['$b%', b]]));
      expect((await events.bulkSelectEventNID(tx, ['$missing', '$b_', '$bx'])).size).to.equal(0);
      expect((await events.bulkSelectEventNID(tx, [])).size).to.equal(0);
    });

    test('selectMaxEventDepth is max(depth) + 1 over the events that exist, 0 when none does', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, message } = await setup(storage);
      const d3 = await addEvent(storage, { id: '$d3', type: message, key: NOT_STATE, room, depth: 3 });
      const d7 = await addEvent(storage, { id: '$d7', type: message, key: NOT_STATE, room, depth: 7 });
      const d5 = await addEvent(storage, { id: '$d5', type: message, key: NOT_STATE, room, depth: 5 });
      const d0 = await addEvent(storage, { id: '$d0', type: message, key: NOT_STATE, room, depth: 0 });
      const missing = missingNID(d3, d7, d5, d0);
      expect(await events.selectMaxEventDepth(tx, [d3, d7, d5])).to.equal(8);
      expect(await events.selectMaxEventDepth(tx, [d5, d3])).to.equal(6);
      expect(await events.selectMaxEventDepth(tx, [d3, missing])).to.equal(4);
      expect(await events.selectMaxEventDepth(tx, [d0])).to.equal(1);
      expect(await events.selectMaxEventDepth(tx, [missing])).to.equal(0);
      expect(await events.selectMaxEventDepth(tx, [])).to.equal(0);
    });

    test('selectRoomsWithEventTypeNID lists each room holding an event of the type once, ascending', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, message } = await setup(storage);
      const other = await storage.tables.rooms.insertRoomNID(tx, '!other:example.org', '10');
      const third = await storage.tables.rooms.insertRoomNID(tx, '!third:example.org', '10');
      await addEvent(storage, { id: '$a', type: message, key: NOT_STATE, room: other });
      await addEvent(storage, { id: '$b', type: message, key: NOT_STATE, room });
      await addEvent(storage, { id: '$c', type: message, key: NOT_STATE, room: other });
      expect(await events.selectRoomsWithEventTypeNID(tx, message)).to.deep.equal([room, other].sort((x, y) => x - y));
      expect(await events.selectRoomsWithEventTypeNID(tx, 4 as EventTypeNID)).to.deep.equal([]);
      expect(third).to.be.greaterThan(0);
    });

    test('bulkSelectEventIDsAndRooms gives each event\'s ID and room, omitting missing NIDs', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, message } = await setup(storage);
      const a = await addEvent(storage, { id: '$a', type: message, key: NOT_STATE, room });
      expect(await events.bulkSelectEventIDsAndRooms(tx, [a, missingNID(a, a)])).to.deep.equal(new Map([[a, { eventID: '$a', roomNID: room }]]));
      expect((await events.bulkSelectEventIDsAndRooms(tx, [])).size).to.equal(0);
    });

    test('selectRoomNIDsForEventNIDs maps each event NID to its room and omits missing NIDs', async ({ storage }) => {
      const events = storage.tables.events;
      const { tx, room, message } = await setup(storage);
      const other = await storage.tables.rooms.insertRoomNID(tx, '!other:example.org', '10');
      const a = await addEvent(storage, { id: '$a', type: message, key: NOT_STATE, room });
      const b = await addEvent(storage, { id: '$b', type: message, key: NOT_STATE, room: other });
      expect(await events.selectRoomNIDsForEventNIDs(tx, [b, missingNID(a, b), a])).to.deep.equal(new Map([[a, room], [b, other]]));
      expect((await events.selectRoomNIDsForEventNIDs(tx, [missingNID(a, b)])).size).to.equal(0);
      expect((await events.selectRoomNIDsForEventNIDs(tx, [])).size).to.equal(0);
    });
  });

  group(fw, driver, 'Table: event_json', (test) => {
    test('insertEventJSON keeps the text exactly as given (never parsed or normalised)', async ({ storage }) => {
      const j = storage.tables.eventJSON;
      const tx = storage.unitOfWork.autocommit;
      const nid = await storage.tables.events.reserveEventNID(tx);
      // Key order, spacing, escapes and a duplicate key all survive only if the text is stored verbatim.
      const text = '{"z": 1,  "a":"caf\\u00e9 é 🎉", "n": 1.50, "a": "again",\n "q": "it\'s \\"x\\" 100%_"}';
      await j.insertEventJSON(tx, nid, text);
      const [pair] = await j.bulkSelectEventJSON(tx, [nid]);
      expect(pair).to.deep.equal({ eventNID: nid, eventJSON: text });
    });

    test('insertEventJSON on an existing NID replaces the JSON (upsert)', async ({ storage }) => {
      const j = storage.tables.eventJSON;
      const tx = storage.unitOfWork.autocommit;
      const nid = await storage.tables.events.reserveEventNID(tx);
      const other = await storage.tables.events.reserveEventNID(tx);
      await j.insertEventJSON(tx, nid, '{"content":{"body":"secret"}}');
      await j.insertEventJSON(tx, other, '{"other":true}');
      await j.insertEventJSON(tx, nid, '{"content":{}}');
      expect(await j.bulkSelectEventJSON(tx, [nid])).to.deep.equal([{ eventNID: nid, eventJSON: '{"content":{}}' }]);
      await storage.unitOfWork.transaction((inTx) => j.insertEventJSON(inTx, nid, '{"content":{"third":1}}'));
      expect(await j.bulkSelectEventJSON(tx, [nid])).to.deep.equal([{ eventNID: nid, eventJSON: '{"content":{"third":1}}' }]);
      expect(await j.bulkSelectEventJSON(tx, [other])).to.deep.equal([{ eventNID: other, eventJSON: '{"other":true}' }]);
    });

    test('bulkSelectEventJSON is ordered by event NID ascending whatever the input order, and omits missing NIDs', async ({ storage }) => {
      const j = storage.tables.eventJSON;
      const tx = storage.unitOfWork.autocommit;
      const nids: EventNID[] = [];
      for (let i = 0; i < 5; i++) nids.push(await storage.tables.events.reserveEventNID(tx));
      // Written in a scrambled order, with texts that sort against NID order, so that neither write order, input
      // order nor text order happens to match NID order.
      const text = (i: number) => `{"i":${9 - i}}`;
      for (const i of [3, 0, 4, 1, 2]) await j.insertEventJSON(tx, nids[i]!, text(i));
      const missing = missingNID(...nids);
      const asked = [nids[4]!, missing, nids[0]!, nids[2]!, nids[3]!];
      const expected = [0, 2, 3, 4].map((i) => ({ eventNID: nids[i]!, eventJSON: text(i) })).sort((a, b) => a.eventNID - b.eventNID);
      expect(await j.bulkSelectEventJSON(tx, asked)).to.deep.equal(expected);
      expect(await j.bulkSelectEventJSON(tx, [missing])).to.deep.equal([]);
      expect(await j.bulkSelectEventJSON(tx, [])).to.deep.equal([]);
    });
  });
}

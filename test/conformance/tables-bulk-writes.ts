import { expect } from 'chai';
import type { Storage } from '../../src/index.js';
import type { MembershipWrite, StoredEventRow, Tx } from '../../src/storage/tables/index.js';
import { ConflictError, InvalidInputError, MissingStateError, NotFoundError } from '../../src/types/errors.js';
import { MembershipState } from '../../src/types/membership.js';
import {
  asEventNID, asEventStateKeyNID, asEventTypeNID, asRoomNID, asStateSnapshotNID,
  type EventNID, type EventStateKeyNID, type RoomNID, type StateBlockNID,
} from '../../src/types/nids.js';
import type { StateEntry } from '../../src/types/state.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { entry, rejects, triples } from './fixtures.js';

/*
 * The set-based table methods the batch write path (EventAppender) uses, table by table: each against its
 * contract, against the single-row method it stands for, and at the edges (empty input, repeats within one call,
 * rows already stored, hostile strings, concurrent callers, transactions that commit and that roll back).
 */

const { join: JOIN, invite: INVITE, leaveOrBan: LEAVE, knock: KNOCK } = MembershipState;
const MEMBER = asEventTypeNID(5);
const NOT_STATE = asEventStateKeyNID(0);
const EMPTY_KEY = asEventStateKeyNID(1);

const isPositive = (nid: number) => Number.isSafeInteger(nid) && nid > 0;
const ascending = (nids: readonly number[]) => [...nids].sort((a, b) => a - b);
const missingNID = (...known: number[]) => asEventNID(Math.max(0, ...known) + 1_000_000);
const tick = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Strings a naive driver mangles: SQL quoting, LIKE wildcards, characters Cosmos DB forbids in an item id, the
 * separators a driver might join key parts with, unicode in both normal forms, case and trailing-space variants
 * (which must stay distinct).
 */
const HOSTILE = [
  "it's", '"quoted"', '100%', 'under_score', '%', '_', 'a/b\\c', 'what?', 'hash#tag', 'ünïcødé 🎉',
  "'; DROP TABLE roomserver_events; --", 'caf\u00e9', 'cafe\u0301', 'Case', 'case', 'trailing ', 'trailing',
  '{"json": [1]}', '$1', '?', 'a|b', 'a,b', '~x', 'a:b',
];

/** An ID of exactly 255 bytes (Matrix's cap on IDs), half of them multi-byte. */
const long255 = (sigil: string) => `${sigil}${'é'.repeat(60)}${'x'.repeat(255 - Buffer.byteLength(sigil) - 120)}`;

/** Event IDs: the hostile strings, and a 255-byte one. */
const HOSTILE_EVENT_IDS = [...HOSTILE.map((s) => `$${s}`), long255('$')];

/** What a LIKE-style or case-folding match would find for the hostile IDs; an exact match finds none of them. */
const LOOKALIKE_EVENT_IDS = ['$1000', '$underXscore', '$x', '$anything', '$CASE', '$trailing  ', '$caf', long255('$').slice(0, -1)];

/** A deterministic shuffle (the same on every run): a different order of the same values. */
function shuffled<T>(values: readonly T[], seed: number): T[] {
  const out = [...values];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Asserts a rejected transaction: fn's own error comes back to the caller. */
async function rolledBack(storage: Storage, fn: (tx: Tx) => Promise<void>): Promise<void> {
  const marker = new Error('roll back');
  let error: unknown;
  try {
    await storage.unitOfWork.transaction(async (tx) => {
      await fn(tx);
      throw marker;
    });
  } catch (e) {
    error = e;
  }
  expect(error, 'the transaction rejects with the error its function threw').to.equal(marker);
}

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

/** Users are state keys, rooms come from the rooms table; `write` builds a MembershipWrite. */
async function membershipWorld(storage: Storage, users: readonly string[], rooms: readonly string[]) {
  const tx = storage.unitOfWork.autocommit;
  const u = new Map<string, EventStateKeyNID>();
  for (const id of users) u.set(id, await storage.tables.eventStateKeys.insertEventStateKeyNID(tx, id));
  const r = new Map<string, RoomNID>();
  for (const id of rooms) r.set(id, await storage.tables.rooms.insertRoomNID(tx, id, '10'));
  const user = (id: string) => u.get(id)!;
  const room = (id: string) => r.get(id)!;
  const write = (target: string, membership: MembershipState, eventNID: number, opts: { local?: boolean; sender?: string } = {}): MembershipWrite => ({
    targetUserNID: user(target), targetLocal: opts.local ?? false, senderUserNID: user(opts.sender ?? target), membership, eventNID: asEventNID(eventNID),
  });
  return { tx, m: storage.tables.membership, user, room, write };
}

export function bulkWriteTableTests(fw: TestFramework, driver: DriverUnderTest): void {
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

  group(fw, driver, 'Table: event_types and event_state_keys (batch writes)', (test) => {
    /** Both maps, behind one shape, so each case runs against both. */
    const maps = (storage: Storage) => [
      {
        name: 'event types', prefix: 'org.example.', known: [['m.room.create', 1], ['m.room.member', 5]] as const,
        assign: (tx: Tx, v: readonly string[]) => storage.tables.eventTypes.assignEventTypeNIDs(tx, v) as Promise<Map<string, number>>,
        insert: (tx: Tx, v: string) => storage.tables.eventTypes.insertEventTypeNID(tx, v) as Promise<number>,
        select: (tx: Tx, v: string) => storage.tables.eventTypes.selectEventTypeNID(tx, v) as Promise<number>,
        bulkSelect: (tx: Tx, v: readonly string[]) => storage.tables.eventTypes.bulkSelectEventTypeNID(tx, v) as Promise<Map<string, number>>,
        back: (tx: Tx, n: readonly number[]) => storage.tables.eventTypes.bulkSelectEventType(tx, n.map(asEventTypeNID)) as Promise<Map<number, string>>,
      },
      {
        name: 'state keys', prefix: '@', known: [['', 1]] as const,
        assign: (tx: Tx, v: readonly string[]) => storage.tables.eventStateKeys.assignEventStateKeyNIDs(tx, v) as Promise<Map<string, number>>,
        insert: (tx: Tx, v: string) => storage.tables.eventStateKeys.insertEventStateKeyNID(tx, v) as Promise<number>,
        select: (tx: Tx, v: string) => storage.tables.eventStateKeys.selectEventStateKeyNID(tx, v) as Promise<number>,
        bulkSelect: (tx: Tx, v: readonly string[]) => storage.tables.eventStateKeys.bulkSelectEventStateKeyNID(tx, v) as Promise<Map<string, number>>,
        back: (tx: Tx, n: readonly number[]) => storage.tables.eventStateKeys.bulkSelectEventStateKey(tx, n.map(asEventStateKeyNID)) as Promise<Map<number, string>>,
      },
    ];

    test('assign* returns the NIDs of known strings and creates the missing ones, each once, as insert/select see them', async ({ storage }) => {
      const tx = storage.unitOfWork.autocommit;
      for (const map of maps(storage)) {
        expect((await map.assign(tx, [])).size, map.name).to.equal(0);
        expect((await storage.unitOfWork.transaction((t) => map.assign(t, []))).size, map.name).to.equal(0);
        const inserted = await map.insert(tx, `${map.prefix}inserted`);
        const asked = [`${map.prefix}new-b`, ...map.known.map(([s]) => s), `${map.prefix}inserted`, `${map.prefix}new-a`, `${map.prefix}new-b`, `${map.prefix}new-a`];
        const got = await map.assign(tx, asked);
        expect(new Set(got.keys()), `${map.name}: every string asked for, once`).to.deep.equal(new Set(asked));
        for (const [s, nid] of map.known) expect(got.get(s), `${map.name}: ${JSON.stringify(s)} keeps its preassigned NID`).to.equal(nid);
        expect(got.get(`${map.prefix}inserted`), `${map.name}: the NID insert gave`).to.equal(inserted);
        const a = got.get(`${map.prefix}new-a`)!;
        const b = got.get(`${map.prefix}new-b`)!;
        for (const nid of [a, b]) expect(isPositive(nid), `${map.name}: NID ${nid}`).to.equal(true);
        expect(new Set(got.values()).size, `${map.name}: distinct strings, distinct NIDs`).to.equal(got.size);
        // The single-row and bulk selects agree, both ways.
        expect(await map.select(tx, `${map.prefix}new-a`)).to.equal(a);
        expect(await map.select(tx, `${map.prefix}new-b`)).to.equal(b);
        expect(await map.bulkSelect(tx, asked)).to.deep.equal(got);
        expect(await map.back(tx, [a, b])).to.deep.equal(new Map([[a, `${map.prefix}new-a`], [b, `${map.prefix}new-b`]]));
        // Stable: the same call again, and inside a transaction, gives the same NIDs and creates nothing.
        expect(await map.assign(tx, [...asked].reverse()), map.name).to.deep.equal(got);
        expect(await storage.unitOfWork.transaction((t) => map.assign(t, asked)), map.name).to.deep.equal(got);
        // What assign created, insert refuses as existing.
        await rejects(map.insert(tx, `${map.prefix}new-a`), ConflictError);
        expect(await map.select(tx, `${map.prefix}new-a`)).to.equal(a);
      }
    });

    test('assign* with hostile strings: each its own NID, round-tripping exactly; lookalikes are not created', async ({ storage }) => {
      const tx = storage.unitOfWork.autocommit;
      for (const map of maps(storage)) {
        const strings = [...HOSTILE.map((s) => `${map.prefix}${s}`), long255(map.prefix)];
        const got = await map.assign(tx, shuffled(strings, 7));
        expect(got.size, map.name).to.equal(strings.length);
        expect(new Set(got.values()).size, `${map.name}: every string gets its own NID`).to.equal(strings.length);
        const back = await map.back(tx, [...got.values()]);
        for (const s of strings) {
          expect(await map.select(tx, s), `${map.name}: ${JSON.stringify(s.slice(0, 40))}`).to.equal(got.get(s));
          expect(back.get(got.get(s)!) === s, `${map.name}: ${JSON.stringify(s.slice(0, 40))} round-trips`).to.equal(true);
        }
        expect(await map.assign(tx, strings), `${map.name}: assigning again creates nothing`).to.deep.equal(got);
        const lookalikes = [`${map.prefix}1000`, `${map.prefix}underXscore`, `${map.prefix}x`, `${map.prefix}CASE`, long255(map.prefix).slice(0, -1)];
        expect((await map.bulkSelect(tx, lookalikes)).size, `${map.name}: lookalikes`).to.equal(0);
      }
    });

    test('assign* from concurrent callers with overlapping new strings in different orders: one NID per string, all callers agree', async ({ storage }) => {
      const rotated = <T>(values: readonly T[], by: number) => [...values.slice(by), ...values.slice(0, by)];
      for (const map of maps(storage)) {
        // Several rounds, each with strings no one has assigned yet. Whether two writers' inserts meet is a matter
        // of timing, so each round has six callers at once, half in autocommit and half in transactions, each
        // starting in another caller's part of the list (rotations) or walking it backwards; long strings (state
        // keys have no length limit; types stay under Matrix's 255 bytes) make each row's write take longer.
        const pad = map.name === 'state keys' ? 'k'.repeat(4000) : 't'.repeat(200);
        for (let round = 0; round < 6; round++) {
          const strings = Array.from({ length: 60 }, (_, i) => `${map.prefix}concurrent-${round}-${i}-${pad}`);
          const calls = round === 0
            ? [strings, [...strings].reverse(), shuffled(strings, 1), shuffled(strings.slice(10, 50), 2), rotated(strings, 30), strings.slice(0, 5)]
            : Array.from({ length: 6 }, (_, i) => (i === 5 ? [...strings].reverse() : rotated(strings, i * 10)));
          const settled = await Promise.allSettled(calls.map((c, i) => (i % 2 === 0
            ? map.assign(storage.unitOfWork.autocommit, c)
            : storage.unitOfWork.transaction((t) => map.assign(t, c)))));
          const failures = settled.flatMap((r, i) => (r.status === 'rejected' ? [`call ${i}: ${String(r.reason).slice(0, 200)}`] : []));
          expect(failures, `${map.name}, round ${round}: every concurrent call succeeds`).to.deep.equal([]);
          const results = settled.map((r) => (r as PromiseFulfilledResult<Map<string, number>>).value);
          const agreed = new Map<string, number>();
          for (const [i, got] of results.entries()) {
            expect(new Set(got.keys()), `${map.name}, round ${round}: call ${i} answers for its strings`).to.deep.equal(new Set(calls[i]));
            for (const [str, nid] of got) {
              if (!agreed.has(str)) agreed.set(str, nid);
              expect(nid, `${map.name}, round ${round}: ${str.slice(0, 40)} in call ${i}`).to.equal(agreed.get(str));
            }
          }
          expect(agreed.size).to.equal(strings.length);
          expect(new Set(agreed.values()).size, `${map.name}: one NID per string, none shared`).to.equal(strings.length);
          expect(await map.bulkSelect(storage.unitOfWork.autocommit, strings), `${map.name}: what is stored`).to.deep.equal(agreed);
          const back = await map.back(storage.unitOfWork.autocommit, [...agreed.values()]);
          expect(back.size, `${map.name}: every agreed NID maps back`).to.equal(strings.length);
        }
      }
    });

    test('assign* in a transaction: visible inside, kept on commit, gone on rollback (SQL)', async ({ storage }) => {
      const tx = storage.unitOfWork.autocommit;
      for (const map of maps(storage)) {
        const committed = await storage.unitOfWork.transaction(async (t) => {
          const got = await map.assign(t, [`${map.prefix}committed`]);
          expect(await map.select(t, `${map.prefix}committed`)).to.equal(got.get(`${map.prefix}committed`));
          return got;
        });
        expect(await map.bulkSelect(tx, [`${map.prefix}committed`]), map.name).to.deep.equal(committed);
        await rolledBack(storage, async (t) => {
          const got = await map.assign(t, [`${map.prefix}rolled-back`, `${map.prefix}committed`]);
          expect(got.get(`${map.prefix}committed`)).to.equal(committed.get(`${map.prefix}committed`));
          expect((await map.bulkSelect(t, [`${map.prefix}rolled-back`])).size, 'visible inside the transaction').to.equal(1);
        });
        if (storage.unitOfWork.atomicTransactions) {
          expect((await map.bulkSelect(tx, [`${map.prefix}rolled-back`])).size, `${map.name}: rolled back`).to.equal(0);
          await rejects(map.select(tx, `${map.prefix}rolled-back`), NotFoundError);
          // Assigned again afterwards, it gets a NID that works (whatever its number).
          const again = await map.assign(tx, [`${map.prefix}rolled-back`]);
          expect(await map.select(tx, `${map.prefix}rolled-back`)).to.equal(again.get(`${map.prefix}rolled-back`));
        }
        // Else (Cosmos DB, no rollback): a mapping created before the failure stays, which is harmless (mappings
        // never change); nothing to assert about a rollback.
        expect(await map.bulkSelect(tx, [`${map.prefix}committed`]), map.name).to.deep.equal(committed);
      }
    });
  });

  group(fw, driver, 'Table: state_block (batch writes)', (test) => {
    test('bulkInsertStateBlocks: NIDs in input order; the same entries (in any order, repeated in the call) get the same NID', async ({ storage }) => {
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      expect(await blocks.bulkInsertStateBlocks(tx, [])).to.deep.equal([]);
      expect(await storage.unitOfWork.transaction((t) => blocks.bulkInsertStateBlocks(t, []))).to.deep.equal([]);
      const a = [entry(1, 1, 10), entry(5, 2, 11), entry(5, 3, 12)];
      const aShuffled = [entry(5, 3, 12), entry(1, 1, 10), entry(5, 2, 11)];
      const b = [entry(1, 1, 10), entry(5, 2, 13)];
      const c = [entry(7, 1, 0)];
      const nids = await blocks.bulkInsertStateBlocks(tx, [a, b, aShuffled, [], c, b, []]);
      expect(nids).to.have.length(7);
      for (const nid of nids) expect(isPositive(nid), `NID ${nid}`).to.equal(true);
      const [na, nb, na2, empty, nc, nb2, empty2] = nids;
      expect(na2).to.equal(na);
      expect(nb2).to.equal(nb);
      expect(empty2).to.equal(empty);
      expect(new Set([na, nb, empty, nc]).size, 'different entries, different NIDs').to.equal(4);
      const lists = await blocks.bulkSelectStateBlockEntries(tx, [na!, nb!, empty!, nc!]);
      expect(lists.map((l) => l.stateBlockNID)).to.deep.equal(ascending([na!, nb!, empty!, nc!]));
      const byNID = new Map(lists.map((l) => [l.stateBlockNID, triples(l.stateEntries)]));
      expect(byNID.get(na!)).to.deep.equal([[1, 1, 10], [5, 2, 11], [5, 3, 12]]);
      expect(byNID.get(nb!)).to.deep.equal([[1, 1, 10], [5, 2, 13]]);
      expect(byNID.get(empty!)).to.deep.equal([]);
      expect(byNID.get(nc!)).to.deep.equal([[7, 1, 0]]);
      // Again: the same NIDs, in the new call's order.
      expect(await blocks.bulkInsertStateBlocks(tx, [c, aShuffled, b])).to.deep.equal([nc, na, nb]);
    });

    test('bulkInsertStateBlocks and insertStateBlock agree: the same entries get the same NID whichever stored them first', async ({ storage }) => {
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      const big = 2 ** 40 + 7;
      const contents: StateEntry[][] = [
        [entry(1, 1, 10), entry(5, 2, 11)],
        [entry(1, 10, 1), entry(5, 11, 2)],
        [entry(5, 70_000, big), entry(65_536, 2, 9)],
        [entry(1, 1, 10), entry(5, 2, 0)],
        [],
      ];
      // Single first for the first half, bulk first for the rest.
      const single: StateBlockNID[] = [];
      for (const c of contents.slice(0, 2)) single.push(await blocks.insertStateBlock(tx, c));
      const bulk = await blocks.bulkInsertStateBlocks(tx, contents.map((c) => [...c].reverse()));
      for (const c of contents.slice(2)) single.push(await blocks.insertStateBlock(tx, c));
      expect(bulk).to.deep.equal(single);
      expect(new Set(bulk).size).to.equal(contents.length);
      // An entry repeated within a block counts once, as insertStateBlock drops the repeat.
      const repeated = await blocks.bulkInsertStateBlocks(tx, [[entry(5, 2, 11), entry(1, 1, 10), entry(5, 2, 11)]]);
      expect(repeated).to.deep.equal([bulk[0]]);
      const lists = await blocks.bulkSelectStateBlockEntries(tx, bulk);
      for (const l of lists) expect(triples(l.stateEntries)).to.deep.equal(triples(contents[bulk.indexOf(l.stateBlockNID)]!));
    });

    test('bulkInsertStateBlocks refuses a block giving one tuple two events with an InvalidInputError (a rejected promise)', async ({ storage }) => {
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      const good = [entry(1, 1, 10)];
      await rejects(blocks.bulkInsertStateBlocks(tx, [good, [entry(5, 2, 11), entry(5, 2, 12)]]), InvalidInputError);
      await rejects(blocks.bulkInsertStateBlocks(tx, [[entry(5, 2, 0), entry(5, 2, 11)], good]), InvalidInputError);
      await rejects(storage.unitOfWork.transaction((t) => blocks.bulkInsertStateBlocks(t, [[entry(3, 1, 1), entry(3, 1, 2)]])), InvalidInputError);
      // The store is still usable, and the valid block stores as usual.
      const [nid] = await blocks.bulkInsertStateBlocks(tx, [good]);
      expect(await blocks.insertStateBlock(tx, good)).to.equal(nid);
    });

    test('bulkInsertStateBlocks in a transaction: visible inside, kept on commit, gone on rollback (SQL)', async ({ storage }) => {
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      const [kept] = await storage.unitOfWork.transaction(async (t) => {
        const nids = await blocks.bulkInsertStateBlocks(t, [[entry(1, 1, 1)]]);
        expect(await blocks.bulkSelectStateBlockEntries(t, nids)).to.have.length(1);
        return nids;
      });
      expect(triples((await blocks.bulkSelectStateBlockEntries(tx, [kept!]))[0]!.stateEntries)).to.deep.equal([[1, 1, 1]]);
      let gone: StateBlockNID[] = [];
      await rolledBack(storage, async (t) => {
        gone = await blocks.bulkInsertStateBlocks(t, [[entry(2, 1, 2)], [entry(1, 1, 1)], [entry(3, 1, 3)]]);
        expect(gone[1]).to.equal(kept);
        expect(await blocks.bulkSelectStateBlockEntries(t, gone), 'visible inside the transaction').to.have.length(3);
      });
      if (storage.unitOfWork.atomicTransactions) {
        await rejects(blocks.bulkSelectStateBlockEntries(tx, [gone[0]!]), MissingStateError);
        await rejects(blocks.bulkSelectStateBlockEntries(tx, [gone[2]!]), MissingStateError);
        // Stored again afterwards, the blocks read back right (whatever NIDs they get).
        const again = await blocks.bulkInsertStateBlocks(tx, [[entry(2, 1, 2)], [entry(3, 1, 3)]]);
        const lists = await blocks.bulkSelectStateBlockEntries(tx, again);
        expect(lists.map((l) => triples(l.stateEntries)).sort()).to.deep.equal([[[2, 1, 2]], [[3, 1, 3]]]);
      }
      // Else (Cosmos DB, no rollback): the blocks written before the failure stay (content-addressed, so harmless).
      expect(triples((await blocks.bulkSelectStateBlockEntries(tx, [kept!]))[0]!.stateEntries)).to.deep.equal([[1, 1, 1]]);
    });
  });

  group(fw, driver, 'Table: state_snapshot (batch writes)', (test) => {
    const makeBlocks = async (storage: Storage, n: number) =>
      storage.tables.stateBlocks.bulkInsertStateBlocks(storage.unitOfWork.autocommit, Array.from({ length: n }, (_, i) => [entry(1, 1, 1000 + i)]));
    const ROOM_A = asRoomNID(1);
    const ROOM_B = asRoomNID(2);

    test('bulkInsertStates: NIDs in input order; the same ordered list gets the same NID, another order another NID', async ({ storage }) => {
      const snaps = storage.tables.stateSnapshots;
      const tx = storage.unitOfWork.autocommit;
      expect(await snaps.bulkInsertStates(tx, ROOM_A, [])).to.deep.equal([]);
      expect(await storage.unitOfWork.transaction((t) => snaps.bulkInsertStates(t, ROOM_A, []))).to.deep.equal([]);
      const [b1, b2, b3] = await makeBlocks(storage, 3) as [StateBlockNID, StateBlockNID, StateBlockNID];
      const lists = [[b1, b2, b3], [b3, b2, b1], [b1, b2, b3], [], [b1, b1], [b1], [], [b3, b2, b1]];
      const nids = await snaps.bulkInsertStates(tx, ROOM_A, lists);
      expect(nids).to.have.length(lists.length);
      for (const nid of nids) expect(isPositive(nid), `NID ${nid}`).to.equal(true);
      expect(nids[2]).to.equal(nids[0]);
      expect(nids[6]).to.equal(nids[3]);
      expect(nids[7]).to.equal(nids[1]);
      expect(new Set(nids).size, 'five distinct lists').to.equal(5);
      const read = await snaps.bulkSelectStateBlockNIDs(tx, nids);
      expect(read.map((l) => l.stateSnapshotNID)).to.deep.equal(ascending([...new Set(nids)]));
      for (const [i, nid] of nids.entries()) expect(read.find((l) => l.stateSnapshotNID === nid)!.stateBlockNIDs, `list ${i}`).to.deep.equal(lists[i]);
      // The hash ignores the room: another room's call finds the same snapshots.
      expect(await snaps.bulkInsertStates(tx, ROOM_B, [[b1], [b3, b2, b1]])).to.deep.equal([nids[5], nids[1]]);
    });

    test('bulkInsertStates and insertState agree: the same list gets the same NID whichever stored it first', async ({ storage }) => {
      const snaps = storage.tables.stateSnapshots;
      const tx = storage.unitOfWork.autocommit;
      const blocks = await makeBlocks(storage, 64);
      const lists: StateBlockNID[][] = [[blocks[0]!, blocks[1]!], [blocks[1]!, blocks[0]!], blocks.slice(0, 64), [], [blocks[2]!, blocks[2]!, blocks[3]!]];
      const single = [await snaps.insertState(tx, ROOM_A, lists[0]!), await snaps.insertState(tx, ROOM_B, lists[1]!)];
      const bulk = await storage.unitOfWork.transaction((t) => snaps.bulkInsertStates(t, ROOM_A, lists));
      single.push(await snaps.insertState(tx, ROOM_A, lists[2]!), await snaps.insertState(tx, ROOM_B, lists[3]!), await snaps.insertState(tx, ROOM_A, lists[4]!));
      expect(bulk).to.deep.equal(single);
      expect(new Set(bulk).size).to.equal(lists.length);
      const [full] = await snaps.bulkSelectStateBlockNIDs(tx, [bulk[2]!]);
      expect(full!.stateBlockNIDs).to.deep.equal(blocks.slice(0, 64));
    });

    test('bulkInsertStates refuses a list longer than 64 blocks with an InvalidInputError (a rejected promise)', async ({ storage }) => {
      const snaps = storage.tables.stateSnapshots;
      const tx = storage.unitOfWork.autocommit;
      const blocks = await makeBlocks(storage, 65);
      await rejects(snaps.bulkInsertStates(tx, ROOM_A, [[blocks[0]!], blocks]), InvalidInputError);
      await rejects(storage.unitOfWork.transaction((t) => snaps.bulkInsertStates(t, ROOM_A, [[...blocks.slice(0, 64), blocks[0]!]])), InvalidInputError);
      const [ok] = await snaps.bulkInsertStates(tx, ROOM_A, [blocks.slice(0, 64)]);
      expect(await snaps.insertState(tx, ROOM_A, blocks.slice(0, 64))).to.equal(ok);
    });

    test('bulkInsertStates in a transaction: visible inside, kept on commit, gone on rollback (SQL)', async ({ storage }) => {
      const snaps = storage.tables.stateSnapshots;
      const tx = storage.unitOfWork.autocommit;
      const [b1, b2] = await makeBlocks(storage, 2) as [StateBlockNID, StateBlockNID];
      const [kept] = await storage.unitOfWork.transaction((t) => snaps.bulkInsertStates(t, ROOM_A, [[b1]]));
      let gone: number[] = [];
      await rolledBack(storage, async (t) => {
        gone = await snaps.bulkInsertStates(t, ROOM_A, [[b2, b1], [b1]]);
        expect(gone[1]).to.equal(kept);
        expect(await snaps.bulkSelectStateBlockNIDs(t, [asStateSnapshotNID(gone[0]!)]), 'visible inside the transaction').to.have.length(1);
      });
      if (storage.unitOfWork.atomicTransactions) {
        await rejects(snaps.bulkSelectStateBlockNIDs(tx, [asStateSnapshotNID(gone[0]!)]), MissingStateError);
        const [again] = await snaps.bulkInsertStates(tx, ROOM_A, [[b2, b1]]);
        expect((await snaps.bulkSelectStateBlockNIDs(tx, [again!]))[0]!.stateBlockNIDs).to.deep.equal([b2, b1]);
      }
      // Else (Cosmos DB, no rollback): the snapshots written before the failure stay (content-addressed, so harmless).
      expect(await snaps.bulkSelectStateBlockNIDs(tx, [kept!])).to.deep.equal([{ stateSnapshotNID: kept, stateBlockNIDs: [b1] }]);
    });
  });

  group(fw, driver, 'Table: membership (batch writes)', (test) => {
    const USERS = ['@alice:example.org', '@bob:remote.net', '@carol:example.org', '@dave:remote.net'];
    const ROOMS = ['!r:example.org', '!s:example.org'];

    test('bulkSelectMembershipsForUpdate returns the rows of the users that have one in that room, as the single selects read them', async ({ storage }) => {
      const { tx, m, user, room, write } = await membershipWorld(storage, USERS, ROOMS);
      const [r, s] = [room('!r:example.org'), room('!s:example.org')];
      const [alice, bob, carol, dave] = USERS.map(user) as [EventStateKeyNID, EventStateKeyNID, EventStateKeyNID, EventStateKeyNID];
      expect((await storage.unitOfWork.transaction((t) => m.bulkSelectMembershipsForUpdate(t, r, []))).size).to.equal(0);
      expect((await storage.unitOfWork.transaction((t) => m.bulkSelectMembershipsForUpdate(t, r, [alice, bob]))).size).to.equal(0);
      await m.bulkUpsertMemberships(tx, r, [write('@alice:example.org', JOIN, 10, { local: true }), write('@bob:remote.net', INVITE, 0, { sender: '@alice:example.org' })]);
      await m.insertMembership(tx, r, carol, true);
      // Dave is a member of the other room only.
      await m.bulkUpsertMemberships(tx, s, [write('@dave:remote.net', JOIN, 20)]);
      const got = await storage.unitOfWork.transaction((t) => m.bulkSelectMembershipsForUpdate(t, r, [dave, carol, alice, bob, alice, asEventStateKeyNID(dave + 1000)]));
      expect(got).to.deep.equal(new Map([
        [alice, { membership: JOIN, eventNID: 10 }], [bob, { membership: INVITE, eventNID: 0 }], [carol, { membership: LEAVE, eventNID: 0 }],
      ]));
      for (const [u, row] of got) {
        const single = await m.selectMembershipFromRoomAndTarget(tx, r, u);
        expect({ membership: single.membership, eventNID: single.eventNID }).to.deep.equal(row);
        expect(await storage.unitOfWork.transaction((t) => m.selectMembershipForUpdate(t, r, u))).to.equal(row.membership);
      }
      expect(await storage.unitOfWork.transaction((t) => m.bulkSelectMembershipsForUpdate(t, s, [alice, dave]))).to.deep.equal(new Map([[dave, { membership: JOIN, eventNID: 20 }]]));
    });

    test('bulkUpsertMemberships: a new row takes target_local; an existing one keeps it and gets state and event, forgotten cleared', async ({ storage }) => {
      const { tx, m, user, room, write } = await membershipWorld(storage, USERS, ROOMS);
      const r = room('!r:example.org');
      const [alice, bob, carol, dave] = USERS.map(user) as [EventStateKeyNID, EventStateKeyNID, EventStateKeyNID, EventStateKeyNID];
      await m.bulkUpsertMemberships(tx, r, []);
      await storage.unitOfWork.transaction((t) => m.bulkUpsertMemberships(t, r, []));
      expect(await m.selectMembershipsFromRoom(tx, r, false)).to.deep.equal([]);
      // Existing rows: alice local (via insertMembership), bob remote, joined and then forgotten.
      await m.insertMembership(tx, r, alice, true);
      await m.insertMembership(tx, r, bob, false);
      expect(await m.updateMembership(tx, r, bob, bob, JOIN, asEventNID(5), false)).to.equal(true);
      await m.updateForgetMembership(tx, r, bob, true);
      await m.bulkUpsertMemberships(tx, r, [
        // Existing: the write's target_local is ignored.
        write('@alice:example.org', JOIN, 11, { local: false }),
        write('@bob:remote.net', LEAVE, 12, { local: true, sender: '@alice:example.org' }),
        // New: the write's target_local is taken.
        write('@carol:example.org', JOIN, 13, { local: true }),
        write('@dave:remote.net', KNOCK, 14, { local: false }),
      ]);
      const read = async (u: EventStateKeyNID) => m.selectMembershipFromRoomAndTarget(tx, r, u);
      expect(await read(alice)).to.deep.equal({ eventNID: 11, membership: JOIN, forgotten: false });
      expect(await read(bob)).to.deep.equal({ eventNID: 12, membership: LEAVE, forgotten: false });
      expect(await read(carol)).to.deep.equal({ eventNID: 13, membership: JOIN, forgotten: false });
      expect(await read(dave)).to.deep.equal({ eventNID: 14, membership: KNOCK, forgotten: false });
      expect(await m.selectMembershipsFromRoom(tx, r, false)).to.deep.equal([11, 12, 13, 14]);
      expect(await m.selectMembershipsFromRoom(tx, r, true), 'local: alice (kept) and carol (new)').to.deep.equal([11, 13]);
      expect(await m.selectMembershipsFromRoomAndMembership(tx, r, JOIN, true)).to.deep.equal([11, 13]);
      // Overwritten again, in a transaction: alice leaves; the room's only joined local user is then carol.
      await storage.unitOfWork.transaction((t) => m.bulkUpsertMemberships(t, r, [write('@alice:example.org', LEAVE, 15, { local: true }), write('@carol:example.org', LEAVE, 16, { local: false })]));
      expect(await m.selectLocalServerInRoom(tx, r)).to.equal(false);
      expect(await m.selectMembershipsFromRoom(tx, r, true), 'still local: target_local is never changed by an upsert').to.deep.equal([15, 16]);
      expect(await m.selectMembershipsFromRoom(tx, r, false)).to.deep.equal([12, 14, 15, 16]);
    });

    test('bulkUpsertMemberships agrees with insertMembership + updateMembership, and touches only its room', async ({ storage }) => {
      const { tx, m, user, room, write } = await membershipWorld(storage, USERS, ['!single:example.org', '!bulk:example.org', '!other:example.org']);
      const [single, bulk, other] = [room('!single:example.org'), room('!bulk:example.org'), room('!other:example.org')];
      await m.bulkUpsertMemberships(tx, other, USERS.map((u, i) => write(u, JOIN, 100 + i, { local: true })));
      const writes = [
        write('@alice:example.org', JOIN, 1, { local: true }), write('@bob:remote.net', INVITE, 0, { local: false, sender: '@alice:example.org' }),
        write('@carol:example.org', KNOCK, 3, { local: true }), write('@dave:remote.net', LEAVE, 4, { local: false }),
      ];
      for (const w of writes) {
        await m.insertMembership(tx, single, w.targetUserNID, w.targetLocal);
        await m.updateMembership(tx, single, w.targetUserNID, w.senderUserNID, w.membership, w.eventNID, false);
      }
      await m.bulkUpsertMemberships(tx, bulk, writes);
      const view = async (r: RoomNID) => ({
        rows: await Promise.all(USERS.map((u) => m.selectMembershipFromRoomAndTarget(tx, r, user(u)))),
        all: await m.selectMembershipsFromRoom(tx, r, false),
        local: await m.selectMembershipsFromRoom(tx, r, true),
        joinedLocal: await m.selectLocalServerInRoom(tx, r),
        remote: await m.selectServerInRoom(tx, r, 'remote.net'),
        forUpdate: await storage.unitOfWork.transaction((t) => m.bulkSelectMembershipsForUpdate(t, r, USERS.map(user))),
      });
      expect(await view(bulk)).to.deep.equal(await view(single));
      expect((await view(other)).all, 'the other room is untouched').to.deep.equal([100, 101, 102, 103]);
      expect(await m.selectJoinedUsersSetForRooms(tx, [single, bulk])).to.deep.equal(new Map([[user('@alice:example.org'), 2]]));
    });

    test('bulkSelectMembershipsForUpdate holds the rows for its transaction: concurrent read-modify-writes lose no update (SQL)', async ({ storage }) => {
      const { tx, m, user, room, write } = await membershipWorld(storage, USERS, ROOMS);
      const r = room('!r:example.org');
      const users = USERS.slice(0, 3).map(user);
      await m.bulkUpsertMemberships(tx, r, USERS.slice(0, 3).map((u) => write(u, JOIN, 100)));
      // Each writer reads the rows (in its own order of users), yields, then writes each event NID + 1.
      const bump = (order: readonly EventStateKeyNID[]) => storage.unitOfWork.transaction(async (t) => {
        const read = await m.bulkSelectMembershipsForUpdate(t, r, order);
        await tick();
        await m.bulkUpsertMemberships(t, r, order.map((u) => ({
          targetUserNID: u, targetLocal: false, senderUserNID: u, membership: JOIN, eventNID: asEventNID(read.get(u)!.eventNID + 1),
        })));
      });
      const orders = [users, [...users].reverse(), shuffled(users, 3), users, [...users].reverse()];
      const results = await Promise.allSettled(orders.map(bump));
      if (storage.unitOfWork.atomicTransactions) {
        for (const res of results) expect(res.status, String((res as PromiseRejectedResult).reason)).to.equal('fulfilled');
        for (const u of users) expect((await m.selectMembershipFromRoomAndTarget(tx, r, u)).eventNID, `user NID ${u}`).to.equal(100 + orders.length);
      }
      // Else (Cosmos DB): rows are not locked (selectMembershipForUpdate is a plain read there too); the write path
      // serialises a room's writers by the room's conditional update instead, so there is nothing to assert here.
    });

    test('bulkUpsertMemberships in a transaction: visible inside, kept on commit, gone on rollback (SQL)', async ({ storage }) => {
      const { tx, m, user, room, write } = await membershipWorld(storage, USERS, ROOMS);
      const r = room('!r:example.org');
      await storage.unitOfWork.transaction(async (t) => {
        await m.bulkUpsertMemberships(t, r, [write('@alice:example.org', JOIN, 1, { local: true })]);
        expect(await m.bulkSelectMembershipsForUpdate(t, r, [user('@alice:example.org')])).to.deep.equal(new Map([[user('@alice:example.org'), { membership: JOIN, eventNID: 1 }]]));
      });
      await rolledBack(storage, async (t) => {
        await m.bulkUpsertMemberships(t, r, [write('@alice:example.org', LEAVE, 2, { local: true }), write('@bob:remote.net', JOIN, 3)]);
        expect((await m.bulkSelectMembershipsForUpdate(t, r, [user('@alice:example.org'), user('@bob:remote.net')])).size, 'visible inside the transaction').to.equal(2);
      });
      if (storage.unitOfWork.atomicTransactions) {
        expect(await m.selectMembershipFromRoomAndTarget(tx, r, user('@alice:example.org'))).to.deep.equal({ eventNID: 1, membership: JOIN, forgotten: false });
        await rejects(m.selectMembershipFromRoomAndTarget(tx, r, user('@bob:remote.net')), NotFoundError);
        expect(await m.selectMembershipsFromRoom(tx, r, false)).to.deep.equal([1]);
      }
      // Else (Cosmos DB, no rollback): the memberships written before the failure stay; nothing to assert about a rollback.
    });
  });

  group(fw, driver, 'Table: transactions (batch writes)', (test) => {
    test('selectTransactionEventIDIfAny is null for a missing key and the stored event ID otherwise, as selectTransactionEventID', async ({ storage }) => {
      const t = storage.tables.transactions;
      const tx = storage.unitOfWork.autocommit;
      const key = { transactionID: 'txn1', sessionID: 7, userID: '@alice:example.org' };
      expect(await t.selectTransactionEventIDIfAny(tx, key)).to.equal(null);
      expect(await storage.unitOfWork.transaction((inTx) => t.selectTransactionEventIDIfAny(inTx, key))).to.equal(null);
      await t.insertTransaction(tx, key, '$event');
      expect(await t.selectTransactionEventIDIfAny(tx, key)).to.equal('$event');
      expect(await t.selectTransactionEventIDIfAny(tx, { ...key })).to.equal(await t.selectTransactionEventID(tx, key));
      expect(await storage.unitOfWork.transaction((inTx) => t.selectTransactionEventIDIfAny(inTx, key))).to.equal('$event');
      // Each part of the key tells keys apart; a miss is null, never an error.
      for (const other of [
        { ...key, transactionID: 'txn2' }, { ...key, transactionID: 'TXN1' }, { ...key, transactionID: 'txn1 ' },
        { ...key, sessionID: 8 }, { ...key, sessionID: 0 }, { ...key, userID: '@bob:example.org' },
      ]) {
        expect(await t.selectTransactionEventIDIfAny(tx, other), JSON.stringify(other)).to.equal(null);
        await rejects(t.selectTransactionEventID(tx, other), NotFoundError);
      }
    });

    test('selectTransactionEventIDIfAny with hostile transaction IDs: exact match, no collisions between key parts', async ({ storage }) => {
      const t = storage.tables.transactions;
      const tx = storage.unitOfWork.autocommit;
      const keys = [
        ...HOSTILE.map((s) => ({ transactionID: s, sessionID: 1, userID: '@u:x.org' })),
        { transactionID: 'a|1', sessionID: 2, userID: '@u:x.org' },
        { transactionID: 'a', sessionID: 1, userID: '2|@u:x.org' },
        { transactionID: 'a/1', sessionID: 2, userID: '@u:x.org' },
        { transactionID: 'a', sessionID: 1, userID: '2/@u:x.org' },
        { transactionID: long255('t'), sessionID: 1, userID: '@u:x.org' },
      ];
      for (const [i, k] of keys.entries()) await t.insertTransaction(tx, k, `$e${i}`);
      for (const [i, k] of keys.entries()) expect(await t.selectTransactionEventIDIfAny(tx, k), JSON.stringify(k).slice(0, 60)).to.equal(`$e${i}`);
      for (const transactionID of ['1000', 'underXscore', 'x', 'CASE', 'trailing  ', long255('t').slice(0, -1)]) {
        expect(await t.selectTransactionEventIDIfAny(tx, { transactionID, sessionID: 1, userID: '@u:x.org' }), transactionID.slice(0, 40)).to.equal(null);
      }
    });
  });

  group(fw, driver, 'Table: invites (batch writes)', (test) => {
    const room = asRoomNID(3);
    const [alice, bob, carol] = [asEventStateKeyNID(70_001), asEventStateKeyNID(70_002), asEventStateKeyNID(70_003)];
    const invite = (id: string, target: EventStateKeyNID, retired = false, roomNID = room) =>
      ({ inviteEventID: id, roomNID, targetUserNID: target, senderUserNID: alice, inviteEventJSON: `{"id":"${id}"}`, retired });

    test('bulkInsertInvites keeps the order given and each retired flag; bulkSelectActiveInvites lists the active ones in that order', async ({ storage }) => {
      const t = storage.tables.invites;
      const tx = storage.unitOfWork.autocommit;
      await t.insertInviteEvent(tx, invite('$first', bob));
      await t.bulkInsertInvites(tx, [invite('$b2', bob), invite('$c1', carol, true), invite('$b3', bob), invite('$c2', carol), invite('$elsewhere', bob, false, asRoomNID(4))]);
      await t.bulkInsertInvites(tx, []);
      const active = await t.bulkSelectActiveInvites(tx, room, [bob, carol, alice, bob]);
      expect([...active.entries()].sort()).to.deep.equal([[bob, ['$first', '$b2', '$b3']], [carol, ['$c2']]]);
      // The same as the single-row reads.
      expect((await t.selectInviteActiveForUserInRoom(tx, bob, room)).eventIDs).to.deep.equal(['$first', '$b2', '$b3']);
      expect((await t.selectInviteActiveForUserInRoom(tx, carol, room)).eventIDs).to.deep.equal(['$c2']);
      expect(await t.bulkSelectActiveInvites(tx, room, [])).to.deep.equal(new Map());
    });

    test('an invite ID stored already is left as it is by bulkInsertInvites; bulkSelectStoredInviteIDs sees retired ones too', async ({ storage }) => {
      const t = storage.tables.invites;
      const tx = storage.unitOfWork.autocommit;
      await t.insertInviteEvent(tx, invite('$kept', bob));
      await t.updateInviteRetired(tx, room, bob);
      await t.insertInviteEvent(tx, invite('$active', carol));
      await t.bulkInsertInvites(tx, [invite('$kept', bob), invite('$active', carol, true), invite('$new', carol)]);
      expect((await t.selectInviteActiveForUserInRoom(tx, bob, room)).eventIDs).to.deep.equal([]);
      expect((await t.selectInviteActiveForUserInRoom(tx, carol, room)).eventIDs).to.deep.equal(['$active', '$new']);
      const ids = ['$kept', '$active', '$new', '$missing', ...HOSTILE_EVENT_IDS];
      expect([...await t.bulkSelectStoredInviteIDs(tx, ids)].sort()).to.deep.equal(['$active', '$kept', '$new']);
      expect(await t.bulkSelectStoredInviteIDs(tx, [])).to.deep.equal(new Set());
    });

    test('bulkRetireInvites retires exactly the invites named, as updateInviteRetired would; hostile IDs matched exactly', async ({ storage }) => {
      const t = storage.tables.invites;
      const tx = storage.unitOfWork.autocommit;
      const hostile = HOSTILE_EVENT_IDS.slice(0, 8);
      await t.bulkInsertInvites(tx, [...hostile.map((id) => invite(id, bob)), invite('$c1', carol), invite('$c2', carol)]);
      await t.bulkRetireInvites(tx, [...hostile.slice(0, 4), '$c1'].map((id) => ({ roomNID: room, targetUserNID: id === '$c1' ? carol : bob, inviteEventID: id })));
      await t.bulkRetireInvites(tx, []);
      expect((await t.selectInviteActiveForUserInRoom(tx, bob, room)).eventIDs).to.deep.equal(hostile.slice(4));
      expect((await t.selectInviteActiveForUserInRoom(tx, carol, room)).eventIDs).to.deep.equal(['$c2']);
      // What is left active is what a join would retire, in insertion order.
      expect(await t.updateInviteRetired(tx, room, bob)).to.deep.equal(hostile.slice(4));
    });
  });
}

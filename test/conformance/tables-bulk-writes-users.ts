import { expect } from 'chai';
import type { Storage } from '../../src/index.js';
import type { MembershipWrite } from '../../src/storage/tables/index.js';
import { NotFoundError } from '../../src/types/errors.js';
import { MembershipState } from '../../src/types/membership.js';
import { asEventNID, asEventStateKeyNID, asRoomNID, type EventStateKeyNID, type RoomNID } from '../../src/types/nids.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { rejects, usersAndRooms } from './fixtures.js';
import { HOSTILE, HOSTILE_EVENT_IDS, long255, rolledBack, shuffled } from './bulk-write-fixtures.js';

/*
 * The batch write path's set-based methods on the tables with a row per user: membership, transactions (a user's
 * client transaction IDs) and invites.
 */

const { join: JOIN, invite: INVITE, leaveOrBan: LEAVE, knock: KNOCK } = MembershipState;
const tick = () => new Promise((resolve) => setImmediate(resolve));

/** Users are state keys, rooms come from the rooms table; `write` builds a MembershipWrite. */
async function membershipWorld(storage: Storage, users: readonly string[], rooms: readonly string[]) {
  const { tx, user, room } = await usersAndRooms(storage, users, rooms);
  const write = (target: string, membership: MembershipState, eventNID: number, opts: { local?: boolean; sender?: string } = {}): MembershipWrite => ({
    targetUserNID: user(target), targetLocal: opts.local ?? false, senderUserNID: user(opts.sender ?? target), membership, eventNID: asEventNID(eventNID),
  });
  return { tx, m: storage.tables.membership, user, room, write };
}

export function bulkWriteUserTableTests(fw: TestFramework, driver: DriverUnderTest): void {
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

import { expect } from 'chai';
import type { Storage } from '../../src/index.js';
import { NotFoundError } from '../../src/types/errors.js';
import { MembershipState } from '../../src/types/membership.js';
import { asEventNID, asEventStateKeyNID, asRoomNID } from '../../src/types/nids.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { rejects, usersAndRooms } from './fixtures.js';

const { join: JOIN, invite: INVITE, leaveOrBan: LEAVE, knock: KNOCK } = MembershipState;
const sorted = (nids: readonly number[]) => [...nids].sort((a, b) => a - b);

/** The users and rooms (usersAndRooms), and `set`, which writes a membership as the membership updater does. */
async function world(storage: Storage, users: readonly string[], rooms: readonly string[]) {
  const { tx, user, room } = await usersAndRooms(storage, users, rooms);
  const m = storage.tables.membership;
  /** Creates the row (if absent) and sets its state, as the membership updater does. */
  const set = async (roomID: string, userID: string, state: MembershipState, eventNID: number, opts: { local?: boolean; forgotten?: boolean } = {}) => {
    await m.insertMembership(tx, room(roomID), user(userID), opts.local ?? false);
    expect(await m.updateMembership(tx, room(roomID), user(userID), user(userID), state, asEventNID(eventNID), opts.forgotten ?? false)).to.equal(true);
  };
  return { tx, m, user, room, set };
}

export function membershipTableTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Table: membership', (test) => {
    test('insertMembership creates a leave membership with no event, not forgotten', async ({ storage }) => {
      const { tx, m, user, room } = await world(storage, ['@alice:example.org'], ['!r:example.org']);
      await m.insertMembership(tx, room('!r:example.org'), user('@alice:example.org'), true);
      expect(await m.selectMembershipFromRoomAndTarget(tx, room('!r:example.org'), user('@alice:example.org')))
        .to.deep.equal({ eventNID: 0, membership: LEAVE, forgotten: false });
      expect(await storage.unitOfWork.transaction((inTx) => m.selectMembershipForUpdate(inTx, room('!r:example.org'), user('@alice:example.org'))))
        .to.equal(LEAVE);
    });

    test('insertMembership on an existing row changes nothing: state, event and target_local are kept', async ({ storage }) => {
      const { tx, m, user, room, set } = await world(storage, ['@remote:other.net', '@local:example.org'], ['!r:example.org']);
      const r = room('!r:example.org');
      await set('!r:example.org', '@remote:other.net', JOIN, 10, { local: false });
      await set('!r:example.org', '@local:example.org', JOIN, 11, { local: true });
      await m.insertMembership(tx, r, user('@remote:other.net'), true);
      await storage.unitOfWork.transaction((inTx) => m.insertMembership(inTx, r, user('@local:example.org'), false));
      expect(await m.selectMembershipFromRoomAndTarget(tx, r, user('@remote:other.net'))).to.deep.equal({ eventNID: 10, membership: JOIN, forgotten: false });
      expect(await m.selectMembershipFromRoomAndTarget(tx, r, user('@local:example.org'))).to.deep.equal({ eventNID: 11, membership: JOIN, forgotten: false });
      // The remote user is still not local, the local one still is.
      expect(await m.selectMembershipsFromRoom(tx, r, true)).to.deep.equal([11]);
      await m.updateMembership(tx, r, user('@local:example.org'), user('@local:example.org'), LEAVE, asEventNID(12), false);
      expect(await m.selectLocalServerInRoom(tx, r)).to.equal(false);
    });

    test('reading a missing membership is a NotFoundError; updating one returns false and creates nothing', async ({ storage }) => {
      const { tx, m, user, room, set } = await world(storage, ['@alice:example.org', '@bob:example.org'], ['!r:example.org', '!s:example.org']);
      await set('!r:example.org', '@alice:example.org', JOIN, 10);
      // Another user in the room, and the same user in another room, are not that membership.
      await rejects(m.selectMembershipFromRoomAndTarget(tx, room('!r:example.org'), user('@bob:example.org')), NotFoundError);
      await rejects(m.selectMembershipFromRoomAndTarget(tx, room('!s:example.org'), user('@alice:example.org')), NotFoundError);
      await rejects(storage.unitOfWork.transaction((inTx) => m.selectMembershipForUpdate(inTx, room('!s:example.org'), user('@alice:example.org'))), NotFoundError);
      expect(await m.updateMembership(tx, room('!s:example.org'), user('@alice:example.org'), user('@alice:example.org'), JOIN, asEventNID(20), false)).to.equal(false);
      await rejects(m.selectMembershipFromRoomAndTarget(tx, room('!s:example.org'), user('@alice:example.org')), NotFoundError);
      expect(await m.selectRoomsWithMembership(tx, user('@alice:example.org'), JOIN)).to.deep.equal([room('!r:example.org')]);
    });

    test('updateMembership overwrites state, event and forgotten, returns true, and touches only that row', async ({ storage }) => {
      const { tx, m, user, room, set } = await world(storage, ['@alice:example.org', '@bob:example.org'], ['!r:example.org']);
      const r = room('!r:example.org');
      await set('!r:example.org', '@alice:example.org', INVITE, 0);
      await set('!r:example.org', '@bob:example.org', JOIN, 5);
      const alice = user('@alice:example.org');
      expect(await m.selectMembershipFromRoomAndTarget(tx, r, alice)).to.deep.equal({ eventNID: 0, membership: INVITE, forgotten: false });
      expect(await storage.unitOfWork.transaction((inTx) =>
        m.updateMembership(inTx, r, alice, user('@bob:example.org'), JOIN, asEventNID(12), false))).to.equal(true);
      expect(await m.selectMembershipFromRoomAndTarget(tx, r, alice)).to.deep.equal({ eventNID: 12, membership: JOIN, forgotten: false });
      expect(await storage.unitOfWork.transaction((inTx) => m.selectMembershipForUpdate(inTx, r, alice))).to.equal(JOIN);
      expect(await m.updateMembership(tx, r, alice, alice, KNOCK, asEventNID(13), true)).to.equal(true);
      expect(await m.selectMembershipFromRoomAndTarget(tx, r, alice)).to.deep.equal({ eventNID: 13, membership: KNOCK, forgotten: true });
      expect(await m.selectMembershipFromRoomAndTarget(tx, r, user('@bob:example.org'))).to.deep.equal({ eventNID: 5, membership: JOIN, forgotten: false });
    });

    test('selectMembershipsFromRoom: event NIDs of memberships with an event, not forgotten, local only on request', async ({ storage }) => {
      const { tx, m, room, set } = await world(storage,
        ['@alice:example.org', '@bob:other.net', '@carol:example.org', '@dave:example.org', '@erin:other.net', '@fay:example.org'],
        ['!r:example.org', '!s:example.org']);
      await set('!r:example.org', '@alice:example.org', JOIN, 10, { local: true });
      await set('!r:example.org', '@bob:other.net', JOIN, 11);
      await set('!r:example.org', '@carol:example.org', INVITE, 0, { local: true }); // invited, never in the room: no event
      await set('!r:example.org', '@dave:example.org', LEAVE, 13, { local: true, forgotten: true });
      await set('!r:example.org', '@erin:other.net', LEAVE, 14);
      await set('!r:example.org', '@fay:example.org', INVITE, 15, { local: true }); // invited after leaving: the leave event
      await set('!s:example.org', '@alice:example.org', JOIN, 20, { local: true });
      const r = room('!r:example.org');
      expect(sorted(await m.selectMembershipsFromRoom(tx, r, false))).to.deep.equal([10, 11, 14, 15]);
      expect(sorted(await m.selectMembershipsFromRoom(tx, r, true))).to.deep.equal([10, 15]);
      expect(await m.selectMembershipsFromRoom(tx, room('!s:example.org'), false)).to.deep.equal([20]);
      expect(await m.selectMembershipsFromRoom(tx, asRoomNID(room('!s:example.org') + 1000), false)).to.deep.equal([]);
    });

    test('selectMembershipsFromRoomAndMembership filters the same by state', async ({ storage }) => {
      const { tx, m, room, set } = await world(storage,
        ['@alice:example.org', '@bob:other.net', '@carol:example.org', '@dave:example.org', '@erin:other.net', '@gus:example.org'],
        ['!r:example.org', '!s:example.org']);
      await set('!r:example.org', '@alice:example.org', JOIN, 10, { local: true });
      await set('!r:example.org', '@bob:other.net', JOIN, 11);
      await set('!r:example.org', '@carol:example.org', INVITE, 0, { local: true });
      await set('!r:example.org', '@dave:example.org', LEAVE, 13, { local: true, forgotten: true });
      await set('!r:example.org', '@erin:other.net', LEAVE, 14);
      await set('!r:example.org', '@gus:example.org', JOIN, 16, { local: true, forgotten: true });
      await set('!s:example.org', '@bob:other.net', JOIN, 20);
      const r = room('!r:example.org');
      expect(sorted(await m.selectMembershipsFromRoomAndMembership(tx, r, JOIN, false))).to.deep.equal([10, 11]);
      expect(await m.selectMembershipsFromRoomAndMembership(tx, r, JOIN, true)).to.deep.equal([10]);
      expect(await m.selectMembershipsFromRoomAndMembership(tx, r, INVITE, false)).to.deep.equal([]);
      expect(await m.selectMembershipsFromRoomAndMembership(tx, r, LEAVE, false)).to.deep.equal([14]);
      expect(await m.selectMembershipsFromRoomAndMembership(tx, r, LEAVE, true)).to.deep.equal([]);
      expect(await m.selectMembershipsFromRoomAndMembership(tx, r, KNOCK, false)).to.deep.equal([]);
    });

    test('selectRoomsWithMembership lists the rooms with that state, ascending, leaving out forgotten ones', async ({ storage }) => {
      const rooms = ['!r1:example.org', '!r2:example.org', '!r3:example.org', '!r4:example.org', '!r5:example.org'];
      const { tx, m, user, room, set } = await world(storage, ['@alice:example.org', '@bob:example.org'], rooms);
      await set('!r3:example.org', '@alice:example.org', JOIN, 30);
      await set('!r1:example.org', '@alice:example.org', JOIN, 10);
      await set('!r2:example.org', '@alice:example.org', INVITE, 20);
      await set('!r4:example.org', '@alice:example.org', JOIN, 40, { forgotten: true });
      await set('!r5:example.org', '@bob:example.org', JOIN, 50);
      const alice = user('@alice:example.org');
      expect(await m.selectRoomsWithMembership(tx, alice, JOIN)).to.deep.equal(sorted([room('!r1:example.org'), room('!r3:example.org')]));
      expect(await m.selectRoomsWithMembership(tx, alice, INVITE)).to.deep.equal([room('!r2:example.org')]);
      expect(await m.selectRoomsWithMembership(tx, alice, LEAVE)).to.deep.equal([]);
      expect(await m.selectRoomsWithMembership(tx, asEventStateKeyNID(alice + 1000), JOIN)).to.deep.equal([]);
    });

    test('updateForgetMembership sets and clears forgotten, which hides and shows the membership', async ({ storage }) => {
      const { tx, m, user, room, set } = await world(storage, ['@alice:example.org'], ['!r:example.org']);
      const r = room('!r:example.org');
      const alice = user('@alice:example.org');
      await set('!r:example.org', '@alice:example.org', LEAVE, 10, { local: true });
      await m.updateForgetMembership(tx, r, alice, true);
      expect(await m.selectMembershipFromRoomAndTarget(tx, r, alice)).to.deep.equal({ eventNID: 10, membership: LEAVE, forgotten: true });
      expect(await m.selectMembershipsFromRoom(tx, r, false)).to.deep.equal([]);
      expect(await m.selectRoomsWithMembership(tx, alice, LEAVE)).to.deep.equal([]);
      await storage.unitOfWork.transaction((inTx) => m.updateForgetMembership(inTx, r, alice, false));
      expect(await m.selectMembershipFromRoomAndTarget(tx, r, alice)).to.deep.equal({ eventNID: 10, membership: LEAVE, forgotten: false });
      expect(await m.selectMembershipsFromRoom(tx, r, false)).to.deep.equal([10]);
      expect(await m.selectRoomsWithMembership(tx, alice, LEAVE)).to.deep.equal([r]);
    });

    test('selectJoinedUsersSetForRooms counts, per user, the listed rooms they are joined to and have not forgotten', async ({ storage }) => {
      const { tx, m, user, room, set } = await world(storage,
        ['@alice:example.org', '@bob:example.org', '@carol:example.org', '@dave:example.org'],
        ['!r1:example.org', '!r2:example.org', '!r3:example.org']);
      await set('!r1:example.org', '@alice:example.org', JOIN, 1);
      await set('!r2:example.org', '@alice:example.org', JOIN, 2);
      await set('!r3:example.org', '@alice:example.org', JOIN, 3);
      await set('!r1:example.org', '@bob:example.org', JOIN, 4);
      await set('!r2:example.org', '@bob:example.org', LEAVE, 5);
      await set('!r1:example.org', '@carol:example.org', INVITE, 6);
      await set('!r2:example.org', '@dave:example.org', JOIN, 7, { forgotten: true });
      const [r1, r2, r3] = [room('!r1:example.org'), room('!r2:example.org'), room('!r3:example.org')];
      expect(await m.selectJoinedUsersSetForRooms(tx, [r1, r2])).to.deep.equal(new Map([[user('@alice:example.org'), 2], [user('@bob:example.org'), 1]]));
      expect(await m.selectJoinedUsersSetForRooms(tx, [r3])).to.deep.equal(new Map([[user('@alice:example.org'), 1]]));
      expect(await m.selectJoinedUsersSetForRooms(tx, [r1, r2, r3])).to.deep.equal(new Map([[user('@alice:example.org'), 3], [user('@bob:example.org'), 1]]));
      expect((await m.selectJoinedUsersSetForRooms(tx, [asRoomNID(r3 + 1000)])).size).to.equal(0);
      expect((await m.selectJoinedUsersSetForRooms(tx, [])).size).to.equal(0);
    });

    test('selectKnownUsers: users joined to a room the user is joined to, the user included, sorted, at most limit', async ({ storage }) => {
      const users = ['@alice:example.org', '@bob:example.org', '@carol:other.net', '@dave:example.org', '@erin:example.org',
        '@frank:example.org', '@gina:example.org', '@hal:example.org'];
      const { tx, m, user, set } = await world(storage, users, ['!r1:example.org', '!r2:example.org', '!r3:example.org', '!r4:example.org']);
      await set('!r1:example.org', '@alice:example.org', JOIN, 1);
      await set('!r1:example.org', '@carol:other.net', JOIN, 2);
      await set('!r1:example.org', '@bob:example.org', JOIN, 3);
      await set('!r2:example.org', '@alice:example.org', JOIN, 4);
      await set('!r2:example.org', '@dave:example.org', JOIN, 5);
      await set('!r3:example.org', '@erin:example.org', JOIN, 6); // shares no room with alice
      await set('!r1:example.org', '@frank:example.org', INVITE, 7); // not joined
      await set('!r1:example.org', '@gina:example.org', LEAVE, 8); // left
      await set('!r4:example.org', '@alice:example.org', LEAVE, 9); // alice left r4, so hal is not known
      await set('!r4:example.org', '@hal:example.org', JOIN, 10);
      const alice = user('@alice:example.org');
      expect(await m.selectKnownUsers(tx, alice, '', 100)).to.deep.equal(['@alice:example.org', '@bob:example.org', '@carol:other.net', '@dave:example.org']);
      expect(await m.selectKnownUsers(tx, alice, '', 2)).to.deep.equal(['@alice:example.org', '@bob:example.org']);
      expect(await m.selectKnownUsers(tx, alice, 'example.org', 100)).to.deep.equal(['@alice:example.org', '@bob:example.org', '@dave:example.org']);
      expect(await m.selectKnownUsers(tx, alice, 'car', 100)).to.deep.equal(['@carol:other.net']);
      expect(await m.selectKnownUsers(tx, alice, 'erin', 100)).to.deep.equal([]);
      expect(await m.selectKnownUsers(tx, user('@erin:example.org'), '', 100)).to.deep.equal(['@erin:example.org']);
      expect(await m.selectKnownUsers(tx, user('@dave:example.org'), '', 100)).to.deep.equal(['@alice:example.org', '@dave:example.org']);
      // A user joined nowhere knows nobody, not even themself.
      expect(await m.selectKnownUsers(tx, user('@frank:example.org'), '', 100)).to.deep.equal([]);
    });

    test('selectKnownUsers takes the search literally: % and _ match only themselves', async ({ storage }) => {
      const users = ['@alice:example.org', '@a_b:example.org', '@axb:example.org', '@100%:example.org', '@1000:example.org', '@back\\slash:example.org'];
      const { tx, m, user, set } = await world(storage, users, ['!r:example.org']);
      for (const [i, u] of users.entries()) await set('!r:example.org', u, JOIN, i + 1);
      const alice = user('@alice:example.org');
      expect(await m.selectKnownUsers(tx, alice, '', 100)).to.have.length(users.length);
      expect(await m.selectKnownUsers(tx, alice, '%', 100)).to.deep.equal(['@100%:example.org']);
      expect(await m.selectKnownUsers(tx, alice, '_', 100)).to.deep.equal(['@a_b:example.org']);
      expect(await m.selectKnownUsers(tx, alice, 'a_b', 100)).to.deep.equal(['@a_b:example.org']);
      expect(await m.selectKnownUsers(tx, alice, '100%', 100)).to.deep.equal(['@100%:example.org']);
      expect(await m.selectKnownUsers(tx, alice, '%:', 100)).to.deep.equal(['@100%:example.org']);
      expect(await m.selectKnownUsers(tx, alice, '\\', 100)).to.deep.equal(['@back\\slash:example.org']);
      expect(await m.selectKnownUsers(tx, alice, '@%', 100)).to.deep.equal([]);
      expect(await m.selectKnownUsers(tx, alice, '_b', 100)).to.deep.equal(['@a_b:example.org']);
    });

    test('selectLocalServerInRoom is true only while a local user is joined', async ({ storage }) => {
      const { tx, m, user, room, set } = await world(storage, ['@local:example.org', '@remote:other.net', '@invited:example.org'], ['!r:example.org', '!s:example.org']);
      const r = room('!r:example.org');
      expect(await m.selectLocalServerInRoom(tx, r)).to.equal(false);
      await set('!r:example.org', '@remote:other.net', JOIN, 1, { local: false });
      await set('!r:example.org', '@invited:example.org', INVITE, 0, { local: true });
      expect(await m.selectLocalServerInRoom(tx, r)).to.equal(false);
      await set('!r:example.org', '@local:example.org', JOIN, 2, { local: true });
      expect(await m.selectLocalServerInRoom(tx, r)).to.equal(true);
      expect(await m.selectLocalServerInRoom(tx, room('!s:example.org'))).to.equal(false);
      await m.updateMembership(tx, r, user('@local:example.org'), user('@local:example.org'), LEAVE, asEventNID(3), false);
      expect(await m.selectLocalServerInRoom(tx, r)).to.equal(false);
    });

    test('selectServerInRoom matches ":" + server name literally at the end of a joined user\'s ID', async ({ storage }) => {
      const { tx, m, user, room, set } = await world(storage,
        ['@bob:remote.net', '@inv:invited.org', '@p:host.org:8448', '@gone:left.org'], ['!r:example.org', '!s:example.org']);
      const r = room('!r:example.org');
      await set('!r:example.org', '@bob:remote.net', JOIN, 1);
      await set('!r:example.org', '@inv:invited.org', INVITE, 2);
      await set('!r:example.org', '@p:host.org:8448', JOIN, 3);
      await set('!r:example.org', '@gone:left.org', LEAVE, 4);
      expect(await m.selectServerInRoom(tx, r, 'remote.net')).to.equal(true);
      expect(await m.selectServerInRoom(tx, r, 'host.org:8448')).to.equal(true);
      for (const notThere of ['emote.net', 'net', 'remote.ne', 'REMOTE.NET', 'remote', '_emote.net', 'remote_net', '%', '%.net', 'invited.org', 'left.org', 'host.org']) {
        expect(await m.selectServerInRoom(tx, r, notThere), notThere).to.equal(false);
      }
      expect(await m.selectServerInRoom(tx, room('!s:example.org'), 'remote.net')).to.equal(false);
      await m.updateMembership(tx, r, user('@bob:remote.net'), user('@bob:remote.net'), LEAVE, asEventNID(5), false);
      expect(await m.selectServerInRoom(tx, r, 'remote.net')).to.equal(false);
    });
  });

  group(fw, driver, 'Table: invites', (test) => {
    const json = (id: string) => JSON.stringify({ event_id: id, type: 'm.room.member', content: { membership: 'invite' } });
    const invite = (id: string, room: number, target: number, sender: number) => ({
      inviteEventID: id, roomNID: asRoomNID(room), targetUserNID: asEventStateKeyNID(target), senderUserNID: asEventStateKeyNID(sender),
      inviteEventJSON: json(id),
    });

    test('insertInviteEvent is true for a new invite and false, changing nothing, for an ID already stored', async ({ storage }) => {
      const inv = storage.tables.invites;
      const tx = storage.unitOfWork.autocommit;
      expect(await inv.insertInviteEvent(tx, invite('$i1', 1, 10, 20))).to.equal(true);
      expect(await inv.insertInviteEvent(tx, invite('$i1', 1, 10, 21))).to.equal(false);
      expect(await storage.unitOfWork.transaction((inTx) => inv.insertInviteEvent(inTx, invite('$i1', 2, 11, 22)))).to.equal(false);
      expect(await inv.selectInviteActiveForUserInRoom(tx, asEventStateKeyNID(10), asRoomNID(1))).to.deep.equal({ senderUserNIDs: [20], eventIDs: ['$i1'], inviteEventJSONs: [json('$i1')] });
      expect(await inv.selectInviteActiveForUserInRoom(tx, asEventStateKeyNID(11), asRoomNID(2))).to.deep.equal({ senderUserNIDs: [], eventIDs: [], inviteEventJSONs: [] });
      // Even once retired, the ID stays taken.
      await inv.updateInviteRetired(tx, asRoomNID(1), asEventStateKeyNID(10));
      expect(await inv.insertInviteEvent(tx, invite('$i1', 1, 10, 20))).to.equal(false);
      expect(await inv.selectInviteActiveForUserInRoom(tx, asEventStateKeyNID(10), asRoomNID(1))).to.deep.equal({ senderUserNIDs: [], eventIDs: [], inviteEventJSONs: [] });
    });

    test('selectInviteActiveForUserInRoom lists the active invites in insertion order; empty lists if none', async ({ storage }) => {
      const inv = storage.tables.invites;
      const tx = storage.unitOfWork.autocommit;
      expect(await inv.selectInviteActiveForUserInRoom(tx, asEventStateKeyNID(10), asRoomNID(1))).to.deep.equal({ senderUserNIDs: [], eventIDs: [], inviteEventJSONs: [] });
      // IDs and senders deliberately out of sorted order.
      await inv.insertInviteEvent(tx, invite('$z', 1, 10, 30));
      await inv.insertInviteEvent(tx, invite('$other-room', 2, 10, 31));
      await inv.insertInviteEvent(tx, invite('$a', 1, 10, 20));
      await inv.insertInviteEvent(tx, invite('$other-user', 1, 11, 32));
      await inv.insertInviteEvent(tx, invite('$m', 1, 10, 25));
      expect(await inv.selectInviteActiveForUserInRoom(tx, asEventStateKeyNID(10), asRoomNID(1)))
        .to.deep.equal({ senderUserNIDs: [30, 20, 25], eventIDs: ['$z', '$a', '$m'], inviteEventJSONs: [json('$z'), json('$a'), json('$m')] });
      expect(await inv.selectInviteActiveForUserInRoom(tx, asEventStateKeyNID(10), asRoomNID(2)))
        .to.deep.equal({ senderUserNIDs: [31], eventIDs: ['$other-room'], inviteEventJSONs: [json('$other-room')] });
      // The argument order is (target, room): swapping them finds nothing here.
      expect(await inv.selectInviteActiveForUserInRoom(tx, asEventStateKeyNID(1), asRoomNID(10))).to.deep.equal({ senderUserNIDs: [], eventIDs: [], inviteEventJSONs: [] });
    });

    test('updateInviteRetired retires the active invites of that user in that room and returns their IDs in insertion order, once', async ({ storage }) => {
      const inv = storage.tables.invites;
      const tx = storage.unitOfWork.autocommit;
      await inv.insertInviteEvent(tx, invite('$z', 1, 10, 30));
      await inv.insertInviteEvent(tx, invite('$other-room', 2, 10, 31));
      await inv.insertInviteEvent(tx, invite('$a', 1, 10, 20));
      await inv.insertInviteEvent(tx, invite('$other-user', 1, 11, 32));
      expect(await storage.unitOfWork.transaction((inTx) => inv.updateInviteRetired(inTx, asRoomNID(1), asEventStateKeyNID(10)))).to.deep.equal(['$z', '$a']);
      expect(await inv.selectInviteActiveForUserInRoom(tx, asEventStateKeyNID(10), asRoomNID(1))).to.deep.equal({ senderUserNIDs: [], eventIDs: [], inviteEventJSONs: [] });
      expect(await inv.updateInviteRetired(tx, asRoomNID(1), asEventStateKeyNID(10))).to.deep.equal([]);
      // Other users and rooms keep their invites.
      expect((await inv.selectInviteActiveForUserInRoom(tx, asEventStateKeyNID(10), asRoomNID(2))).eventIDs).to.deep.equal(['$other-room']);
      expect((await inv.selectInviteActiveForUserInRoom(tx, asEventStateKeyNID(11), asRoomNID(1))).eventIDs).to.deep.equal(['$other-user']);
      // A new invite after retirement is active, and only it is retired next time.
      await inv.insertInviteEvent(tx, invite('$b', 1, 10, 21));
      expect((await inv.selectInviteActiveForUserInRoom(tx, asEventStateKeyNID(10), asRoomNID(1))).eventIDs).to.deep.equal(['$b']);
      expect(await inv.updateInviteRetired(tx, asRoomNID(1), asEventStateKeyNID(10))).to.deep.equal(['$b']);
      expect(await inv.updateInviteRetired(tx, asRoomNID(3), asEventStateKeyNID(10))).to.deep.equal([]);
    });
  });
}

import { expect } from 'chai';
import { InvalidInputError } from '../../src/types/errors.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { makeEvent, rejects, seedRoom } from './fixtures.js';

const ROOM = '!room:example.org';

/** Membership transitions and the queries over memberships. */
export function databaseMembershipTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Database: memberships', (test) => {
    /** Appends a member event for `user` after `prev`, returning its ID. */
    const member = (id: string, user: string, membership: string, prev: string, depth: number, sender = user, extra: Record<string, unknown> = {}) =>
      makeEvent({ id, type: 'm.room.member', stateKey: user, sender, depth, prev: [prev], content: { membership, ...extra } });

    test('invite, then join: the join retires the invite and returns its ID', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const carol = '@carol:example.org';
      const invite = await db.appendEvent(member('$inv', carol, 'invite', ev.bobJoin.eventID, 7, '@alice:example.org'));
      expect(invite.retiredInviteIDs).to.deep.equal([]);
      const info = (await db.roomInfo(ROOM))!;
      const carolNID = (await db.eventStateKeyNIDs([carol])).get(carol)!;
      const active = await db.getInvitesForUser(info.roomNID, carolNID);
      expect(active.eventIDs).to.deep.equal(['$inv']);
      expect(await db.getRoomsByMembership(carol, 'invite')).to.deep.equal([ROOM]);
      const join = await db.appendEvent(member('$cjoin', carol, 'join', '$inv', 8));
      expect(join.retiredInviteIDs).to.deep.equal(['$inv']);
      expect((await db.getInvitesForUser(info.roomNID, carolNID)).eventIDs).to.deep.equal([]);
      expect(await db.getRoomsByMembership(carol, 'join')).to.deep.equal([ROOM]);
      expect(await db.getRoomsByMembership(carol, 'invite')).to.deep.equal([]);
      const m = await db.getMembership(info.roomNID, carol);
      expect(m.stillInRoom).to.equal(true);
      expect(m.membershipEventNID).to.equal((await db.eventNIDs(['$cjoin'])).get('$cjoin'));
    });

    test('leave and ban both mean "leave"; rejoining works; a rejected invite is retired by the leave', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const bob = '@bob:remote.net';
      await db.appendEvent(member('$bleave', bob, 'leave', ev.bobJoin.eventID, 7));
      expect(await db.getRoomsByMembership(bob, 'leave')).to.deep.equal([ROOM]);
      expect(await db.getRoomsByMembership(bob, 'ban')).to.deep.equal([ROOM]);
      await db.appendEvent(member('$binv', bob, 'invite', '$bleave', 8, '@alice:example.org'));
      const left = await db.appendEvent(member('$bleave2', bob, 'leave', '$binv', 9));
      expect(left.retiredInviteIDs).to.deep.equal(['$binv']);
      await db.appendEvent(member('$bban', bob, 'ban', '$bleave2', 10, '@alice:example.org'));
      const info = (await db.roomInfo(ROOM))!;
      const m = await db.getMembership(info.roomNID, bob);
      expect(m.stillInRoom).to.equal(false);
      expect(m.membershipEventNID).to.equal((await db.eventNIDs(['$bleave2'])).get('$bleave2'));
      await db.appendEvent(member('$bjoin2', bob, 'join', '$bban', 11));
      expect(await db.getRoomsByMembership(bob, 'join')).to.deep.equal([ROOM]);
      await rejects(db.getRoomsByMembership(bob, 'sleeping'), InvalidInputError, /unknown membership/);
    });

    test('a profile change (join while joined) moves the membership to the new event', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const alice = '@alice:example.org';
      await db.appendEvent(member('$profile', alice, 'join', ev.bobJoin.eventID, 7, alice, { displayname: 'Alice' }));
      const info = (await db.roomInfo(ROOM))!;
      const m = await db.getMembership(info.roomNID, alice);
      expect(m.membershipEventNID).to.equal((await db.eventNIDs(['$profile'])).get('$profile'));
    });

    test('knock is a membership of its own', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const dave = '@dave:far.away';
      await db.appendEvent(member('$knock', dave, 'knock', ev.bobJoin.eventID, 7));
      const info = (await db.roomInfo(ROOM))!;
      const knocks = await db.getMembershipEventNIDsForRoom(info.roomNID, false, false);
      expect(knocks).to.include((await db.eventNIDs(['$knock'])).get('$knock'));
      expect((await db.getMembership(info.roomNID, dave)).stillInRoom).to.equal(false);
    });

    test('the membership updater: predicates, transitions and retired invites', async ({ storage }) => {
      const db = storage.roomserver;
      await seedRoom(storage);
      const erin = '@erin:example.org';
      const invite = makeEvent({ id: '$einv', type: 'm.room.member', stateKey: erin, content: { membership: 'invite' } });
      await db.storeEvent(invite);
      const inserted = await db.updateMembership(ROOM, erin, true, '10', async (m) => {
        expect(m.isLeave()).to.equal(true);
        return m.setToInvite(invite);
      });
      expect(inserted).to.equal(true);
      expect(await db.updateMembership(ROOM, erin, true, '10', (m) => m.setToInvite(invite))).to.equal(false);
      await db.storeEvent(makeEvent({ id: '$ejoin', type: 'm.room.member', stateKey: erin, sender: erin, content: { membership: 'join' } }));
      const retired = await db.updateMembership(ROOM, erin, true, '10', async (m) => {
        expect(m.isInvite()).to.equal(true);
        return m.setToJoin(erin, '$ejoin', false);
      });
      expect(retired).to.deep.equal(['$einv']);
      await db.updateMembership(ROOM, erin, true, '10', async (m) => expect(m.isJoin()).to.equal(true));
    });

    test('a failing updater writes nothing', async ({ storage }) => {
      const db = storage.roomserver;
      await seedRoom(storage);
      const frank = '@frank:example.org';
      const invite = makeEvent({ id: '$finv', type: 'm.room.member', stateKey: frank, content: { membership: 'invite' } });
      await db.storeEvent(invite);
      let failed = false;
      try {
        await db.updateMembership(ROOM, frank, true, '10', async (m) => {
          await m.setToInvite(invite);
          throw new Error('boom');
        });
      } catch (e) {
        failed = (e as Error).message === 'boom';
      }
      expect(failed).to.equal(true);
      expect(await db.getRoomsByMembership(frank, 'invite')).to.deep.equal([]);
    });

    test('membership event lists: join only, local only, forgotten excluded', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const info = (await db.roomInfo(ROOM))!;
      const nids = await db.eventNIDs([ev.aliceJoin.eventID, ev.bobJoin.eventID]);
      const alice = nids.get(ev.aliceJoin.eventID)!;
      const bob = nids.get(ev.bobJoin.eventID)!;
      expect(await db.getMembershipEventNIDsForRoom(info.roomNID, true, false)).to.have.members([alice, bob]);
      // The suite's server_name is example.org: alice is local, bob (remote.net) is not.
      expect(await db.getMembershipEventNIDsForRoom(info.roomNID, true, true)).to.deep.equal([alice]);
      expect(await db.getLocalServerInRoom(info.roomNID)).to.equal(true);
      await db.forgetRoom('@bob:remote.net', ROOM, true);
      expect(await db.getMembershipEventNIDsForRoom(info.roomNID, false, false)).to.deep.equal([alice]);
      await db.forgetRoom('@bob:remote.net', ROOM, false);
      expect(await db.getMembershipEventNIDsForRoom(info.roomNID, false, false)).to.have.members([alice, bob]);
    });

    test('joined users across rooms, servers in a room, known users', async ({ storage }) => {
      const db = storage.roomserver;
      await seedRoom(storage);
      await seedRoom(storage, '!second:example.org');
      const counts = await db.joinedUsersSetInRooms([ROOM, '!second:example.org', '!unknown:x.org']);
      expect(Object.fromEntries(counts)).to.deep.equal({ '@alice:example.org': 2, '@bob:remote.net': 2 });
      const info = (await db.roomInfo(ROOM))!;
      expect(await db.getServerInRoom(info.roomNID, 'remote.net')).to.equal(true);
      expect(await db.getServerInRoom(info.roomNID, 'net')).to.equal(false);
      expect(await db.getServerInRoom(info.roomNID, 'remote_net')).to.equal(false);
      expect(await db.getServerInRoom(info.roomNID, '%')).to.equal(false);
      expect(await db.getKnownUsers('@alice:example.org', 'bob', 10)).to.deep.equal(['@bob:remote.net']);
      expect(await db.getKnownUsers('@alice:example.org', '', 10)).to.deep.equal(['@alice:example.org', '@bob:remote.net']);
      expect(await db.getKnownUsers('@alice:example.org', '%', 10)).to.deep.equal([]);
      expect(await db.getKnownUsers('@alice:example.org', '', 1)).to.have.length(1);
    });
  });
}

import { expect } from 'chai';
import { NotFoundError } from '../../src/types/errors.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { makeEvent, rejects, seedRoom } from './fixtures.js';

const ROOM = '!room:example.org';
const OTHER = '!other:example.org';

const member = (id: string, room: string, user: string, membership: string, depth: number, prev: string, sender = user) =>
  makeEvent({ id, room, type: 'm.room.member', stateKey: user, sender, depth, prev: [prev], content: { membership } });

/** The room server's reads of many events, rooms or users at once. */
export function databaseBulkReadTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Database: set-based room server reads', (test) => {
    test('missingAuthPrevEvents: unknown auth events; prev events unknown or stored without state (a create needs none)', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      await db.storeEvent(makeEvent({ id: '$outlier', depth: 3, prev: [ev.aliceJoin.eventID] }));
      await db.storeEvent(makeEvent({ id: '$other-create', room: OTHER, type: 'm.room.create', stateKey: '', content: { creator: '@alice:example.org', room_version: '10' } }));
      const result = await db.missingAuthPrevEvents({
        authEventIDs: ['$no-auth', ev.create.eventID, ev.power.eventID, '$no-auth2'],
        prevEventIDs: [ev.bobJoin.eventID, '$outlier', '$nowhere', ev.create.eventID, '$other-create'],
      });
      expect(result).to.deep.equal({ missingAuth: ['$no-auth', '$no-auth2'], missingPrev: ['$outlier', '$nowhere'] });
      expect(await db.missingAuthPrevEvents(ev.bobJoin)).to.deep.equal({ missingAuth: [], missingPrev: [] });
    });

    test('snapshotsForEventIDs groups events by the state before them, outliers under 0, unknown IDs left out', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      await db.storeEvent(makeEvent({ id: '$outlier', depth: 3 }));
      const ids = [ev.message.eventID, ev.power.eventID, ev.joinRules.eventID, '$outlier', '$unknown'];
      const snapshots = await db.snapshotsForEventIDs(ids);
      const expected = new Map<number, string[]>();
      for (const id of ids.slice(0, 3)) {
        const nid = await db.snapshotNIDFromEventID(id);
        expect(nid).to.be.greaterThan(0);
        expected.set(nid, [...(expected.get(nid) ?? []), id]);
      }
      expected.set(0, ['$outlier']);
      expect(snapshots).to.deep.equal(expected);
      expect(await db.snapshotsForEventIDs([])).to.deep.equal(new Map());
    });

    test('eventMetadata gives each event its NID and room NID; roomInfoByNID the room info, null for an unknown NID', async ({ storage }) => {
      const db = storage.roomserver;
      const a = await seedRoom(storage);
      const b = await seedRoom(storage, OTHER);
      const infoA = (await db.roomInfo(ROOM))!;
      const infoB = (await db.roomInfo(OTHER))!;
      const nids = await db.eventNIDs([a.message.eventID, b.power.eventID]);
      expect(await db.eventMetadata([a.message.eventID, b.power.eventID, '$unknown'])).to.deep.equal(new Map([
        [a.message.eventID, { eventNID: nids.get(a.message.eventID), roomNID: infoA.roomNID }],
        [b.power.eventID, { eventNID: nids.get(b.power.eventID), roomNID: infoB.roomNID }],
      ]));
      expect(await db.roomInfoByNID(infoB.roomNID)).to.deep.equal(infoB);
      expect(await db.roomInfoByNID((Math.max(infoA.roomNID, infoB.roomNID) + 100) as typeof infoA.roomNID)).to.equal(null);
    });

    test('getStateEventsWithEventType: every current state event of the type; [] for a stub or an unseen type; NotFound for an unknown room', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const ids = async (type: string) => (await db.getStateEventsWithEventType(ROOM, type)).map((e) => e.event.eventID).sort();
      expect(await ids('m.room.member')).to.deep.equal([ev.aliceJoin.eventID, ev.bobJoin.eventID].sort());
      await db.appendEvent(member('$bob-leave', ROOM, '@bob:remote.net', 'leave', 7, ev.bobJoin.eventID));
      expect(await ids('m.room.member')).to.deep.equal([ev.aliceJoin.eventID, '$bob-leave'].sort());
      expect(await ids('m.room.power_levels')).to.deep.equal([ev.power.eventID]);
      expect(await ids('m.room.message')).to.deep.equal([]);
      expect(await ids('org.example.never')).to.deep.equal([]);
      await db.updateMembership('!stub:example.org', '@alice:example.org', true, '10', async () => undefined);
      expect(await db.getStateEventsWithEventType('!stub:example.org', 'm.room.member')).to.deep.equal([]);
      await rejects(db.getStateEventsWithEventType('!unknown:example.org', 'm.room.member'), NotFoundError);
    });

    test('historyVisibilityForUser: the visibility and the user\'s membership in the state before each event', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const hv = makeEvent({ id: '$hv', type: 'm.room.history_visibility', stateKey: '', depth: 7, prev: [ev.bobJoin.eventID], content: { history_visibility: 'joined' } });
      await db.appendEvent(hv);
      await db.appendEvent(makeEvent({ id: '$before-carol', depth: 8, prev: ['$hv'] }));
      await db.appendEvent(member('$carol-join', ROOM, '@carol:example.org', 'join', 9, '$before-carol'));
      await db.appendEvent(makeEvent({ id: '$after-carol', depth: 10, prev: ['$carol-join'] }));
      await db.storeEvent(makeEvent({ id: '$outlier', depth: 3 }));
      const ids = [ev.message.eventID, '$before-carol', '$carol-join', '$after-carol', ev.create.eventID, '$outlier', '$unknown'];
      const summary = (m: Map<string, { historyVisibility: { event: { eventID: string } } | null; membership: { event: { eventID: string } } | null }>) =>
        Object.fromEntries([...m].map(([id, v]) => [id, [v.historyVisibility?.event.eventID ?? null, v.membership?.event.eventID ?? null]]));
      expect(summary(await db.historyVisibilityForUser('@carol:example.org', ids))).to.deep.equal({
        [ev.message.eventID]: [null, null],
        '$before-carol': ['$hv', null],
        '$carol-join': ['$hv', null],
        '$after-carol': ['$hv', '$carol-join'],
        [ev.create.eventID]: [null, null],
        '$outlier': [null, null],
      });
      expect(summary(await db.historyVisibilityForUser('@bob:remote.net', ['$before-carol', ev.message.eventID]))).to.deep.equal({
        '$before-carol': ['$hv', ev.bobJoin.eventID], [ev.message.eventID]: [null, null],
      });
      expect(summary(await db.historyVisibilityForUser('@nobody:example.org', ['$after-carol']))).to.deep.equal({ '$after-carol': ['$hv', null] });
      const full = (await db.historyVisibilityForUser('@carol:example.org', ['$after-carol'])).get('$after-carol')!;
      expect(full.historyVisibility!.event.content).to.deep.equal({ history_visibility: 'joined' });
    });

    test('historyVisibilityForServer: the visibility and one server\'s members in the state before each event', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      await db.appendEvent(makeEvent({ id: '$hv', type: 'm.room.history_visibility', stateKey: '', depth: 7, prev: [ev.bobJoin.eventID], content: { history_visibility: 'shared' } }));
      await db.appendEvent(makeEvent({ id: '$before-carol', depth: 8, prev: ['$hv'] }));
      await db.appendEvent(member('$carol-join', ROOM, '@carol:example.org', 'join', 9, '$before-carol'));
      await db.appendEvent(member('$bob-leave', ROOM, '@bob:remote.net', 'leave', 10, '$carol-join'));
      await db.appendEvent(makeEvent({ id: '$after', depth: 11, prev: ['$bob-leave'] }));
      await db.storeEvent(makeEvent({ id: '$outlier', depth: 3 }));
      const summary = async (server: string, ids: string[]) => Object.fromEntries([...await db.historyVisibilityForServer(server, ids)]
        .map(([id, v]) => [id, [v.historyVisibility?.event.eventID ?? null, v.memberships.map((m) => m.event.eventID)]]));
      expect(await summary('remote.net', [ev.message.eventID, '$before-carol', '$after', '$outlier', '$unknown'])).to.deep.equal({
        [ev.message.eventID]: [null, []], '$before-carol': ['$hv', [ev.bobJoin.eventID]], '$after': ['$hv', ['$bob-leave']], '$outlier': [null, []],
      });
      expect(await summary('example.org', ['$before-carol', '$after'])).to.deep.equal({
        '$before-carol': ['$hv', [ev.aliceJoin.eventID]], '$after': ['$hv', [ev.aliceJoin.eventID, '$carol-join']],
      });
      // The server name is matched whole, after the colon.
      expect(await summary('ample.org', ['$after'])).to.deep.equal({ '$after': ['$hv', []] });
      expect(await summary('nowhere.example', [ev.create.eventID])).to.deep.equal({ [ev.create.eventID]: [null, []] });
    });

    test('getLeftUsers: the known users no longer joined, invited or knocking anywhere, sorted', async ({ storage }) => {
      const db = storage.roomserver;
      const a = await seedRoom(storage);
      const b = await seedRoom(storage, OTHER);
      await db.appendEvent(member('$bob-leave-a', ROOM, '@bob:remote.net', 'leave', 7, a.bobJoin.eventID));
      await db.appendEvent(member('$carol-invite', OTHER, '@carol:example.org', 'invite', 7, b.bobJoin.eventID, '@alice:example.org'));
      const users = ['@alice:example.org', '@bob:remote.net', '@carol:example.org', '@unknown:example.org'];
      expect(await db.getLeftUsers(users)).to.deep.equal([]);
      await db.appendEvent(member('$bob-leave-b', OTHER, '@bob:remote.net', 'leave', 8, '$carol-invite'));
      await db.appendEvent(member('$carol-reject', OTHER, '@carol:example.org', 'leave', 9, '$bob-leave-b'));
      expect(await db.getLeftUsers(users)).to.deep.equal(['@bob:remote.net', '@carol:example.org']);
      expect(await db.getLeftUsers([])).to.deep.equal([]);
    });

    test('getEmptyRooms: rooms where no local user is joined, of those given or of every room with events', async ({ storage }) => {
      const db = storage.roomserver;
      await seedRoom(storage);
      const b = await seedRoom(storage, OTHER);
      expect(await db.getEmptyRooms()).to.deep.equal([]);
      await db.appendEvent(member('$alice-leave', OTHER, '@alice:example.org', 'leave', 7, b.bobJoin.eventID));
      expect(await db.getEmptyRooms()).to.deep.equal([OTHER]);
      expect(await db.getEmptyRooms([ROOM, '!unknown:example.org'])).to.deep.equal([]);
      expect(await db.getEmptyRooms([OTHER, ROOM])).to.deep.equal([OTHER]);
    });

    test('getBulkStateACLs: each room\'s current server ACL event; rooms without one, stubs and unknown rooms left out', async ({ storage }) => {
      const db = storage.roomserver;
      const a = await seedRoom(storage);
      await seedRoom(storage, OTHER);
      expect(await db.getBulkStateACLs([ROOM, OTHER])).to.deep.equal(new Map());
      const acl = (id: string, prev: string, deny: string[]) =>
        makeEvent({ id, type: 'm.room.server_acl', stateKey: '', depth: 10, prev: [prev], content: { allow: ['*'], deny } });
      await db.appendEvent(acl('$acl1', a.bobJoin.eventID, ['evil.example']));
      await db.appendEvent(acl('$acl2', '$acl1', ['evil.example', 'worse.example']));
      await db.updateMembership('!stub:example.org', '@alice:example.org', true, '10', async () => undefined);
      const acls = await db.getBulkStateACLs([ROOM, OTHER, '!stub:example.org', '!unknown:example.org', ROOM]);
      expect([...acls.keys()]).to.deep.equal([ROOM]);
      expect(acls.get(ROOM)!.event.eventID).to.equal('$acl2');
      expect(acls.get(ROOM)!.event.content).to.deep.equal({ allow: ['*'], deny: ['evil.example', 'worse.example'] });
    });

    test('joinedUsersSetInRooms: filtered to the users given, and to local users', async ({ storage }) => {
      const db = storage.roomserver;
      await seedRoom(storage);
      const b = await seedRoom(storage, OTHER);
      await db.appendEvent(member('$dave-join', OTHER, '@dave:example.org', 'join', 7, b.bobJoin.eventID));
      const rooms = [ROOM, OTHER];
      expect(await db.joinedUsersSetInRooms(rooms)).to.deep.equal(new Map([['@alice:example.org', 2], ['@bob:remote.net', 2], ['@dave:example.org', 1]]));
      expect(await db.joinedUsersSetInRooms(rooms, ['@bob:remote.net', '@dave:example.org', '@unknown:example.org']))
        .to.deep.equal(new Map([['@bob:remote.net', 2], ['@dave:example.org', 1]]));
      expect(await db.joinedUsersSetInRooms(rooms, undefined, true)).to.deep.equal(new Map([['@alice:example.org', 2], ['@dave:example.org', 1]]));
      expect(await db.joinedUsersSetInRooms(rooms, ['@bob:remote.net', '@dave:example.org'], true)).to.deep.equal(new Map([['@dave:example.org', 1]]));
      expect(await db.joinedUsersSetInRooms(rooms, [])).to.deep.equal(new Map());
      expect(await db.joinedUsersSetInRooms(rooms, ['@unknown:example.org'])).to.deep.equal(new Map());
    });

    test('getInvitesForUser gives each active invite\'s event JSON beside its ID and sender', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const invite = member('$carol-invite', ROOM, '@carol:example.org', 'invite', 7, ev.bobJoin.eventID, '@alice:example.org');
      await db.appendEvent(invite);
      const room = (await db.roomInfo(ROOM))!.roomNID;
      const nids = await db.eventStateKeyNIDs(['@carol:example.org', '@alice:example.org']);
      const found = await db.getInvitesForUser(room, nids.get('@carol:example.org')!);
      expect(found.eventIDs).to.deep.equal(['$carol-invite']);
      expect(found.senderUserNIDs).to.deep.equal([nids.get('@alice:example.org')]);
      expect(found.inviteEventJSONs.map((j) => JSON.parse(j))).to.deep.equal([JSON.parse(invite.json)]);
      await db.appendEvent(member('$carol-join', ROOM, '@carol:example.org', 'join', 8, '$carol-invite'));
      expect(await db.getInvitesForUser(room, nids.get('@carol:example.org')!)).to.deep.equal({ senderUserNIDs: [], eventIDs: [], inviteEventJSONs: [] });
    });
  });
}

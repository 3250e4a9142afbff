import { expect } from 'chai';
import { InvalidInputError, NotFoundError } from '../../src/types/errors.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { makeEvent, rejects, seedRoom } from './fixtures.js';

const ROOM = '!room:example.org';
const OTHER = '!other:example.org';
const hex = (k: Uint8Array | null) => (k === null ? null : Buffer.from(k).toString('hex'));
const b64 = (k: Uint8Array) => Buffer.from(k).toString('base64').replace(/=+$/, '');

/** Room upgrades, the directory per appservice network, membership deletion, event reports and user room keys. */
export function databaseDirectoryReportsKeysTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Database: room upgrades, directory networks, reports and room keys', (test) => {
    test('publishRoom per appservice network; getPublishedRooms by network, own list or every list; getPublishedRoom', async ({ storage }) => {
      const db = storage.roomserver;
      await db.publishRoom('!b:example.org', true);
      await db.publishRoom('!a:example.org', 'as1', 'irc', true);
      await db.publishRoom('!a:example.org', 'as2', 'xmpp', true);
      await db.publishRoom('!c:example.org', 'as1', 'irc', true);
      await db.publishRoom('!c:example.org', 'as1', 'irc', false);
      await db.publishRoom('!d:example.org', '', '', true);
      expect(await db.getPublishedRooms()).to.deep.equal(['!a:example.org', '!b:example.org', '!d:example.org']);
      expect(await db.getPublishedRooms('irc')).to.deep.equal(['!a:example.org']);
      expect(await db.getPublishedRooms('irc', true)).to.deep.equal(['!a:example.org']);
      expect(await db.getPublishedRooms('')).to.deep.equal(['!b:example.org', '!d:example.org']);
      expect(await db.getPublishedRooms('', true)).to.deep.equal(['!a:example.org', '!b:example.org', '!d:example.org']);
      expect(await db.getPublishedRooms('nowhere')).to.deep.equal([]);
      expect(await db.getPublishedRoom('!a:example.org')).to.equal(true);
      expect(await db.getPublishedRoom('!c:example.org')).to.equal(false);
      expect(await db.getPublishedRoom('!unknown:example.org')).to.equal(false);
      await db.publishRoom('!b:example.org', false);
      expect(await db.getPublishedRooms('')).to.deep.equal(['!d:example.org']);
      // The old two-argument form is still checked as it was.
      await rejects(db.publishRoom('!b:example.org', 'yes' as unknown as boolean), InvalidInputError);
    });

    test('upgradeRoom moves the aliases (creator: the sender) and every directory entry to the new room', async ({ storage }) => {
      const db = storage.roomserver;
      const NEW = '!new:example.org';
      await db.setRoomAlias('#first:example.org', ROOM, '@alice:example.org');
      await db.setRoomAlias('#other:example.org', OTHER, '@alice:example.org');
      await db.setRoomAlias('#second:example.org', ROOM, '@carol:example.org');
      await db.publishRoom(ROOM, true);
      await db.publishRoom(ROOM, 'as1', 'irc', true);
      await db.publishRoom(ROOM, 'as2', 'xmpp', false);
      await db.upgradeRoom(ROOM, NEW, '@bob:example.org');
      expect(await db.getAliasesForRoomID(NEW)).to.deep.equal(['#first:example.org', '#second:example.org']);
      expect(await db.getAliasesForRoomID(ROOM)).to.deep.equal([]);
      expect(await db.getRoomIDForAlias('#second:example.org')).to.equal(NEW);
      expect(await db.getCreatorIDForAlias('#first:example.org')).to.equal('@bob:example.org');
      expect(await db.getAliasesForRoomID(OTHER)).to.deep.equal(['#other:example.org']);
      expect(await db.getPublishedRoom(ROOM)).to.equal(false);
      expect(await db.getPublishedRooms('')).to.deep.equal([NEW]);
      expect(await db.getPublishedRooms('irc')).to.deep.equal([NEW]);
      expect(await db.getPublishedRooms('xmpp')).to.deep.equal([]);
      // Again (a retry): nothing left to move, nothing changes.
      await db.upgradeRoom(ROOM, NEW, '@bob:example.org');
      expect(await db.getAliasesForRoomID(NEW)).to.deep.equal(['#first:example.org', '#second:example.org']);
      expect(await db.getPublishedRooms()).to.deep.equal([NEW]);
      // A room neither published nor aliased: nothing to move.
      await db.upgradeRoom(OTHER + 'x', '!newer:example.org', '@bob:example.org');
      expect(await db.getPublishedRoom('!newer:example.org')).to.equal(false);
      await rejects(db.upgradeRoom(NEW, NEW, '@bob:example.org'), InvalidInputError, /itself/);
    });

    test('the membership updater deletes a membership, retiring the user\'s invites first', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      await db.appendEvent(makeEvent({ id: '$carol-invite', type: 'm.room.member', stateKey: '@carol:example.org', depth: 7, prev: [ev.bobJoin.eventID], content: { membership: 'invite' } }));
      const room = (await db.roomInfo(ROOM))!.roomNID;
      expect(await db.getRoomsByMembership('@carol:example.org', 'invite')).to.deep.equal([ROOM]);
      const retired = await db.updateMembership(ROOM, '@carol:example.org', true, '10', (m) => m.delete());
      expect(retired).to.deep.equal(['$carol-invite']);
      expect(await db.getRoomsByMembership('@carol:example.org', 'invite')).to.deep.equal([]);
      expect(await db.getMembership(room, '@carol:example.org')).to.deep.equal({ membershipEventNID: 0, stillInRoom: false, forgotten: false });
      const carol = (await db.eventStateKeyNIDs(['@carol:example.org'])).get('@carol:example.org')!;
      expect((await db.getInvitesForUser(room, carol)).eventIDs).to.deep.equal([]);
      expect(await db.getLeftUsers(['@carol:example.org'])).to.deep.equal(['@carol:example.org']);
      // Deleting a joined member's row: no invites to retire, and the user no longer counts as joined.
      expect(await db.updateMembership(ROOM, '@bob:remote.net', false, '10', (m) => m.delete())).to.deep.equal([]);
      expect([...(await db.joinedUsersSetInRooms([ROOM])).keys()]).to.deep.equal(['@alice:example.org']);
    });

    test('event reports: insert, list in order of arrival with paging and filters, get with the event JSON, delete', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const o = await seedRoom(storage, OTHER);
      await db.appendEvent(makeEvent({ id: '$name', type: 'm.room.name', stateKey: '', depth: 7, prev: [ev.bobJoin.eventID], content: { name: 'The Room' } }));
      await db.appendEvent(makeEvent({ id: '$alias', type: 'm.room.canonical_alias', stateKey: '', depth: 8, prev: ['$name'], content: { alias: '#room:example.org' } }));
      const first = await db.insertReportedEvent(ROOM, ev.message.eventID, '@carol:example.org', 'spam', -100);
      const second = await db.insertReportedEvent(ROOM, ev.bobJoin.eventID, '@dave:example.org', '', 0);
      const third = await db.insertReportedEvent(OTHER, o.power.eventID, '@carol:example.org', 'rude', -50);
      expect(second).to.be.greaterThan(first);
      expect(third).to.be.greaterThan(second);
      const ids = (r: { reports: { reportID: number }[]; total: number }) => [r.reports.map((x) => x.reportID), r.total];
      expect(ids(await db.queryEventReports())).to.deep.equal([[first, second, third], 3]);
      expect(ids(await db.queryEventReports({ backwards: true }))).to.deep.equal([[third, second, first], 3]);
      expect(ids(await db.queryEventReports({ from: 1, limit: 1 }))).to.deep.equal([[second], 3]);
      expect(ids(await db.queryEventReports({ from: 5 }))).to.deep.equal([[], 3]);
      expect(ids(await db.queryEventReports({ roomID: OTHER }))).to.deep.equal([[third], 1]);
      expect(ids(await db.queryEventReports({ userID: '@carol:example.org', backwards: true }))).to.deep.equal([[third, first], 2]);
      expect(ids(await db.queryEventReports({ userID: '@carol:example.org', roomID: ROOM }))).to.deep.equal([[first], 1]);
      expect(ids(await db.queryEventReports({ userID: '@nobody:example.org' }))).to.deep.equal([[], 0]);
      expect(ids(await db.queryEventReports({ roomID: '!unknown:example.org' }))).to.deep.equal([[], 0]);
      const [report] = (await db.queryEventReports({ limit: 1 })).reports;
      expect(report).to.deep.include({
        reportID: first, eventID: ev.message.eventID, roomID: ROOM, reportingUserID: '@carol:example.org', senderUserID: '@alice:example.org',
        reason: 'spam', score: -100, roomName: 'The Room', canonicalAlias: '#room:example.org',
      });
      expect(report!.receivedTS).to.be.within(Date.now() - 600_000, Date.now() + 1000);
      const one = await db.queryEventReport(third);
      expect(one).to.deep.include({ reportID: third, eventID: o.power.eventID, roomID: OTHER, senderUserID: '@alice:example.org', roomName: '', canonicalAlias: '' });
      expect(JSON.parse(one!.eventJSON)).to.deep.equal(JSON.parse(o.power.json));
      expect(await db.deleteEventReport(first)).to.equal(true);
      expect(await db.deleteEventReport(first)).to.equal(false);
      expect(await db.queryEventReport(first)).to.equal(null);
      expect(ids(await db.queryEventReports())).to.deep.equal([[second, third], 2]);
      await rejects(db.insertReportedEvent(ROOM, '$unknown', '@carol:example.org', 'spam', -100), NotFoundError);
      await rejects(db.insertReportedEvent(ROOM, o.power.eventID, '@carol:example.org', 'spam', -100), NotFoundError);
      await rejects(db.insertReportedEvent('!unknown:example.org', ev.message.eventID, '@carol:example.org', 'spam', -100), NotFoundError);
      expect((await db.queryEventReports()).total).to.equal(2);
    });

    test('user room keys: a private key (its public half beside it) or a public key, first one kept; users behind public keys', async ({ storage }) => {
      const db = storage.roomserver;
      await seedRoom(storage);
      await seedRoom(storage, OTHER);
      const alicePrivate = Uint8Array.from({ length: 64 }, (_, i) => i + 1);
      const alicePublic = alicePrivate.subarray(32);
      const bobPublic = new Uint8Array(32).fill(0xb0);
      expect(hex(await db.insertUserRoomPrivatePublicKey('@alice:example.org', ROOM, alicePrivate))).to.equal(hex(alicePrivate));
      expect(hex(await db.insertUserRoomPrivatePublicKey('@alice:example.org', ROOM, new Uint8Array(64).fill(1)))).to.equal(hex(alicePrivate));
      expect(hex(await db.selectUserRoomPrivateKey('@alice:example.org', ROOM))).to.equal(hex(alicePrivate));
      expect(hex(await db.selectUserRoomPublicKey('@alice:example.org', ROOM))).to.equal(hex(alicePublic));
      expect(hex(await db.insertUserRoomPublicKey('@bob:remote.net', ROOM, bobPublic))).to.equal(hex(bobPublic));
      expect(hex(await db.insertUserRoomPublicKey('@bob:remote.net', ROOM, new Uint8Array(32).fill(1)))).to.equal(hex(bobPublic));
      expect(await db.selectUserRoomPrivateKey('@bob:remote.net', ROOM)).to.equal(null);
      expect(hex(await db.selectUserRoomPublicKey('@bob:remote.net', ROOM))).to.equal(hex(bobPublic));
      expect(await db.selectUserRoomPublicKey('@alice:example.org', OTHER)).to.equal(null);
      expect(await db.selectUserRoomPrivateKey('@nobody:example.org', ROOM)).to.equal(null);
      expect(await db.selectUserRoomPrivateKey('@alice:example.org', '!unknown:example.org')).to.equal(null);
      // The same key in another room belongs to that room only.
      await db.insertUserRoomPublicKey('@carol:example.org', OTHER, alicePublic);
      const found = await db.selectUserIDsForPublicKeys(new Map([
        [ROOM, [alicePublic, bobPublic, new Uint8Array(32).fill(0xee)]], [OTHER, [alicePublic, bobPublic]], ['!unknown:example.org', [alicePublic]],
      ]));
      expect(found).to.deep.equal(new Map([
        [OTHER, new Map([[b64(alicePublic), '@carol:example.org']])],
        [ROOM, new Map([[b64(alicePublic), '@alice:example.org'], [b64(bobPublic), '@bob:remote.net']])],
      ]));
      await rejects(db.insertUserRoomPublicKey('@bob:remote.net', '!unknown:example.org', bobPublic), NotFoundError);
      await rejects(db.insertUserRoomPrivatePublicKey('@alice:example.org', ROOM, alicePublic), InvalidInputError, /64 bytes/);
    });
  });
}

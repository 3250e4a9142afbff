import { expect } from 'chai';
import { ConflictError, InvalidInputError, NotFoundError } from '../../src/types/errors.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { makeEvent, rejects, seedRoom } from './fixtures.js';

const ROOM = '!room:example.org';

/** Aliases, the room directory, and reads of the current state. */
export function databaseQueryTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Database: aliases and the room directory', (test) => {
    test('aliases: set, resolve, list in insertion order, creator, remove', async ({ storage }) => {
      const db = storage.roomserver;
      await db.setRoomAlias('#b:example.org', ROOM, '@alice:example.org');
      await db.setRoomAlias('#a:example.org', ROOM, '@bob:example.org');
      await db.setRoomAlias("#it's_100%:example.org", '!other:example.org', '@alice:example.org');
      expect(await db.getRoomIDForAlias('#a:example.org')).to.equal(ROOM);
      expect(await db.getAliasesForRoomID(ROOM)).to.deep.equal(['#b:example.org', '#a:example.org']);
      expect(await db.getCreatorIDForAlias('#a:example.org')).to.equal('@bob:example.org');
      expect(await db.getRoomIDForAlias("#it's_100%:example.org")).to.equal('!other:example.org');
      expect(await db.getRoomIDForAlias('#it_s_100_:example.org')).to.equal(null);
      await rejects(db.setRoomAlias('#a:example.org', '!x:example.org', '@c:example.org'), ConflictError);
      expect(await db.getRoomIDForAlias('#a:example.org')).to.equal(ROOM);
      await db.removeRoomAlias('#a:example.org');
      await db.removeRoomAlias('#a:example.org');
      expect(await db.getRoomIDForAlias('#a:example.org')).to.equal(null);
      expect(await db.getCreatorIDForAlias('#a:example.org')).to.equal(null);
      expect(await db.getAliasesForRoomID(ROOM)).to.deep.equal(['#b:example.org']);
      await rejects(db.setRoomAlias('no-sigil', ROOM, '@a:example.org'), InvalidInputError);
      await rejects(db.setRoomAlias(`#${'a'.repeat(10_000)}:example.org`, ROOM, '@a:example.org'), InvalidInputError, /255/);
    });

    test('published rooms: publish, unpublish, sorted list', async ({ storage }) => {
      const db = storage.roomserver;
      await db.publishRoom('!z:example.org', true);
      await db.publishRoom('!a:example.org', true);
      await db.publishRoom('!m:example.org', false);
      expect(await db.getPublishedRooms()).to.deep.equal(['!a:example.org', '!z:example.org']);
      await db.publishRoom('!z:example.org', false);
      expect(await db.getPublishedRooms()).to.deep.equal(['!a:example.org']);
    });

    test('known rooms are the rooms with events, sorted: a stub room (no event yet) is left out, as in Dendrite', async ({ storage }) => {
      const db = storage.roomserver;
      await seedRoom(storage, '!b:example.org');
      await seedRoom(storage, '!a:example.org');
      // A membership updater creates a room that has no event yet: a stub.
      await db.updateMembership('!stub:example.org', '@alice:example.org', true, '10', async () => undefined);
      expect(await db.roomInfo('!stub:example.org')).to.include({ isStub: true });
      // An event stored but not appended (no latest events yet) leaves its room a stub too.
      await db.storeEvent(makeEvent({ id: '$stored', room: '!stored:example.org' }));
      expect(await db.getKnownRooms()).to.deep.equal(['!a:example.org', '!b:example.org']);
    });

    test('the rooms holding an event of a type: its history too, each room once, sorted', async ({ storage }) => {
      const db = storage.roomserver;
      await seedRoom(storage, '!b:example.org');
      await seedRoom(storage, '!a:example.org');
      const acl = (id: string, room: string, prev: string, allow: string[]) =>
        makeEvent({ id, room, type: 'm.room.server_acl', stateKey: '', depth: 10, prev: [prev], content: { allow } });
      await db.appendEvent(acl('$acl1', '!b:example.org', '$bob-join!b:example.org', ['*']));
      await db.appendEvent(acl('$acl2', '!b:example.org', '$acl1', ['example.org']));
      expect(await db.getRoomsWithEventType('m.room.server_acl')).to.deep.equal(['!b:example.org']);
      expect(await db.getRoomsWithEventType('m.room.power_levels')).to.deep.equal(['!a:example.org', '!b:example.org']);
      expect(await db.getRoomsWithEventType('org.example.never')).to.deep.equal([]);
    });
  });

  group(fw, driver, 'Database: current state queries', (test) => {
    test('getStateEvent: the event, null for unknown or absent tuples, NotFound for a stub room', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      expect((await db.getStateEvent(ROOM, 'm.room.power_levels', ''))?.event.eventID).to.equal(ev.power.eventID);
      expect(await db.getStateEvent(ROOM, 'm.room.topic', '')).to.equal(null);
      expect(await db.getStateEvent(ROOM, 'm.room.member', '@nobody:example.org')).to.equal(null);
      expect(await db.getStateEvent(ROOM, 'm.room.member', '')).to.equal(null);
      await db.storeEvent(makeEvent({ id: '$lonely', room: '!stub:example.org' }));
      await rejects(db.getStateEvent('!stub:example.org', 'm.room.create', ''), NotFoundError, /stub/);
    });

    test('getBulkStateContent: requested tuples, wildcards, content values', async ({ storage }) => {
      const db = storage.roomserver;
      await seedRoom(storage);
      await seedRoom(storage, '!second:example.org');
      const exact = await db.getBulkStateContent([ROOM], [{ eventType: 'm.room.join_rules', stateKey: '' }, { eventType: 'm.room.member', stateKey: '@bob:remote.net' }], false);
      expect(exact).to.have.deep.members([
        { roomID: ROOM, eventType: 'm.room.join_rules', stateKey: '', contentValue: 'public' },
        { roomID: ROOM, eventType: 'm.room.member', stateKey: '@bob:remote.net', contentValue: 'join' },
      ]);
      const wild = await db.getBulkStateContent([ROOM, '!second:example.org', '!unknown:x.org'], [{ eventType: 'm.room.member', stateKey: '*' }], true);
      expect(wild).to.have.length(4);
      expect(wild.every((c) => c.contentValue === 'join')).to.equal(true);
      // Without wildcards "*" is a literal state key.
      expect(await db.getBulkStateContent([ROOM], [{ eventType: 'm.room.member', stateKey: '*' }], false)).to.deep.equal([]);
      // Types with no summarising key give "".
      const power = await db.getBulkStateContent([ROOM], [{ eventType: 'm.room.power_levels', stateKey: '' }], false);
      expect(power).to.deep.equal([{ roomID: ROOM, eventType: 'm.room.power_levels', stateKey: '', contentValue: '' }]);
    });

    test('the current state of an unknown room is empty', async ({ storage }) => {
      expect(await storage.roomserver.currentState('!nope:example.org')).to.deep.equal([]);
    });
  });
}

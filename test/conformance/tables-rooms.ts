import { expect } from 'chai';
import { ConflictError, NotFoundError } from '../../src/types/errors.js';
import { asEventNID, asRoomNID, asStateSnapshotNID, type EventNID, type RoomNID, type StateSnapshotNID } from '../../src/types/nids.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { rejects } from './fixtures.js';

const sortedNIDs = (nids: readonly number[]) => [...nids].sort((a, b) => a - b);
const missingRoom = (...known: number[]) => asRoomNID(Math.max(0, ...known) + 1_000_000);

export function roomTableTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Table: rooms', (test) => {
    test('insertRoomNID assigns distinct positive NIDs that selectRoomNID returns', async ({ storage }) => {
      const rooms = storage.tables.rooms;
      const tx = storage.unitOfWork.autocommit;
      const a = await rooms.insertRoomNID(tx, '!a:example.org', '10');
      const b = await storage.unitOfWork.transaction((inTx) => rooms.insertRoomNID(inTx, '!b:example.org', '11'));
      const c = await rooms.insertRoomNID(tx, "!it's/100%_é:example.org", '1');
      for (const nid of [a, b, c]) expect(Number.isSafeInteger(nid) && nid > 0, `NID ${nid}`).to.equal(true);
      expect(new Set([a, b, c]).size).to.equal(3);
      expect(await rooms.selectRoomNID(tx, '!a:example.org')).to.equal(a);
      expect(await rooms.selectRoomNID(tx, '!b:example.org')).to.equal(b);
      expect(await rooms.selectRoomNID(tx, "!it's/100%_é:example.org")).to.equal(c);
    });

    test('inserting an existing room ID is a ConflictError and keeps the original room', async ({ storage }) => {
      const rooms = storage.tables.rooms;
      const tx = storage.unitOfWork.autocommit;
      const a = await rooms.insertRoomNID(tx, '!a:example.org', '10');
      await rejects(rooms.insertRoomNID(tx, '!a:example.org', '5'), ConflictError);
      await rejects(storage.unitOfWork.transaction((inTx) => rooms.insertRoomNID(inTx, '!a:example.org', '6')), ConflictError);
      expect(await rooms.selectRoomNID(tx, '!a:example.org')).to.equal(a);
      expect(await rooms.selectRoomInfo(tx, '!a:example.org')).to.deep.equal({ roomNID: a, roomVersion: '10', stateSnapshotNID: 0, isStub: true });
      expect(await rooms.selectRoomIDs(tx)).to.deep.equal(['!a:example.org']);
    });

    test('selectRoomNID of an unknown room is a NotFoundError (exact match)', async ({ storage }) => {
      const rooms = storage.tables.rooms;
      const tx = storage.unitOfWork.autocommit;
      await rooms.insertRoomNID(tx, '!a:example.org', '10');
      await rejects(rooms.selectRoomNID(tx, '!nope:example.org'), NotFoundError);
      await rejects(rooms.selectRoomNID(tx, '!A:example.org'), NotFoundError);
      await rejects(rooms.selectRoomNID(tx, '!_:example.org'), NotFoundError);
      await rejects(rooms.selectRoomNID(tx, '%'), NotFoundError);
    });

    test('a new room is a stub: no latest events, nothing sent, no current state', async ({ storage }) => {
      const rooms = storage.tables.rooms;
      const tx = storage.unitOfWork.autocommit;
      const a = await rooms.insertRoomNID(tx, '!a:example.org', '10');
      expect(await rooms.selectLatestEventNIDs(tx, a)).to.deep.equal({ eventNIDs: [], stateSnapshotNID: 0 });
      const forUpdate = await storage.unitOfWork.transaction((inTx) => rooms.selectLatestEventsNIDsForUpdate(inTx, a));
      expect(forUpdate.latestEventNIDs).to.deep.equal([]);
      expect(forUpdate.lastEventSentNID).to.equal(0);
      expect(forUpdate.stateSnapshotNID).to.equal(0);
      expect(forUpdate.version).to.be.a('string');
      expect(await rooms.selectRoomInfo(tx, '!a:example.org')).to.deep.equal({ roomNID: a, roomVersion: '10', stateSnapshotNID: 0, isStub: true });
    });

    test('reading the latest events of an unknown room is a NotFoundError, with or without forUpdate', async ({ storage }) => {
      const rooms = storage.tables.rooms;
      const tx = storage.unitOfWork.autocommit;
      const a = await rooms.insertRoomNID(tx, '!a:example.org', '10');
      await rejects(rooms.selectLatestEventNIDs(tx, missingRoom(a)), NotFoundError);
      await rejects(storage.unitOfWork.transaction((inTx) => rooms.selectLatestEventsNIDsForUpdate(inTx, missingRoom(a))), NotFoundError);
    });

    test('updateLatestEventNIDs in a transaction overwrites latest events, last sent and current state, as both selects read back', async ({ storage }) => {
      const rooms = storage.tables.rooms;
      const tx = storage.unitOfWork.autocommit;
      const a = await rooms.insertRoomNID(tx, '!a:example.org', '10');
      const b = await rooms.insertRoomNID(tx, '!b:example.org', '10');
      const [e1, e2, e3] = [asEventNID(101), asEventNID(102), asEventNID(103)];
      const readInside = await storage.unitOfWork.transaction(async (inTx) => {
        const current = await rooms.selectLatestEventsNIDsForUpdate(inTx, a);
        await rooms.updateLatestEventNIDs(inTx, a, [e3, e1], e2, asStateSnapshotNID(5), current.version);
        return rooms.selectLatestEventNIDs(inTx, a);
      });
      expect(sortedNIDs(readInside.eventNIDs)).to.deep.equal([e1, e3]);
      const latest = await rooms.selectLatestEventNIDs(tx, a);
      expect(sortedNIDs(latest.eventNIDs)).to.deep.equal([e1, e3]);
      expect(latest.stateSnapshotNID).to.equal(5);
      const locked = await storage.unitOfWork.transaction((inTx) => rooms.selectLatestEventsNIDsForUpdate(inTx, a));
      expect(sortedNIDs(locked.latestEventNIDs)).to.deep.equal([e1, e3]);
      expect(locked.lastEventSentNID).to.equal(e2);
      expect(locked.stateSnapshotNID).to.equal(5);
      expect(await rooms.selectRoomInfo(tx, '!a:example.org')).to.deep.equal({ roomNID: a, roomVersion: '10', stateSnapshotNID: 5, isStub: false });
      // The other room is untouched.
      expect(await rooms.selectLatestEventNIDs(tx, b)).to.deep.equal({ eventNIDs: [], stateSnapshotNID: 0 });
      // A second update overwrites everything again, with the version read after the first.
      await storage.unitOfWork.transaction(async (inTx) => {
        const current = await rooms.selectLatestEventsNIDsForUpdate(inTx, a);
        await rooms.updateLatestEventNIDs(inTx, a, [e2], e3, asStateSnapshotNID(6), current.version);
      });
      expect(await rooms.selectLatestEventNIDs(tx, a)).to.deep.equal({ eventNIDs: [e2], stateSnapshotNID: 6 });
      // Back to no latest events: a stub again.
      await storage.unitOfWork.transaction(async (inTx) => {
        const current = await rooms.selectLatestEventsNIDsForUpdate(inTx, a);
        await rooms.updateLatestEventNIDs(inTx, a, [], e3, asStateSnapshotNID(6), current.version);
      });
      expect((await rooms.selectRoomInfo(tx, '!a:example.org'))!.isStub).to.equal(true);
    });

    test('concurrent read-modify-write transactions on the latest events never lose an update', async ({ storage }) => {
      const rooms = storage.tables.rooms;
      const a = await rooms.insertRoomNID(storage.unitOfWork.autocommit, '!a:example.org', '10');
      // Each writer reads the list and writes it back with its own NID added. Where the room is locked both succeed
      // one after the other; where it is not (Cosmos DB) the loser gets a ConflictError. Either way, no write that
      // reported success may be lost.
      const add = (nid: EventNID) => storage.unitOfWork.transaction(async (tx) => {
        const current = await rooms.selectLatestEventsNIDsForUpdate(tx, a);
        await new Promise((resolve) => setImmediate(resolve));
        await rooms.updateLatestEventNIDs(tx, a, [...current.latestEventNIDs, nid], nid, current.stateSnapshotNID, current.version);
      });
      const nids = [1, 2, 3, 4].map((n) => asEventNID(200 + n));
      const results = await Promise.allSettled(nids.map(add));
      const succeeded = nids.filter((_, i) => results[i]!.status === 'fulfilled');
      for (const r of results) if (r.status === 'rejected') expect(r.reason).to.be.instanceOf(ConflictError);
      expect(succeeded.length).to.be.at.least(1);
      const latest = await rooms.selectLatestEventNIDs(storage.unitOfWork.autocommit, a);
      expect(sortedNIDs(latest.eventNIDs)).to.deep.equal(sortedNIDs(succeeded));
    });

    test('selectRoomVersionsForRoomNIDs maps each room NID to its version and omits missing NIDs', async ({ storage }) => {
      const rooms = storage.tables.rooms;
      const tx = storage.unitOfWork.autocommit;
      const a = await rooms.insertRoomNID(tx, '!a:example.org', '10');
      const b = await rooms.insertRoomNID(tx, '!b:example.org', 'org.example.custom');
      expect(await rooms.selectRoomVersionsForRoomNIDs(tx, [b, missingRoom(a, b), a, a]))
        .to.deep.equal(new Map([[a, '10'], [b, 'org.example.custom']]));
      expect((await rooms.selectRoomVersionsForRoomNIDs(tx, [missingRoom(a, b)])).size).to.equal(0);
      expect((await rooms.selectRoomVersionsForRoomNIDs(tx, [])).size).to.equal(0);
    });

    test('selectRoomInfo is null for an unknown room and gives NID, version, state and isStub for a known one', async ({ storage }) => {
      const rooms = storage.tables.rooms;
      const tx = storage.unitOfWork.autocommit;
      expect(await rooms.selectRoomInfo(tx, '!nope:example.org')).to.equal(null);
      const a = await rooms.insertRoomNID(tx, '!a:example.org', '9');
      expect(await rooms.selectRoomInfo(tx, '!nope:example.org')).to.equal(null);
      expect(await rooms.selectRoomInfo(tx, '!A:example.org')).to.equal(null);
      expect(await storage.unitOfWork.transaction((inTx) => rooms.selectRoomInfo(inTx, '!a:example.org')))
        .to.deep.equal({ roomNID: a, roomVersion: '9', stateSnapshotNID: 0, isStub: true });
    });

    test('selectRoomIDs lists every room ID, sorted', async ({ storage }) => {
      const rooms = storage.tables.rooms;
      const tx = storage.unitOfWork.autocommit;
      expect(await rooms.selectRoomIDs(tx)).to.deep.equal([]);
      for (const id of ['!m:example.org', '!c:example.org', '!x:example.org', '!a:example.org']) await rooms.insertRoomNID(tx, id, '10');
      expect(await rooms.selectRoomIDs(tx)).to.deep.equal(['!a:example.org', '!c:example.org', '!m:example.org', '!x:example.org']);
    });

    test('selectRoomIDsWithEvents lists the rooms whose latest events are set, sorted', async ({ storage }) => {
      const rooms = storage.tables.rooms;
      const tx = storage.unitOfWork.autocommit;
      const [m, c] = [await rooms.insertRoomNID(tx, '!m:example.org', '10'), await rooms.insertRoomNID(tx, '!c:example.org', '10')];
      await rooms.insertRoomNID(tx, '!stub:example.org', '10');
      expect(await rooms.selectRoomIDsWithEvents(tx)).to.deep.equal([]);
      for (const nid of [m, c]) {
        const latest = await rooms.selectLatestEventsNIDsForUpdate(tx, nid);
        await rooms.updateLatestEventNIDs(tx, nid, [7 as EventNID], 0 as EventNID, 0 as StateSnapshotNID, latest.version);
      }
      expect(await rooms.selectRoomIDsWithEvents(tx)).to.deep.equal(['!c:example.org', '!m:example.org']);
    });

    test('bulkSelectRoomIDs and bulkSelectRoomNIDs map both ways and omit missing entries', async ({ storage }) => {
      const rooms = storage.tables.rooms;
      const tx = storage.unitOfWork.autocommit;
      const a = await rooms.insertRoomNID(tx, '!a:example.org', '10');
      const b = await rooms.insertRoomNID(tx, '!b%:example.org', '10');
      const missing = missingRoom(a, b);
      expect(await rooms.bulkSelectRoomIDs(tx, [b, missing, a])).to.deep.equal(new Map<RoomNID, string>([[a, '!a:example.org'], [b, '!b%:example.org']]));
      expect((await rooms.bulkSelectRoomIDs(tx, [missing])).size).to.equal(0);
      expect((await rooms.bulkSelectRoomIDs(tx, [])).size).to.equal(0);
      expect(await rooms.bulkSelectRoomNIDs(tx, ['!b%:example.org', '!nope:example.org', '!a:example.org']))
        .to.deep.equal(new Map([['!a:example.org', a], ['!b%:example.org', b]]));
      expect((await rooms.bulkSelectRoomNIDs(tx, ['!bx:example.org', '!b_:example.org'])).size).to.equal(0);
      expect((await rooms.bulkSelectRoomNIDs(tx, [])).size).to.equal(0);
    });
  });
}

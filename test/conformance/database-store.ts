import { expect } from 'chai';
import { ConflictError, InvalidInputError, MissingEventError, NotFoundError } from '../../src/types/errors.js';
import { parseEvent } from '../../src/types/event.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { makeEvent, rejects, seedRoom } from './fixtures.js';

/** StoreEvent and appendEvent: idempotency, duplicates, latest events, redactions, hostile input. */
export function databaseStoreTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Database: storing events', (test) => {
    test('storeEvent assigns NIDs and leaves the state before a new event unknown (0)', async ({ storage }) => {
      const db = storage.roomserver;
      const res = await db.storeEvent(makeEvent({ id: '$m1', type: 'm.room.message' }));
      expect(res.duplicate).to.equal(false);
      expect(res.stateAtEvent.eventNID).to.be.greaterThan(0);
      expect(res.stateAtEvent.eventStateKeyNID).to.equal(0);
      expect(res.stateAtEvent.beforeStateSnapshotNID).to.equal(0);
      const info = await db.roomInfo('!room:example.org');
      expect(info).to.include({ roomNID: res.roomNID, isStub: true, stateSnapshotNID: 0 });
    });

    test('storing the same event twice returns the same NID and snapshot, and stores it once', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const again = await db.storeEvent(ev.power);
      expect(again.duplicate).to.equal(true);
      const [at] = await db.stateAtEventIDs([ev.power.eventID]);
      expect(again.stateAtEvent.eventNID).to.equal(at!.eventNID);
      expect(again.stateAtEvent.beforeStateSnapshotNID).to.equal(at!.beforeStateSnapshotNID).and.not.equal(0);
      const stored = await db.eventsFromIDs([ev.power.eventID]);
      expect(stored).to.have.length(1);
      expect(stored[0]!.event.json).to.equal(ev.power.json);
    });

    test('appendEvent applied twice changes nothing the second time', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const before = await db.roomInfo('!room:example.org');
      const latestBefore = await db.latestEventIDs(before!.roomNID);
      const res = await db.appendEvent(ev.joinRules);
      expect(res.applied).to.equal(false);
      expect(await db.roomInfo('!room:example.org')).to.deep.equal(before);
      expect(await db.latestEventIDs(before!.roomNID)).to.deep.equal(latestBefore);
    });

    test('appendEvent moves the latest events to the new event and computes depth', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const info = (await db.roomInfo('!room:example.org'))!;
      const latest = await db.latestEventIDs(info.roomNID);
      expect(latest.eventIDs).to.deep.equal([ev.bobJoin.eventID]);
      expect(latest.depth).to.equal(ev.bobJoin.depth + 1);
      expect(latest.stateSnapshotNID).to.equal(info.stateSnapshotNID);
      expect(info.isStub).to.equal(false);
    });

    test('the room version comes from the create event, and defaults to "1"', async ({ storage }) => {
      const db = storage.roomserver;
      await db.storeEvent(makeEvent({ id: '$c1', room: '!v:x.org', type: 'm.room.create', stateKey: '', content: {} }));
      expect((await db.roomInfo('!v:x.org'))!.roomVersion).to.equal('1');
      await db.storeEvent(makeEvent({ id: '$c2', room: '!w:x.org', type: 'm.room.create', stateKey: '', content: { room_version: '11' } }));
      expect((await db.roomInfo('!w:x.org'))!.roomVersion).to.equal('11');
    });

    test('a client transaction ID maps to its event, and reusing it is a ConflictError', async ({ storage }) => {
      const db = storage.roomserver;
      const key = { transactionID: 'txn1', sessionID: 7, userID: '@alice:example.org' };
      expect(await db.getTransactionEventID(key)).to.equal(null);
      await db.storeEvent(makeEvent({ id: '$t1' }), { transaction: key });
      expect(await db.getTransactionEventID(key)).to.equal('$t1');
      await rejects(db.storeEvent(makeEvent({ id: '$t2' }), { transaction: key }), ConflictError);
      // Nothing of the refused event was stored.
      expect((await db.eventNIDs(['$t2'])).size).to.equal(0);
    });

    test('an event ID already stored in another room is refused', async ({ storage }) => {
      const db = storage.roomserver;
      await db.storeEvent(makeEvent({ id: '$same', room: '!a:x.org' }));
      await rejects(db.storeEvent(makeEvent({ id: '$same', room: '!b:x.org' })), ConflictError, /another room/);
    });

    test('a refused event leaves nothing behind, not even its new room', async ({ storage }) => {
      const db = storage.roomserver;
      await seedRoom(storage, '!a:example.org');
      const before = await storage.stats.collect();
      const key = { transactionID: 'txn1', sessionID: 1, userID: '@alice:example.org' };
      await db.storeEvent(makeEvent({ id: '$sent', room: '!a:example.org' }), { transaction: key });
      const after = await storage.stats.collect();
      // Into a new room: an event ID stored in another room, then a client transaction ID already used.
      await rejects(db.appendEvent(makeEvent({ id: '$msg!a:example.org', room: '!b:example.org', type: 'org.example.new' })), ConflictError, /another room/);
      await rejects(db.storeEvent(makeEvent({ id: '$msg!a:example.org', room: '!b:example.org' })), ConflictError, /another room/);
      await rejects(db.storeEvent(makeEvent({ id: '$other', room: '!c:example.org' }), { transaction: key }), ConflictError, /already sent/);
      for (const room of ['!b:example.org', '!c:example.org']) expect(await db.roomInfo(room), room).to.equal(null);
      expect(await db.getKnownRooms()).to.deep.equal(['!a:example.org']);
      expect(await storage.stats.collect()).to.deep.equal(after);
      expect(after.events).to.equal(before.events + 1);
      expect((await db.eventTypeNIDsFor(['org.example.new'])).size).to.equal(0);
      // The same event with the same transaction is a harmless retry.
      expect((await db.storeEvent(makeEvent({ id: '$sent', room: '!a:example.org' }), { transaction: key })).duplicate).to.equal(true);
    });

    test('events are returned by NID ascending, unknown ones skipped', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const nids = await db.eventNIDs([ev.message.eventID, ev.create.eventID, '$unknown']);
      expect(nids.size).to.equal(2);
      const events = await db.events([...nids.values()].reverse());
      expect(events.map((e) => e.event.eventID)).to.deep.equal([ev.create.eventID, ev.message.eventID]);
      await rejects(db.eventIDs([...nids.values(), 99_999 as never]), MissingEventError);
    });
  });

  group(fw, driver, 'Database: redactions', (test) => {
    test('a redaction stored after its target strips the target and records redacted_because', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const redaction = makeEvent({ id: '$redact', type: 'm.room.redaction', redacts: ev.message.eventID, depth: 7, prev: [ev.bobJoin.eventID], content: { reason: 'spam' } });
      const res = await db.appendEvent(redaction);
      expect(res.redaction?.redactedEventID).to.equal(ev.message.eventID);
      const [stored] = await db.eventsFromIDs([ev.message.eventID]);
      const json = JSON.parse(stored!.event.json);
      expect(json.content).to.deep.equal({});
      expect(json.unsigned.redacted_because.event_id).to.equal('$redact');
      // Applied once: storing the redaction again does not re-apply it.
      const again = await db.storeEvent(redaction);
      expect(again.redaction).to.equal(undefined);
    });

    test('a redaction stored before its target is applied when the target arrives', async ({ storage }) => {
      const db = storage.roomserver;
      await seedRoom(storage);
      const redaction = makeEvent({ id: '$early', type: 'm.room.redaction', redacts: '$late', content: {} });
      expect((await db.storeEvent(redaction)).redaction).to.equal(undefined);
      const res = await db.storeEvent(makeEvent({ id: '$late', content: { body: 'secret', msgtype: 'm.text' } }));
      expect(res.redaction?.redactedEventID).to.equal('$late');
      const [stored] = await db.eventsFromIDs(['$late']);
      expect(JSON.parse(stored!.event.json).content).to.deep.equal({});
    });

    test('a redaction keeps the keys the redaction algorithm keeps (membership of a member event)', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      await db.storeEvent(makeEvent({ id: '$r2', type: 'm.room.redaction', redacts: ev.bobJoin.eventID, content: {} }));
      const [stored] = await db.eventsFromIDs([ev.bobJoin.eventID]);
      expect(JSON.parse(stored!.event.json).content).to.deep.equal({ membership: 'join' });
    });

    test('self-redactions, redactions across rooms and redactions of unknown events are not applied', async ({ storage }) => {
      const db = storage.roomserver;
      await seedRoom(storage);
      await seedRoom(storage, '!other:example.org');
      const self = await db.storeEvent(makeEvent({ id: '$self', type: 'm.room.redaction', redacts: '$self', content: {} }));
      expect(self.redaction).to.equal(undefined);
      const across = await db.storeEvent(makeEvent({ id: '$across', type: 'm.room.redaction', redacts: '$msg!other:example.org', content: {} }));
      expect(across.redaction).to.equal(undefined);
      const [target] = await db.eventsFromIDs(['$msg!other:example.org']);
      expect(JSON.parse(target!.event.json).content.body).to.be.a('string');
    });
  });

  group(fw, driver, 'Database: hostile and malformed input', (test) => {
    const hostile = ["it's", '"quoted"', '100%', 'under_score', 'a/b\\c', 'ünïcødé 🎉', "'; DROP TABLE roomserver_events; --"];
    test('IDs and state keys with quotes, %, _, /, unicode round-trip exactly', async ({ storage }) => {
      const db = storage.roomserver;
      const room = '!r:example.org';
      await db.appendEvent(makeEvent({ id: '$c', room, type: 'm.room.create', stateKey: '', content: { room_version: '10' } }));
      let prev = '$c';
      for (const [i, s] of hostile.entries()) {
        const id = `$${s}${i}`;
        await db.appendEvent(makeEvent({ id, room, type: `org.example.${s}`, stateKey: s, depth: i + 2, prev: [prev] }));
        prev = id;
      }
      for (const [i, s] of hostile.entries()) {
        const stored = await db.getStateEvent(room, `org.example.${s}`, s);
        expect(stored?.event.eventID).to.equal(`$${s}${i}`);
      }
      // `%` and `_` are not wildcards: a state key of "100_" does not match "100%".
      expect(await db.getStateEvent(room, 'org.example.100%', '100_')).to.equal(null);
    });

    test('a 10 kB event ID is refused with a clear message before anything is written', async () => {
      const long = `$${'x'.repeat(10_000)}`;
      const json = JSON.stringify({ event_id: long, room_id: '!r:x.org', type: 'm.room.message', sender: '@a:x.org', depth: 1, origin_server_ts: 1,
        prev_events: [], auth_events: [], content: {} });
      let err: unknown;
      try { parseEvent(json); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(InvalidInputError);
      expect((err as Error).message).to.match(/event_id is 10001 bytes long; Matrix allows at most 255/);
      expect((err as Error).message.length).to.be.lessThan(300);
    });

    test('malformed events are refused naming the field', async () => {
      const base = { event_id: '$e', room_id: '!r:x.org', type: 'm.room.message', sender: '@a:x.org', depth: 1, origin_server_ts: 1,
        prev_events: [], auth_events: [], content: {} };
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ ...base, event_id: undefined }, /event_id is missing: since room version 3 a PDU carries none/],
        [{ ...base, event_id: 5 }, /event_id must be a string/],
        [{ ...base, room_id: 'nosigil' }, /room_id must start with "!"/],
        [{ ...base, sender: '@nocolon' }, /not a user ID/],
        [{ ...base, depth: -1 }, /depth must be a non-negative integer/],
        [{ ...base, content: [] }, /content must be a JSON object/],
        [{ ...base, state_key: 5 }, /state_key must be a string/],
        [{ ...base, prev_events: 'x' }, /prev_events must be an array/],
        [{ ...base, type: 'a\u0000b' }, /NUL/],
      ];
      for (const [o, pattern] of cases) {
        let err: unknown;
        try { parseEvent(JSON.stringify(o)); } catch (e) { err = e; }
        expect(err, JSON.stringify(o)).to.be.instanceOf(InvalidInputError);
        expect((err as Error).message).to.match(pattern);
      }
      let err: unknown;
      try { parseEvent('{"event_id": '); } catch (e) { err = e; }
      expect(err).to.be.instanceOf(InvalidInputError);
    });

    test('unknown IDs give the documented not-found answers', async ({ storage }) => {
      const db = storage.roomserver;
      expect(await db.roomInfo('!nope:x.org')).to.equal(null);
      await rejects(db.snapshotNIDFromEventID('$nope'), NotFoundError);
      await rejects(db.stateAtEventIDs(['$nope']), MissingEventError);
      await rejects(db.getStateEvent('!nope:x.org', 'm.room.create', ''), NotFoundError);
      await rejects(db.getKnownUsers('@nobody:x.org', '', 10), NotFoundError);
      await rejects(db.forgetRoom('@nobody:x.org', '!nope:x.org', true), NotFoundError);
      expect(await db.getRoomIDForAlias('#nope:x.org')).to.equal(null);
    });
  });
}

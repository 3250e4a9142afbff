import { expect } from 'chai';
import { ConflictError, NotFoundError } from '../../src/types/errors.js';
import { asEventNID } from '../../src/types/nids.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { rejects } from './fixtures.js';

export function miscTableTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Table: previous_events', (test) => {
    test('selectPreviousEventExists is a NotFoundError until some event names the ID, then resolves', async ({ storage }) => {
      const p = storage.tables.previousEvents;
      const tx = storage.unitOfWork.autocommit;
      await rejects(p.selectPreviousEventExists(tx, '$prev'), NotFoundError);
      await p.insertPreviousEvent(tx, '$prev', asEventNID(10));
      await p.selectPreviousEventExists(tx, '$prev');
      await storage.unitOfWork.transaction((inTx) => p.selectPreviousEventExists(inTx, '$prev'));
      // Exact match only.
      await rejects(p.selectPreviousEventExists(tx, '$PREV'), NotFoundError);
      await rejects(p.selectPreviousEventExists(tx, '$pre'), NotFoundError);
      await rejects(p.selectPreviousEventExists(tx, '$prev '), NotFoundError);
    });

    test('insertPreviousEvent has set semantics: naming the same pair again is harmless', async ({ storage }) => {
      const p = storage.tables.previousEvents;
      const tx = storage.unitOfWork.autocommit;
      await p.insertPreviousEvent(tx, '$prev', asEventNID(10));
      await p.insertPreviousEvent(tx, '$prev', asEventNID(10));
      await storage.unitOfWork.transaction((inTx) => p.insertPreviousEvent(inTx, '$prev', asEventNID(10)));
      await p.insertPreviousEvent(tx, '$prev', asEventNID(11));
      await p.insertPreviousEvent(tx, '$prev', asEventNID(10));
      await p.selectPreviousEventExists(tx, '$prev');
      // Many events naming one ID, one event naming many IDs.
      await p.insertPreviousEvent(tx, '$other', asEventNID(10));
      await p.selectPreviousEventExists(tx, '$other');
      await rejects(p.selectPreviousEventExists(tx, '$third'), NotFoundError);
    });

    test('previous event IDs with % and _ match only themselves', async ({ storage }) => {
      const p = storage.tables.previousEvents;
      const tx = storage.unitOfWork.autocommit;
      await p.insertPreviousEvent(tx, '$100%', asEventNID(1));
      await p.insertPreviousEvent(tx, '$a_b', asEventNID(2));
      await p.selectPreviousEventExists(tx, '$100%');
      await p.selectPreviousEventExists(tx, '$a_b');
      await rejects(p.selectPreviousEventExists(tx, '$1000'), NotFoundError);
      await rejects(p.selectPreviousEventExists(tx, '$axb'), NotFoundError);
      await rejects(p.selectPreviousEventExists(tx, '$%'), NotFoundError);
    });
  });

  group(fw, driver, 'Table: redactions', (test) => {
    test('insertRedaction stores a redaction that both selects return', async ({ storage }) => {
      const r = storage.tables.redactions;
      const tx = storage.unitOfWork.autocommit;
      const info = { redactionEventID: '$redaction', redactsEventID: '$target', validated: false };
      await r.insertRedaction(tx, info);
      expect(await r.selectRedactionInfoByRedactionEventID(tx, '$redaction')).to.deep.equal(info);
      expect(await r.selectRedactionInfoByEventBeingRedacted(tx, '$target')).to.deep.equal(info);
      const validated = { redactionEventID: '$r2', redactsEventID: '$t2', validated: true };
      await storage.unitOfWork.transaction((inTx) => r.insertRedaction(inTx, validated));
      expect(await r.selectRedactionInfoByRedactionEventID(tx, '$r2')).to.deep.equal(validated);
    });

    test('a second insertRedaction with the same redaction ID changes nothing (DO NOTHING)', async ({ storage }) => {
      const r = storage.tables.redactions;
      const tx = storage.unitOfWork.autocommit;
      const info = { redactionEventID: '$redaction', redactsEventID: '$target', validated: false };
      await r.insertRedaction(tx, info);
      await r.insertRedaction(tx, { redactionEventID: '$redaction', redactsEventID: '$elsewhere', validated: true });
      expect(await r.selectRedactionInfoByRedactionEventID(tx, '$redaction')).to.deep.equal(info);
      expect(await r.selectRedactionInfoByEventBeingRedacted(tx, '$target')).to.deep.equal(info);
      expect(await r.selectRedactionInfoByEventBeingRedacted(tx, '$elsewhere')).to.equal(null);
    });

    test('both selects return null when nothing matches', async ({ storage }) => {
      const r = storage.tables.redactions;
      const tx = storage.unitOfWork.autocommit;
      expect(await r.selectRedactionInfoByRedactionEventID(tx, '$none')).to.equal(null);
      expect(await r.selectRedactionInfoByEventBeingRedacted(tx, '$none')).to.equal(null);
      await r.insertRedaction(tx, { redactionEventID: '$redaction', redactsEventID: '$target', validated: false });
      // The two lookups do not answer for each other's key.
      expect(await r.selectRedactionInfoByRedactionEventID(tx, '$target')).to.equal(null);
      expect(await r.selectRedactionInfoByEventBeingRedacted(tx, '$redaction')).to.equal(null);
    });

    test('with several redactions of one event, selectRedactionInfoByEventBeingRedacted returns the first stored', async ({ storage }) => {
      const r = storage.tables.redactions;
      const tx = storage.unitOfWork.autocommit;
      // Stored out of ID order, so that "first by ID" and "first stored" differ.
      await r.insertRedaction(tx, { redactionEventID: '$zz-first', redactsEventID: '$target', validated: false });
      await r.insertRedaction(tx, { redactionEventID: '$aa-second', redactsEventID: '$target', validated: true });
      await r.insertRedaction(tx, { redactionEventID: '$mm-third', redactsEventID: '$target', validated: true });
      expect(await r.selectRedactionInfoByEventBeingRedacted(tx, '$target'))
        .to.deep.equal({ redactionEventID: '$zz-first', redactsEventID: '$target', validated: false });
      expect((await r.selectRedactionInfoByRedactionEventID(tx, '$aa-second'))?.redactsEventID).to.equal('$target');
    });

    test('markRedactionValidated sets and clears the flag of that redaction only; a missing ID is no error', async ({ storage }) => {
      const r = storage.tables.redactions;
      const tx = storage.unitOfWork.autocommit;
      await r.insertRedaction(tx, { redactionEventID: '$r1', redactsEventID: '$t1', validated: false });
      await r.insertRedaction(tx, { redactionEventID: '$r2', redactsEventID: '$t2', validated: false });
      await r.markRedactionValidated(tx, '$r1', true);
      expect(await r.selectRedactionInfoByRedactionEventID(tx, '$r1')).to.deep.equal({ redactionEventID: '$r1', redactsEventID: '$t1', validated: true });
      expect(await r.selectRedactionInfoByEventBeingRedacted(tx, '$t1')).to.deep.equal({ redactionEventID: '$r1', redactsEventID: '$t1', validated: true });
      expect((await r.selectRedactionInfoByRedactionEventID(tx, '$r2'))!.validated).to.equal(false);
      await storage.unitOfWork.transaction((inTx) => r.markRedactionValidated(inTx, '$r1', false));
      expect((await r.selectRedactionInfoByRedactionEventID(tx, '$r1'))!.validated).to.equal(false);
      await r.markRedactionValidated(tx, '$missing', true);
      expect(await r.selectRedactionInfoByRedactionEventID(tx, '$missing')).to.equal(null);
    });
  });

  group(fw, driver, 'Table: room_aliases', (test) => {
    test('insertRoomAlias stores the room and creator that the selects return', async ({ storage }) => {
      const a = storage.tables.roomAliases;
      const tx = storage.unitOfWork.autocommit;
      await a.insertRoomAlias(tx, '#room:example.org', '!r:example.org', '@alice:example.org');
      await storage.unitOfWork.transaction((inTx) => a.insertRoomAlias(inTx, "#it's_100%:example.org", '!s:example.org', '@bob:example.org'));
      expect(await a.selectRoomIDFromAlias(tx, '#room:example.org')).to.equal('!r:example.org');
      expect(await a.selectCreatorIDFromAlias(tx, '#room:example.org')).to.equal('@alice:example.org');
      expect(await a.selectRoomIDFromAlias(tx, "#it's_100%:example.org")).to.equal('!s:example.org');
      expect(await a.selectCreatorIDFromAlias(tx, "#it's_100%:example.org")).to.equal('@bob:example.org');
    });

    test('inserting an existing alias is a ConflictError and keeps the original room and creator', async ({ storage }) => {
      const a = storage.tables.roomAliases;
      const tx = storage.unitOfWork.autocommit;
      await a.insertRoomAlias(tx, '#room:example.org', '!r:example.org', '@alice:example.org');
      await rejects(a.insertRoomAlias(tx, '#room:example.org', '!other:example.org', '@mallory:example.org'), ConflictError);
      await rejects(storage.unitOfWork.transaction((inTx) => a.insertRoomAlias(inTx, '#room:example.org', '!r:example.org', '@alice:example.org')), ConflictError);
      expect(await a.selectRoomIDFromAlias(tx, '#room:example.org')).to.equal('!r:example.org');
      expect(await a.selectCreatorIDFromAlias(tx, '#room:example.org')).to.equal('@alice:example.org');
      expect(await a.selectAliasesFromRoomID(tx, '!other:example.org')).to.deep.equal([]);
    });

    test('the selects return null for an unknown alias (exact match)', async ({ storage }) => {
      const a = storage.tables.roomAliases;
      const tx = storage.unitOfWork.autocommit;
      expect(await a.selectRoomIDFromAlias(tx, '#nope:example.org')).to.equal(null);
      expect(await a.selectCreatorIDFromAlias(tx, '#nope:example.org')).to.equal(null);
      await a.insertRoomAlias(tx, '#a_b:example.org', '!r:example.org', '@alice:example.org');
      expect(await a.selectRoomIDFromAlias(tx, '#axb:example.org')).to.equal(null);
      expect(await a.selectRoomIDFromAlias(tx, '#A_B:example.org')).to.equal(null);
      expect(await a.selectCreatorIDFromAlias(tx, '#axb:example.org')).to.equal(null);
    });

    test('selectAliasesFromRoomID lists the room\'s aliases in insertion order; empty if none', async ({ storage }) => {
      const a = storage.tables.roomAliases;
      const tx = storage.unitOfWork.autocommit;
      expect(await a.selectAliasesFromRoomID(tx, '!r:example.org')).to.deep.equal([]);
      await a.insertRoomAlias(tx, '#zebra:example.org', '!r:example.org', '@alice:example.org');
      await a.insertRoomAlias(tx, '#other:example.org', '!s:example.org', '@alice:example.org');
      await a.insertRoomAlias(tx, '#apple:example.org', '!r:example.org', '@bob:example.org');
      await a.insertRoomAlias(tx, '#mango:example.org', '!r:example.org', '@alice:example.org');
      expect(await a.selectAliasesFromRoomID(tx, '!r:example.org')).to.deep.equal(['#zebra:example.org', '#apple:example.org', '#mango:example.org']);
      expect(await a.selectAliasesFromRoomID(tx, '!s:example.org')).to.deep.equal(['#other:example.org']);
      expect(await a.selectAliasesFromRoomID(tx, '!R:example.org')).to.deep.equal([]);
    });

    test('deleteRoomAlias removes only that alias, frees it for reuse, and is a no-op when missing', async ({ storage }) => {
      const a = storage.tables.roomAliases;
      const tx = storage.unitOfWork.autocommit;
      await a.insertRoomAlias(tx, '#one:example.org', '!r:example.org', '@alice:example.org');
      await a.insertRoomAlias(tx, '#two:example.org', '!r:example.org', '@alice:example.org');
      await a.deleteRoomAlias(tx, '#one:example.org');
      expect(await a.selectRoomIDFromAlias(tx, '#one:example.org')).to.equal(null);
      expect(await a.selectCreatorIDFromAlias(tx, '#one:example.org')).to.equal(null);
      expect(await a.selectAliasesFromRoomID(tx, '!r:example.org')).to.deep.equal(['#two:example.org']);
      await a.deleteRoomAlias(tx, '#one:example.org');
      await storage.unitOfWork.transaction((inTx) => a.deleteRoomAlias(inTx, '#never:example.org'));
      expect(await a.selectAliasesFromRoomID(tx, '!r:example.org')).to.deep.equal(['#two:example.org']);
      await a.insertRoomAlias(tx, '#one:example.org', '!s:example.org', '@bob:example.org');
      expect(await a.selectRoomIDFromAlias(tx, '#one:example.org')).to.equal('!s:example.org');
      expect(await a.selectCreatorIDFromAlias(tx, '#one:example.org')).to.equal('@bob:example.org');
    });
  });

  group(fw, driver, 'Table: published', (test) => {
    test('upsertRoomPublished sets the flag, and setting it again overwrites it', async ({ storage }) => {
      const p = storage.tables.published;
      const tx = storage.unitOfWork.autocommit;
      await p.upsertRoomPublished(tx, '!r:example.org', true);
      expect(await p.selectPublishedFromRoomID(tx, '!r:example.org')).to.equal(true);
      await p.upsertRoomPublished(tx, '!r:example.org', false);
      expect(await p.selectPublishedFromRoomID(tx, '!r:example.org')).to.equal(false);
      await storage.unitOfWork.transaction((inTx) => p.upsertRoomPublished(inTx, '!r:example.org', true));
      expect(await p.selectPublishedFromRoomID(tx, '!r:example.org')).to.equal(true);
      await p.upsertRoomPublished(tx, '!r:example.org', true);
      expect(await p.selectAllPublishedRooms(tx, true)).to.deep.equal(['!r:example.org']);
    });

    test('selectPublishedFromRoomID is false for a room with no row', async ({ storage }) => {
      const p = storage.tables.published;
      const tx = storage.unitOfWork.autocommit;
      expect(await p.selectPublishedFromRoomID(tx, '!nope:example.org')).to.equal(false);
      await p.upsertRoomPublished(tx, '!r:example.org', true);
      expect(await p.selectPublishedFromRoomID(tx, '!nope:example.org')).to.equal(false);
      expect(await p.selectPublishedFromRoomID(tx, '!R:example.org')).to.equal(false);
    });

    test('selectAllPublishedRooms lists the rooms with that flag, sorted', async ({ storage }) => {
      const p = storage.tables.published;
      const tx = storage.unitOfWork.autocommit;
      expect(await p.selectAllPublishedRooms(tx, true)).to.deep.equal([]);
      expect(await p.selectAllPublishedRooms(tx, false)).to.deep.equal([]);
      for (const [id, flag] of [['!m:example.org', true], ['!z:example.org', false], ['!c:example.org', true], ['!x:example.org', true],
        ['!b:example.org', false], ['!a:example.org', true]] as const) await p.upsertRoomPublished(tx, id, flag);
      // Unpublishing one moves it from one list to the other.
      await p.upsertRoomPublished(tx, '!x:example.org', false);
      expect(await p.selectAllPublishedRooms(tx, true)).to.deep.equal(['!a:example.org', '!c:example.org', '!m:example.org']);
      expect(await p.selectAllPublishedRooms(tx, false)).to.deep.equal(['!b:example.org', '!x:example.org', '!z:example.org']);
    });
  });

  group(fw, driver, 'Table: transactions', (test) => {
    const key = { transactionID: 'txn1', sessionID: 7, userID: '@alice:example.org' };

    test('insertTransaction stores the event ID that selectTransactionEventID returns', async ({ storage }) => {
      const t = storage.tables.transactions;
      const tx = storage.unitOfWork.autocommit;
      await t.insertTransaction(tx, key, '$event');
      expect(await t.selectTransactionEventID(tx, key)).to.equal('$event');
      expect(await storage.unitOfWork.transaction((inTx) => t.selectTransactionEventID(inTx, { ...key }))).to.equal('$event');
    });

    test('inserting an existing key is a ConflictError and keeps the original event ID', async ({ storage }) => {
      const t = storage.tables.transactions;
      const tx = storage.unitOfWork.autocommit;
      await t.insertTransaction(tx, key, '$event');
      await rejects(t.insertTransaction(tx, key, '$other'), ConflictError);
      await rejects(storage.unitOfWork.transaction((inTx) => t.insertTransaction(inTx, { ...key }, '$event')), ConflictError);
      expect(await t.selectTransactionEventID(tx, key)).to.equal('$event');
    });

    test('a missing key is a NotFoundError; each part of the key tells keys apart', async ({ storage }) => {
      const t = storage.tables.transactions;
      const tx = storage.unitOfWork.autocommit;
      await rejects(t.selectTransactionEventID(tx, key), NotFoundError);
      await t.insertTransaction(tx, key, '$event');
      const others = [
        { ...key, transactionID: 'txn2' },
        { ...key, sessionID: 8 },
        { ...key, userID: '@bob:example.org' },
        { ...key, transactionID: 'TXN1' },
      ];
      for (const other of others) await rejects(t.selectTransactionEventID(tx, other), NotFoundError);
      // Each of them is a separate key that can be stored alongside.
      for (const [i, other] of others.entries()) await t.insertTransaction(tx, other, `$event${i}`);
      for (const [i, other] of others.entries()) expect(await t.selectTransactionEventID(tx, other)).to.equal(`$event${i}`);
      expect(await t.selectTransactionEventID(tx, key)).to.equal('$event');
    });

    test('transaction IDs with separators and wildcards do not collide', async ({ storage }) => {
      const t = storage.tables.transactions;
      const tx = storage.unitOfWork.autocommit;
      // A driver that joins the key parts into one string must not let these two meet.
      const keys = [
        { transactionID: 'a|1', sessionID: 2, userID: '@u:x.org' },
        { transactionID: 'a', sessionID: 1, userID: '2|@u:x.org' },
        { transactionID: 'a/1', sessionID: 2, userID: '@u:x.org' },
        { transactionID: 'a', sessionID: 1, userID: '2/@u:x.org' },
        { transactionID: 'a:1', sessionID: 2, userID: '@u:x.org' },
        { transactionID: 'a', sessionID: 1, userID: '2:@u:x.org' },
        { transactionID: '100%', sessionID: 2, userID: '@u:x.org' },
      ];
      for (const [i, k] of keys.entries()) await t.insertTransaction(tx, k, `$e${i}`);
      for (const [i, k] of keys.entries()) expect(await t.selectTransactionEventID(tx, k), JSON.stringify(k)).to.equal(`$e${i}`);
      const d = keys[6]!;
      await rejects(t.selectTransactionEventID(tx, { ...d, transactionID: '1000' }), NotFoundError);
    });
  });
}

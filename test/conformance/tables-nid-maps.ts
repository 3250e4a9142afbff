import { expect } from 'chai';
import { ConflictError, NotFoundError } from '../../src/types/errors.js';
import { asEventStateKeyNID, asEventTypeNID } from '../../src/types/nids.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { rejects } from './fixtures.js';

/** The fixed event type NIDs, written out rather than imported: the contract is these numbers. */
const PREASSIGNED: ReadonlyArray<readonly [string, number]> = [
  ['m.room.create', 1],
  ['m.room.power_levels', 2],
  ['m.room.join_rules', 3],
  ['m.room.third_party_invite', 4],
  ['m.room.member', 5],
  ['m.room.redaction', 6],
  ['m.room.history_visibility', 7],
];

/**
 * Strings a naive driver mangles: SQL quoting, LIKE wildcards, characters Cosmos DB forbids in an item id,
 * path separators, unicode in both normal forms, case and trailing-space variants (which must stay distinct).
 */
const HOSTILE = [
  "it's", '"quoted"', '100%', 'under_score', '%', '_', 'a/b\\c', 'what?', 'hash#tag', 'ünïcødé 🎉',
  "'; DROP TABLE roomserver_event_types; --", 'caf\u00e9', 'cafe\u0301', 'Case', 'case', 'trailing ', 'trailing',
  ' ', '\t\n', '{"json": [1]}', '$1', '?',
];

/** Event types are IDs: Matrix caps them at 255 bytes. This one is exactly 255 bytes, half of them multi-byte. */
const LONG_TYPE = `org.example.${'é'.repeat(60)}${'t'.repeat(255 - 12 - 120)}`;

/** State keys have no limit of their own (only the event's 64 KiB): 8,000 characters that do not compress to nothing. */
const LONG_STATE_KEY = Array.from({ length: 1200 }, (_, i) => `${i}-${(i * 7919) % 1009}`).join('/').slice(0, 8000);

export function nidMapTableTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Table: event_types', (test) => {
    test('the seven preassigned event types have their fixed NIDs, both ways', async ({ storage }) => {
      const t = storage.tables.eventTypes;
      const tx = storage.unitOfWork.autocommit;
      for (const [type, nid] of PREASSIGNED) expect(await t.selectEventTypeNID(tx, type), type).to.equal(nid);
      const byType = await t.bulkSelectEventTypeNID(tx, PREASSIGNED.map(([type]) => type));
      expect([...byType].sort((a, b) => a[1] - b[1])).to.deep.equal(PREASSIGNED.map(([type, nid]) => [type, nid]));
      const byNID = await t.bulkSelectEventType(tx, PREASSIGNED.map(([, nid]) => asEventTypeNID(nid)));
      expect([...byNID].sort((a, b) => a[0] - b[0])).to.deep.equal(PREASSIGNED.map(([type, nid]) => [nid, type]));
    });

    test('insertEventTypeNID assigns new positive NIDs, distinct from the seeds and from each other, that select returns', async ({ storage }) => {
      const t = storage.tables.eventTypes;
      const tx = storage.unitOfWork.autocommit;
      const a = await t.insertEventTypeNID(tx, 'm.room.message');
      const b = await t.insertEventTypeNID(tx, 'org.example.b');
      const c = await storage.unitOfWork.transaction((inTx) => t.insertEventTypeNID(inTx, 'org.example.c'));
      for (const nid of [a, b, c]) {
        expect(Number.isSafeInteger(nid) && nid > 0, `NID ${nid}`).to.equal(true);
        expect(PREASSIGNED.map(([, n]) => n)).to.not.include(nid);
      }
      expect(new Set([a, b, c]).size).to.equal(3);
      expect(await t.selectEventTypeNID(tx, 'm.room.message')).to.equal(a);
      expect(await t.selectEventTypeNID(tx, 'org.example.b')).to.equal(b);
      expect(await t.selectEventTypeNID(tx, 'org.example.c')).to.equal(c);
      expect(await t.bulkSelectEventType(tx, [a, b, c])).to.deep.equal(new Map([[a, 'm.room.message'], [b, 'org.example.b'], [c, 'org.example.c']]));
    });

    test('a NID assigned inside a transaction is visible in it and stays the same after commit', async ({ storage }) => {
      const t = storage.tables.eventTypes;
      const [nid, seenInside] = await storage.unitOfWork.transaction(async (tx) => {
        const n = await t.insertEventTypeNID(tx, 'org.example.tx');
        return [n, await t.selectEventTypeNID(tx, 'org.example.tx')] as const;
      });
      expect(seenInside).to.equal(nid);
      expect(await t.selectEventTypeNID(storage.unitOfWork.autocommit, 'org.example.tx')).to.equal(nid);
      expect(await storage.unitOfWork.transaction((tx) => t.selectEventTypeNID(tx, 'org.example.tx'))).to.equal(nid);
    });

    test('inserting a type that exists is a ConflictError and keeps the existing NID (seeded or new)', async ({ storage }) => {
      const t = storage.tables.eventTypes;
      const tx = storage.unitOfWork.autocommit;
      const nid = await t.insertEventTypeNID(tx, 'org.example.dup');
      await rejects(t.insertEventTypeNID(tx, 'org.example.dup'), ConflictError);
      await rejects(storage.unitOfWork.transaction((inTx) => t.insertEventTypeNID(inTx, 'org.example.dup')), ConflictError);
      expect(await t.selectEventTypeNID(tx, 'org.example.dup')).to.equal(nid);
      await rejects(t.insertEventTypeNID(tx, 'm.room.member'), ConflictError);
      expect(await t.selectEventTypeNID(tx, 'm.room.member')).to.equal(5);
      expect(await t.bulkSelectEventType(tx, [asEventTypeNID(5)])).to.deep.equal(new Map([[5, 'm.room.member']]));
    });

    test('selectEventTypeNID of an unknown type is a NotFoundError (matching is exact, not case-insensitive)', async ({ storage }) => {
      const t = storage.tables.eventTypes;
      const tx = storage.unitOfWork.autocommit;
      await rejects(t.selectEventTypeNID(tx, 'org.example.never'), NotFoundError);
      await rejects(t.selectEventTypeNID(tx, 'M.ROOM.CREATE'), NotFoundError);
      await rejects(t.selectEventTypeNID(tx, 'm.room.create '), NotFoundError);
      await rejects(t.selectEventTypeNID(tx, ''), NotFoundError);
      // A type is not a state key: the two maps are separate.
      await storage.tables.eventStateKeys.insertEventStateKeyNID(tx, 'org.example.only-a-key');
      await rejects(t.selectEventTypeNID(tx, 'org.example.only-a-key'), NotFoundError);
    });

    test('bulkSelectEventTypeNID maps the known types and omits unknown ones', async ({ storage }) => {
      const t = storage.tables.eventTypes;
      const tx = storage.unitOfWork.autocommit;
      const x = await t.insertEventTypeNID(tx, 'org.example.x');
      const got = await t.bulkSelectEventTypeNID(tx, ['org.example.unknown', 'org.example.x', 'm.room.create', 'org.example.x']);
      expect(got).to.deep.equal(new Map<string, number>([['org.example.x', x], ['m.room.create', 1]]));
      expect((await t.bulkSelectEventTypeNID(tx, ['nope', 'nada'])).size).to.equal(0);
      expect((await t.bulkSelectEventTypeNID(tx, [])).size).to.equal(0);
    });

    test('bulkSelectEventType maps NIDs back to types and omits unknown NIDs', async ({ storage }) => {
      const t = storage.tables.eventTypes;
      const tx = storage.unitOfWork.autocommit;
      const x = await t.insertEventTypeNID(tx, 'org.example.x');
      const unknown = asEventTypeNID(x + 1_000_000);
      const got = await t.bulkSelectEventType(tx, [unknown, x, asEventTypeNID(2), asEventTypeNID(0)]);
      expect(got).to.deep.equal(new Map<number, string>([[x, 'org.example.x'], [2, 'm.room.power_levels']]));
      expect((await t.bulkSelectEventType(tx, [])).size).to.equal(0);
    });

    test('hostile type strings round-trip exactly; % and _ are not wildcards; variants stay distinct', async ({ storage }) => {
      const t = storage.tables.eventTypes;
      const tx = storage.unitOfWork.autocommit;
      const types = [...HOSTILE.map((s) => `org.example.${s}`), LONG_TYPE];
      const nids = new Map<string, number>();
      for (const type of types) nids.set(type, await t.insertEventTypeNID(tx, type));
      expect(new Set(nids.values()).size, 'every string gets its own NID').to.equal(types.length);
      for (const type of types) expect(await t.selectEventTypeNID(tx, type), JSON.stringify(type)).to.equal(nids.get(type));
      expect(await t.bulkSelectEventTypeNID(tx, types)).to.deep.equal(nids);
      const back = await t.bulkSelectEventType(tx, [...nids.values()].map(asEventTypeNID));
      for (const [type, nid] of nids) expect(back.get(asEventTypeNID(nid)), JSON.stringify(type)).to.equal(type);
      // A LIKE-style match would find these; an exact match must not.
      await rejects(t.selectEventTypeNID(tx, 'org.example.100x'), NotFoundError);
      await rejects(t.selectEventTypeNID(tx, 'org.example.underXscore'), NotFoundError);
      await rejects(t.selectEventTypeNID(tx, 'org.example.anything'), NotFoundError);
      expect((await t.bulkSelectEventTypeNID(tx, ['org.example.X', 'org.example.1000'])).size).to.equal(0);
    });
  });

  group(fw, driver, 'Table: event_state_keys', (test) => {
    test('the empty state key is preassigned NID 1, both ways', async ({ storage }) => {
      const k = storage.tables.eventStateKeys;
      const tx = storage.unitOfWork.autocommit;
      expect(await k.selectEventStateKeyNID(tx, '')).to.equal(1);
      expect(await k.bulkSelectEventStateKeyNID(tx, [''])).to.deep.equal(new Map([['', 1]]));
      expect(await k.bulkSelectEventStateKey(tx, [asEventStateKeyNID(1)])).to.deep.equal(new Map([[1, '']]));
    });

    test('insertEventStateKeyNID assigns new positive, distinct NIDs that select returns', async ({ storage }) => {
      const k = storage.tables.eventStateKeys;
      const tx = storage.unitOfWork.autocommit;
      const alice = await k.insertEventStateKeyNID(tx, '@alice:example.org');
      const bob = await storage.unitOfWork.transaction((inTx) => k.insertEventStateKeyNID(inTx, '@bob:example.org'));
      for (const nid of [alice, bob]) expect(Number.isSafeInteger(nid) && nid > 1, `NID ${nid}`).to.equal(true);
      expect(alice).to.not.equal(bob);
      expect(await k.selectEventStateKeyNID(tx, '@alice:example.org')).to.equal(alice);
      expect(await k.selectEventStateKeyNID(tx, '@bob:example.org')).to.equal(bob);
      expect(await k.bulkSelectEventStateKey(tx, [bob, alice])).to.deep.equal(new Map([[alice, '@alice:example.org'], [bob, '@bob:example.org']]));
      // Stable: asking again later gives the same NIDs.
      expect(await storage.unitOfWork.transaction((inTx) => k.selectEventStateKeyNID(inTx, '@alice:example.org'))).to.equal(alice);
    });

    test('inserting a key that exists is a ConflictError and keeps the existing NID ("" included)', async ({ storage }) => {
      const k = storage.tables.eventStateKeys;
      const tx = storage.unitOfWork.autocommit;
      const nid = await k.insertEventStateKeyNID(tx, '@dup:example.org');
      await rejects(k.insertEventStateKeyNID(tx, '@dup:example.org'), ConflictError);
      await rejects(storage.unitOfWork.transaction((inTx) => k.insertEventStateKeyNID(inTx, '@dup:example.org')), ConflictError);
      expect(await k.selectEventStateKeyNID(tx, '@dup:example.org')).to.equal(nid);
      await rejects(k.insertEventStateKeyNID(tx, ''), ConflictError);
      expect(await k.selectEventStateKeyNID(tx, '')).to.equal(1);
    });

    test('selectEventStateKeyNID of an unknown key is a NotFoundError (exact match)', async ({ storage }) => {
      const k = storage.tables.eventStateKeys;
      const tx = storage.unitOfWork.autocommit;
      await k.insertEventStateKeyNID(tx, '@alice:example.org');
      await rejects(k.selectEventStateKeyNID(tx, '@nobody:example.org'), NotFoundError);
      await rejects(k.selectEventStateKeyNID(tx, '@ALICE:example.org'), NotFoundError);
      await rejects(k.selectEventStateKeyNID(tx, '@alice:example.org '), NotFoundError);
      await rejects(k.selectEventStateKeyNID(tx, ' '), NotFoundError);
      // A state key is not an event type: the two maps are separate.
      await rejects(k.selectEventStateKeyNID(tx, 'm.room.create'), NotFoundError);
    });

    test('bulkSelectEventStateKeyNID and bulkSelectEventStateKey omit unknown entries', async ({ storage }) => {
      const k = storage.tables.eventStateKeys;
      const tx = storage.unitOfWork.autocommit;
      const alice = await k.insertEventStateKeyNID(tx, '@alice:example.org');
      expect(await k.bulkSelectEventStateKeyNID(tx, ['@x:y.org', '@alice:example.org', '', '@alice:example.org']))
        .to.deep.equal(new Map<string, number>([['@alice:example.org', alice], ['', 1]]));
      expect((await k.bulkSelectEventStateKeyNID(tx, ['@x:y.org'])).size).to.equal(0);
      expect((await k.bulkSelectEventStateKeyNID(tx, [])).size).to.equal(0);
      const unknown = asEventStateKeyNID(alice + 1_000_000);
      expect(await k.bulkSelectEventStateKey(tx, [unknown, alice, asEventStateKeyNID(0)])).to.deep.equal(new Map([[alice, '@alice:example.org']]));
      expect((await k.bulkSelectEventStateKey(tx, [])).size).to.equal(0);
    });

    test('hostile and long state keys round-trip exactly; % and _ are not wildcards; variants stay distinct', async ({ storage }) => {
      const k = storage.tables.eventStateKeys;
      const tx = storage.unitOfWork.autocommit;
      const keys = [...HOSTILE, LONG_STATE_KEY, `${LONG_STATE_KEY}!`];
      const nids = new Map<string, number>();
      for (const key of keys) nids.set(key, await k.insertEventStateKeyNID(tx, key));
      expect(new Set(nids.values()).size, 'every string gets its own NID').to.equal(keys.length);
      for (const key of keys) expect(await k.selectEventStateKeyNID(tx, key), JSON.stringify(key.slice(0, 40))).to.equal(nids.get(key));
      expect(await k.bulkSelectEventStateKeyNID(tx, keys)).to.deep.equal(nids);
      const back = await k.bulkSelectEventStateKey(tx, [...nids.values()].map(asEventStateKeyNID));
      for (const [key, nid] of nids) expect(back.get(asEventStateKeyNID(nid)) === key, JSON.stringify(key.slice(0, 40))).to.equal(true);
      await rejects(k.selectEventStateKeyNID(tx, '100x'), NotFoundError);
      await rejects(k.selectEventStateKeyNID(tx, 'underXscore'), NotFoundError);
      await rejects(k.selectEventStateKeyNID(tx, 'x'), NotFoundError);
      await rejects(k.selectEventStateKeyNID(tx, LONG_STATE_KEY.slice(0, -1)), NotFoundError);
    });
  });
}

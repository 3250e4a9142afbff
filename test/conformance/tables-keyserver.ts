import { expect } from 'chai';
import { CrossSigningKeyPurpose, InvalidInputError, OFFSET_NEWEST } from '../../src/index.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { deviceTuples, dm, fulfilled, HOSTILE_IDS, HOSTILE_USERS, LONG_DEVICE, LONG_USER, parallel, rejectsAsync } from './keys-fixtures.js';

const ALICE = '@alice:example.org';
const BOB = '@bob:remote.net';

/** Every contract of the key server tables: device keys, one-time keys, key changes, cross-signing, stale lists. */
export function keyserverTableTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Table: device_keys', (test) => {
    test('insertDeviceKeys stores what selectBatchDeviceKeys returns, sorted by device ID; display names round-trip', async ({ storage }) => {
      const t = storage.tables.deviceKeys;
      const tx = storage.unitOfWork.autocommit;
      await t.insertDeviceKeys(tx, [dm(ALICE, 'ZZZ', '{"z":1}', 3), dm(ALICE, 'AAA', '{"a":1}', 1, 'phone'), dm(BOB, 'BBB', '{"b":1}', 7)]);
      await storage.unitOfWork.transaction((inTx) => t.insertDeviceKeys(inTx, [dm(ALICE, 'MMM', '{"m":1}', 2, '')]));
      expect(deviceTuples(await t.selectBatchDeviceKeys(tx, ALICE, []))).to.deep.equal([
        [ALICE, 'AAA', '{"a":1}', 1, 'phone'], [ALICE, 'MMM', '{"m":1}', 2, ''], [ALICE, 'ZZZ', '{"z":1}', 3, null],
      ]);
      expect(deviceTuples(await t.selectBatchDeviceKeys(tx, BOB, []))).to.deep.equal([[BOB, 'BBB', '{"b":1}', 7, null]]);
      expect(await t.selectBatchDeviceKeys(tx, '@nobody:example.org', [])).to.deep.equal([]);
      // An empty insert is harmless.
      await t.insertDeviceKeys(tx, []);
    });

    test('insertDeviceKeys is an UPSERT: key JSON, stream ID and display name are replaced; the last of one call wins', async ({ storage }) => {
      const t = storage.tables.deviceKeys;
      const tx = storage.unitOfWork.autocommit;
      await t.insertDeviceKeys(tx, [dm(ALICE, 'D', '{"v":1}', 1, 'old name')]);
      await t.insertDeviceKeys(tx, [dm(ALICE, 'D', '{"v":2}', 5)]);
      expect(deviceTuples(await t.selectBatchDeviceKeys(tx, ALICE, ['D']))).to.deep.equal([[ALICE, 'D', '{"v":2}', 5, null]]);
      await t.insertDeviceKeys(tx, [dm(ALICE, 'D', '{"v":3}', 6, 'a'), dm(ALICE, 'D', '{"v":4}', 7, 'b')]);
      expect(deviceTuples(await t.selectBatchDeviceKeys(tx, ALICE, []))).to.deep.equal([[ALICE, 'D', '{"v":4}', 7, 'b']]);
    });

    test('selectBatchDeviceKeys filters by device IDs (unknown ones skipped) and leaves out deleted markers (key JSON "")', async ({ storage }) => {
      const t = storage.tables.deviceKeys;
      const tx = storage.unitOfWork.autocommit;
      await t.insertDeviceKeys(tx, [dm(ALICE, 'A', '{"a":1}', 1), dm(ALICE, 'B', '{"b":1}', 2), dm(ALICE, 'C', '', 3), dm(BOB, 'A', '{"x":1}', 1)]);
      expect((await t.selectBatchDeviceKeys(tx, ALICE, ['B', 'nope', 'C', 'B'])).map((m) => m.deviceID)).to.deep.equal(['B']);
      expect((await t.selectBatchDeviceKeys(tx, ALICE, [])).map((m) => m.deviceID)).to.deep.equal(['A', 'B']);
      expect((await t.selectBatchDeviceKeys(tx, ALICE, ['a', 'A '])).map((m) => m.deviceID)).to.deep.equal([]);
      expect(deviceTuples(await t.selectBatchDeviceKeys(tx, BOB, ['A']))).to.deep.equal([[BOB, 'A', '{"x":1}', 1, null]]);
    });

    test('selectDeviceKeysJSON fills messages in place; a missing device gets "" and 0 with no error', async ({ storage }) => {
      const t = storage.tables.deviceKeys;
      const tx = storage.unitOfWork.autocommit;
      await t.insertDeviceKeys(tx, [dm(ALICE, 'A', '{"a":1}', 4, 'laptop'), dm(ALICE, 'B', '', 5)]);
      const asked = [dm(ALICE, 'A', 'stale', 99, 'stale'), dm(ALICE, 'missing', 'stale', 99, 'stale'), dm(ALICE, 'B', 'x', 1), dm(BOB, 'A', 'x', 1)];
      await t.selectDeviceKeysJSON(tx, asked);
      expect(deviceTuples(asked)).to.deep.equal([
        [ALICE, 'A', '{"a":1}', 4, 'laptop'], [ALICE, 'missing', '', 0, null], [ALICE, 'B', '', 5, null], [BOB, 'A', '', 0, null],
      ]);
      await storage.unitOfWork.transaction((inTx) => t.selectDeviceKeysJSON(inTx, []));
    });

    test('selectMaxStreamIDForUser is 0 for an unknown user, else the user\'s highest stream ID', async ({ storage }) => {
      const t = storage.tables.deviceKeys;
      const tx = storage.unitOfWork.autocommit;
      expect(await t.selectMaxStreamIDForUser(tx, ALICE)).to.equal(0);
      await t.insertDeviceKeys(tx, [dm(ALICE, 'A', '{}', 3), dm(ALICE, 'B', '{}', 9), dm(ALICE, 'C', '', 12), dm(BOB, 'A', '{}', 50)]);
      expect(await t.selectMaxStreamIDForUser(tx, ALICE)).to.equal(12);
      expect(await t.selectMaxStreamIDForUser(tx, BOB)).to.equal(50);
      // A plain read: it reserves nothing.
      expect(await t.selectMaxStreamIDForUser(tx, ALICE)).to.equal(12);
    });

    test('reserveStreamIDs starts at 1 for a new user and above the user\'s highest stream ID otherwise', async ({ storage }) => {
      const t = storage.tables.deviceKeys;
      const first = await storage.unitOfWork.transaction(async (tx) => {
        const f = await t.reserveStreamIDs(tx, ALICE, 3);
        await t.insertDeviceKeys(tx, [dm(ALICE, 'A', '{}', f), dm(ALICE, 'B', '{}', f + 1), dm(ALICE, 'C', '{}', f + 2)]);
        return f;
      });
      expect(first).to.equal(1);
      const next = await storage.unitOfWork.transaction((tx) => t.reserveStreamIDs(tx, ALICE, 1));
      expect(next).to.be.greaterThan(3);
      await storage.unitOfWork.transaction((tx) => t.insertDeviceKeys(tx, [dm(BOB, 'X', '{}', 41)]));
      expect(await storage.unitOfWork.transaction((tx) => t.reserveStreamIDs(tx, BOB, 2))).to.be.greaterThan(41);
      await rejectsAsync(() => storage.unitOfWork.transaction((tx) => t.reserveStreamIDs(tx, ALICE, 0)), InvalidInputError);
    });

    test('concurrent reservations for one user, each written in its transaction, never overlap', async ({ storage }) => {
      const t = storage.tables.deviceKeys;
      const ranges = fulfilled(await parallel(8, (i) => storage.unitOfWork.transaction(async (tx) => {
        const f = await t.reserveStreamIDs(tx, ALICE, 2);
        await t.insertDeviceKeys(tx, [dm(ALICE, `D${i}a`, '{}', f), dm(ALICE, `D${i}b`, '{}', f + 1)]);
        return f;
      })));
      const ids = ranges.flatMap((f) => [f, f + 1]);
      expect(new Set(ids).size, `ids ${ids}`).to.equal(16);
      const stored = (await t.selectBatchDeviceKeys(storage.unitOfWork.autocommit, ALICE, [])).map((m) => m.streamID).sort((a, b) => a - b);
      expect(stored).to.deep.equal([...ids].sort((a, b) => a - b));
    });

    test('countStreamIDsForUser counts the listed stream IDs the user has a row at, each once', async ({ storage }) => {
      const t = storage.tables.deviceKeys;
      const tx = storage.unitOfWork.autocommit;
      await t.insertDeviceKeys(tx, [dm(ALICE, 'A', '{}', 1), dm(ALICE, 'B', '{}', 2), dm(ALICE, 'C', '', 3), dm(BOB, 'A', '{}', 4)]);
      // Two rows at one stream ID (remote servers send what they send) still count as one ID.
      await t.insertDeviceKeys(tx, [dm(ALICE, 'A2', '{}', 2)]);
      expect(await t.countStreamIDsForUser(tx, ALICE, [2, 9])).to.equal(1);
      expect(await t.countStreamIDsForUser(tx, ALICE, [1, 2, 3])).to.equal(3);
      expect(await t.countStreamIDsForUser(tx, ALICE, [2, 2, 2])).to.equal(1);
      expect(await t.countStreamIDsForUser(tx, ALICE, [4, 5])).to.equal(0);
      expect(await t.countStreamIDsForUser(tx, ALICE, [])).to.equal(0);
      expect(await t.countStreamIDsForUser(tx, BOB, [1, 4])).to.equal(1);
    });

    test('deleteDeviceKeys removes one device; deleteAllDeviceKeys removes the user\'s rows except those kept; no-ops when absent', async ({ storage }) => {
      const t = storage.tables.deviceKeys;
      const tx = storage.unitOfWork.autocommit;
      await t.insertDeviceKeys(tx, [dm(ALICE, 'A', '{}', 1), dm(ALICE, 'B', '{}', 2), dm(ALICE, 'C', '', 3), dm(ALICE, 'D', '{}', 4), dm(BOB, 'A', '{}', 1)]);
      await t.deleteDeviceKeys(tx, ALICE, 'A');
      await t.deleteDeviceKeys(tx, ALICE, 'A');
      await t.deleteDeviceKeys(tx, ALICE, 'nope');
      expect((await t.selectBatchDeviceKeys(tx, ALICE, [])).map((m) => m.deviceID)).to.deep.equal(['B', 'D']);
      await storage.unitOfWork.transaction((inTx) => t.deleteAllDeviceKeys(inTx, ALICE, ['D', 'unknown']));
      expect((await t.selectBatchDeviceKeys(tx, ALICE, [])).map((m) => m.deviceID)).to.deep.equal(['D']);
      // The deleted marker (C) went too.
      const probe = [dm(ALICE, 'C', 'x', 9)];
      await t.selectDeviceKeysJSON(tx, probe);
      expect(probe[0]!.streamID).to.equal(0);
      await t.deleteAllDeviceKeys(tx, ALICE);
      expect(await t.selectBatchDeviceKeys(tx, ALICE, [])).to.deep.equal([]);
      await t.deleteAllDeviceKeys(tx, ALICE);
      expect((await t.selectBatchDeviceKeys(tx, BOB, [])).map((m) => m.deviceID)).to.deep.equal(['A']);
    });

    test('hostile and 255-byte user and device IDs round-trip and stay distinct', async ({ storage }) => {
      const t = storage.tables.deviceKeys;
      const tx = storage.unitOfWork.autocommit;
      const devices = [...HOSTILE_IDS, LONG_DEVICE];
      await t.insertDeviceKeys(tx, devices.map((d, i) => dm(ALICE, d, JSON.stringify({ d }), i + 1, d)));
      const back = await t.selectBatchDeviceKeys(tx, ALICE, []);
      expect(back.map((m) => m.deviceID)).to.deep.equal([...devices].sort());
      for (const m of back) expect(JSON.parse(m.keyJSON).d).to.equal(m.deviceID);
      for (const m of back) expect(m.displayName).to.equal(m.deviceID);
      for (const u of [...HOSTILE_USERS, LONG_USER]) await t.insertDeviceKeys(tx, [dm(u, 'D', JSON.stringify({ u }), 1)]);
      for (const u of [...HOSTILE_USERS, LONG_USER]) expect(deviceTuples(await t.selectBatchDeviceKeys(tx, u, ['D'])), u).to.deep.equal([[u, 'D', JSON.stringify({ u }), 1, null]]);
      expect(await t.selectBatchDeviceKeys(tx, '@%:example.org', ['D'])).to.have.length(1);
      expect(await t.selectBatchDeviceKeys(tx, '@x%:example.org', ['D'])).to.have.length(0);
    });
  });

  group(fw, driver, 'Table: one_time_keys', (test) => {
    const keys = (userID: string, deviceID: string, entries: Record<string, string>) => ({ userID, deviceID, keyJSON: new Map(Object.entries(entries)) });

    test('insertOneTimeKeys returns the device\'s counts per algorithm after the insert', async ({ storage }) => {
      const t = storage.tables.oneTimeKeys;
      const tx = storage.unitOfWork.autocommit;
      const c1 = await t.insertOneTimeKeys(tx, keys(ALICE, 'D', { 'signed_curve25519:AAA': '{"1":1}', 'signed_curve25519:BBB': '{"2":2}', 'curve25519:CCC': '{"3":3}' }));
      expect(c1.userID).to.equal(ALICE);
      expect(c1.deviceID).to.equal('D');
      expect(c1.keyCount).to.deep.equal(new Map([['curve25519', 1], ['signed_curve25519', 2]]));
      const c2 = await storage.unitOfWork.transaction((inTx) => t.insertOneTimeKeys(inTx, keys(ALICE, 'D', { 'signed_curve25519:DDD': '{}' })));
      expect(c2.keyCount).to.deep.equal(new Map([['curve25519', 1], ['signed_curve25519', 3]]));
      // Another device's keys are counted apart.
      const other = await t.insertOneTimeKeys(tx, keys(ALICE, 'E', { 'signed_curve25519:AAA': '{}' }));
      expect(other.keyCount).to.deep.equal(new Map([['signed_curve25519', 1]]));
      expect((await t.countOneTimeKeys(tx, ALICE, 'D')).keyCount).to.deep.equal(new Map([['curve25519', 1], ['signed_curve25519', 3]]));
    });

    test('insertOneTimeKeys is an UPSERT: an existing key\'s JSON is replaced and it is counted once', async ({ storage }) => {
      const t = storage.tables.oneTimeKeys;
      const tx = storage.unitOfWork.autocommit;
      await t.insertOneTimeKeys(tx, keys(ALICE, 'D', { 'alg:K': '{"v":1}' }));
      const c = await t.insertOneTimeKeys(tx, keys(ALICE, 'D', { 'alg:K': '{"v":2}' }));
      expect(c.keyCount).to.deep.equal(new Map([['alg', 1]]));
      expect(await t.selectOneTimeKeys(tx, ALICE, 'D', ['alg:K'])).to.deep.equal(new Map([['alg:K', '{"v":2}']]));
    });

    test('the name splits at the FIRST ":" (key IDs may contain ":"); a name without ":" is an InvalidInputError and nothing is written', async ({ storage }) => {
      const t = storage.tables.oneTimeKeys;
      const tx = storage.unitOfWork.autocommit;
      await t.insertOneTimeKeys(tx, keys(ALICE, 'D', { 'alg:a:b:c': '{"colons":1}' }));
      expect((await t.countOneTimeKeys(tx, ALICE, 'D')).keyCount).to.deep.equal(new Map([['alg', 1]]));
      expect(await t.selectOneTimeKeys(tx, ALICE, 'D', ['alg:a:b:c', 'alg:a', 'alg:a:b'])).to.deep.equal(new Map([['alg:a:b:c', '{"colons":1}']]));
      expect(await t.selectAndDeleteOneTimeKey(tx, ALICE, 'D', 'alg')).to.deep.equal(['alg:a:b:c', '{"colons":1}']);
      await rejectsAsync(() => t.insertOneTimeKeys(tx, keys(ALICE, 'D', { 'alg:good': '{}', nocolon: '{}' })), InvalidInputError);
      expect((await t.countOneTimeKeys(tx, ALICE, 'D')).keyCount).to.deep.equal(new Map());
    });

    test('selectOneTimeKeys returns only the keys that exist (exact match)', async ({ storage }) => {
      const t = storage.tables.oneTimeKeys;
      const tx = storage.unitOfWork.autocommit;
      expect(await t.selectOneTimeKeys(tx, ALICE, 'D', ['alg:K'])).to.deep.equal(new Map());
      await t.insertOneTimeKeys(tx, keys(ALICE, 'D', { 'alg:K1': '{"1":1}', 'alg:K2': '{"2":2}', 'other:K1': '{"o":1}' }));
      expect(await t.selectOneTimeKeys(tx, ALICE, 'D', ['alg:K1', 'alg:K3', 'other:K1', 'nocolon', 'ALG:K1', 'alg:K%', 'alg:K1']))
        .to.deep.equal(new Map([['alg:K1', '{"1":1}'], ['other:K1', '{"o":1}']]));
      expect(await t.selectOneTimeKeys(tx, ALICE, 'E', ['alg:K1'])).to.deep.equal(new Map());
      expect(await t.selectOneTimeKeys(tx, BOB, 'D', ['alg:K1'])).to.deep.equal(new Map());
      expect(await t.selectOneTimeKeys(tx, ALICE, 'D', [])).to.deep.equal(new Map());
    });

    test('countOneTimeKeys is an empty map for a device with none', async ({ storage }) => {
      const t = storage.tables.oneTimeKeys;
      const tx = storage.unitOfWork.autocommit;
      expect(await t.countOneTimeKeys(tx, ALICE, 'D')).to.deep.equal({ userID: ALICE, deviceID: 'D', keyCount: new Map() });
    });

    test('selectAndDeleteOneTimeKey hands out each key once, then null; other algorithms and devices are untouched', async ({ storage }) => {
      const t = storage.tables.oneTimeKeys;
      const tx = storage.unitOfWork.autocommit;
      expect(await t.selectAndDeleteOneTimeKey(tx, ALICE, 'D', 'alg')).to.equal(null);
      const all = { 'alg:K1': '{"1":1}', 'alg:K2': '{"2":2}', 'alg:K3': '{"3":3}' };
      await t.insertOneTimeKeys(tx, keys(ALICE, 'D', { ...all, 'other:K1': '{"o":1}' }));
      await t.insertOneTimeKeys(tx, keys(ALICE, 'E', { 'alg:K1': '{"e":1}' }));
      const got = new Map<string, string>();
      for (let i = 0; i < 3; i++) {
        const claimed = await storage.unitOfWork.transaction((inTx) => t.selectAndDeleteOneTimeKey(inTx, ALICE, 'D', 'alg'));
        expect(claimed).to.not.equal(null);
        got.set(claimed![0], claimed![1]);
      }
      expect(got).to.deep.equal(new Map(Object.entries(all)));
      expect(await t.selectAndDeleteOneTimeKey(tx, ALICE, 'D', 'alg')).to.equal(null);
      expect((await t.countOneTimeKeys(tx, ALICE, 'D')).keyCount).to.deep.equal(new Map([['other', 1]]));
      expect((await t.countOneTimeKeys(tx, ALICE, 'E')).keyCount).to.deep.equal(new Map([['alg', 1]]));
    });

    test('concurrent selectAndDeleteOneTimeKey calls (no transaction) never hand out one key twice', async ({ storage }) => {
      const t = storage.tables.oneTimeKeys;
      const tx = storage.unitOfWork.autocommit;
      await t.insertOneTimeKeys(tx, keys(ALICE, 'D', Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`alg:K${i}`, `{"i":${i}}`]))));
      const results = fulfilled(await parallel(25, () => t.selectAndDeleteOneTimeKey(tx, ALICE, 'D', 'alg')));
      const won = results.filter((r) => r !== null).map((r) => r![0]);
      expect(won).to.have.length(10);
      expect(new Set(won).size).to.equal(10);
      expect((await t.countOneTimeKeys(tx, ALICE, 'D')).keyCount).to.deep.equal(new Map());
    });

    test('hostile algorithms, key IDs and device IDs ("__proto__" included) round-trip', async ({ storage }) => {
      const t = storage.tables.oneTimeKeys;
      const tx = storage.unitOfWork.autocommit;
      const algs = HOSTILE_IDS.filter((s) => !s.includes(':'));
      const entries = algs.map((a, i) => [`${a}:${HOSTILE_IDS[i % HOSTILE_IDS.length]}`, JSON.stringify({ a })] as const);
      const c = await t.insertOneTimeKeys(tx, { userID: ALICE, deviceID: '__proto__', keyJSON: new Map(entries) });
      expect([...c.keyCount.keys()].sort()).to.deep.equal([...algs].sort());
      expect(await t.selectOneTimeKeys(tx, ALICE, '__proto__', entries.map(([n]) => n))).to.deep.equal(new Map(entries));
      expect(await t.selectAndDeleteOneTimeKey(tx, ALICE, '__proto__', '__proto__')).to.deep.equal(entries.find(([n]) => n.startsWith('__proto__:')));
      expect(await t.selectAndDeleteOneTimeKey(tx, ALICE, '__proto__', '%')).to.deep.equal(entries.find(([n]) => n.startsWith('%:')));
      expect(await t.selectAndDeleteOneTimeKey(tx, ALICE, '__proto__', '_')).to.deep.equal(entries.find(([n]) => n.startsWith('_:')));
    });
  });

  group(fw, driver, 'Table: key_changes', (test) => {
    test('insertKeyChange returns increasing change IDs; a user\'s new change moves the user to the new ID', async ({ storage }) => {
      const t = storage.tables.keyChanges;
      const tx = storage.unitOfWork.autocommit;
      const a1 = await t.insertKeyChange(tx, ALICE);
      const b1 = await t.insertKeyChange(tx, BOB);
      const a2 = await storage.unitOfWork.transaction((inTx) => t.insertKeyChange(inTx, ALICE));
      expect(a1).to.be.greaterThan(0);
      expect(b1).to.be.greaterThan(a1);
      expect(a2).to.be.greaterThan(b1);
      // ALICE's latest change is a2 only: (a1, b1] holds BOB alone.
      expect(await t.selectKeyChanges(tx, a1, b1)).to.deep.equal({ userIDs: [BOB], latestOffset: b1 });
      expect(await t.selectKeyChanges(tx, 0, OFFSET_NEWEST)).to.deep.equal({ userIDs: [ALICE, BOB].sort(), latestOffset: a2 });
    });

    test('selectKeyChanges: lower bound exclusive, upper inclusive, OFFSET_NEWEST unbounded, sorted, one entry per user', async ({ storage }) => {
      const t = storage.tables.keyChanges;
      const tx = storage.unitOfWork.autocommit;
      const users = ['@c:example.org', '@a:example.org', '@d:example.org', '@b:example.org'];
      const ids: number[] = [];
      for (const u of users) ids.push(await t.insertKeyChange(tx, u));
      const [c, a, d, b] = ids as [number, number, number, number];
      expect(await t.selectKeyChanges(tx, c, d)).to.deep.equal({ userIDs: ['@a:example.org', '@d:example.org'], latestOffset: d });
      expect(await t.selectKeyChanges(tx, c - 1, c)).to.deep.equal({ userIDs: ['@c:example.org'], latestOffset: c });
      expect(await t.selectKeyChanges(tx, a, OFFSET_NEWEST)).to.deep.equal({ userIDs: ['@b:example.org', '@d:example.org'], latestOffset: b });
      expect(await t.selectKeyChanges(tx, 0, OFFSET_NEWEST)).to.deep.equal({ userIDs: [...users].sort(), latestOffset: b });
    });

    test('selectKeyChanges with nothing in range returns no users and fromOffset as the latest', async ({ storage }) => {
      const t = storage.tables.keyChanges;
      const tx = storage.unitOfWork.autocommit;
      expect(await t.selectKeyChanges(tx, 0, OFFSET_NEWEST)).to.deep.equal({ userIDs: [], latestOffset: 0 });
      const id = await t.insertKeyChange(tx, ALICE);
      expect(await t.selectKeyChanges(tx, id, OFFSET_NEWEST)).to.deep.equal({ userIDs: [], latestOffset: id });
      expect(await t.selectKeyChanges(tx, id + 5, id + 10)).to.deep.equal({ userIDs: [], latestOffset: id + 5 });
      expect(await t.selectKeyChanges(tx, 0, id - 1)).to.deep.equal({ userIDs: [], latestOffset: 0 });
    });

    test('concurrent insertKeyChange calls get distinct IDs and every user is listed once', async ({ storage }) => {
      const t = storage.tables.keyChanges;
      const tx = storage.unitOfWork.autocommit;
      const users = Array.from({ length: 20 }, (_, i) => `@u${String(i).padStart(2, '0')}:example.org`);
      const ids = fulfilled(await parallel(40, (i) => t.insertKeyChange(tx, users[i % 20]!)));
      expect(new Set(ids).size).to.equal(40);
      const all = await t.selectKeyChanges(tx, 0, OFFSET_NEWEST);
      expect(all.userIDs).to.deep.equal(users);
      expect(all.latestOffset).to.equal(Math.max(...ids));
    });

    test('hostile user IDs round-trip', async ({ storage }) => {
      const t = storage.tables.keyChanges;
      const tx = storage.unitOfWork.autocommit;
      for (const u of [...HOSTILE_USERS, LONG_USER]) await t.insertKeyChange(tx, u);
      expect((await t.selectKeyChanges(tx, 0, OFFSET_NEWEST)).userIDs).to.deep.equal([...HOSTILE_USERS, LONG_USER].sort());
    });
  });

  group(fw, driver, 'Table: cross_signing_keys and cross_signing_sigs', (test) => {
    test('upsertCrossSigningKeysForUser stores key data by purpose; a second upsert replaces it; empty map if none', async ({ storage }) => {
      const t = storage.tables.crossSigningKeys;
      const tx = storage.unitOfWork.autocommit;
      expect(await t.selectCrossSigningKeysForUser(tx, ALICE)).to.deep.equal(new Map());
      await t.upsertCrossSigningKeysForUser(tx, ALICE, CrossSigningKeyPurpose.userSigning, 'dXNlcg');
      await t.upsertCrossSigningKeysForUser(tx, ALICE, CrossSigningKeyPurpose.master, 'bWFzdGVy');
      await storage.unitOfWork.transaction((inTx) => t.upsertCrossSigningKeysForUser(inTx, ALICE, CrossSigningKeyPurpose.selfSigning, 'c2VsZg'));
      const got = await t.selectCrossSigningKeysForUser(tx, ALICE);
      expect([...got]).to.deep.equal([[1, 'bWFzdGVy'], [2, 'c2VsZg'], [3, 'dXNlcg']]);
      await t.upsertCrossSigningKeysForUser(tx, ALICE, CrossSigningKeyPurpose.master, 'bmV3');
      expect((await t.selectCrossSigningKeysForUser(tx, ALICE)).get(1)).to.equal('bmV3');
      expect(await t.selectCrossSigningKeysForUser(tx, BOB)).to.deep.equal(new Map());
    });

    test('an unknown purpose is an InvalidInputError, as a rejection', async ({ storage }) => {
      const t = storage.tables.crossSigningKeys;
      const tx = storage.unitOfWork.autocommit;
      for (const bad of [0, 4, -1, 1.5]) {
        await rejectsAsync(() => t.upsertCrossSigningKeysForUser(tx, ALICE, bad as CrossSigningKeyPurpose, 'a2V5'), InvalidInputError);
      }
      expect(await t.selectCrossSigningKeysForUser(tx, ALICE)).to.deep.equal(new Map());
    });

    test('signatures: select groups by origin user, upsert keeps one per (origin user, target key), delete removes the target\'s', async ({ storage }) => {
      const t = storage.tables.crossSigningSigs;
      const tx = storage.unitOfWork.autocommit;
      expect(await t.selectCrossSigningSigsForTarget(tx, ALICE, 'ed25519:K')).to.deep.equal(new Map());
      await t.upsertCrossSigningSigsForTarget(tx, ALICE, 'ed25519:SELF', ALICE, 'ed25519:K', 'c2lnMQ');
      await t.upsertCrossSigningSigsForTarget(tx, BOB, 'ed25519:BOBKEY', ALICE, 'ed25519:K', 'c2lnMg');
      await storage.unitOfWork.transaction((inTx) => t.upsertCrossSigningSigsForTarget(inTx, ALICE, 'ed25519:SELF', ALICE, 'DEVICE', 'c2lnMw'));
      const sigs = await t.selectCrossSigningSigsForTarget(tx, ALICE, 'ed25519:K');
      expect(sigs).to.deep.equal(new Map([[ALICE, new Map([['ed25519:SELF', 'c2lnMQ']])], [BOB, new Map([['ed25519:BOBKEY', 'c2lnMg']])]]));
      expect([...sigs.keys()]).to.deep.equal([ALICE, BOB].sort());
      // The same origin user signing again (even with another key) replaces its signature.
      await t.upsertCrossSigningSigsForTarget(tx, ALICE, 'ed25519:SELF2', ALICE, 'ed25519:K', 'c2lnNA');
      expect((await t.selectCrossSigningSigsForTarget(tx, ALICE, 'ed25519:K')).get(ALICE)).to.deep.equal(new Map([['ed25519:SELF2', 'c2lnNA']]));
      await t.deleteCrossSigningSigsForTarget(tx, ALICE, 'ed25519:K');
      expect(await t.selectCrossSigningSigsForTarget(tx, ALICE, 'ed25519:K')).to.deep.equal(new Map());
      expect(await t.selectCrossSigningSigsForTarget(tx, ALICE, 'DEVICE')).to.deep.equal(new Map([[ALICE, new Map([['ed25519:SELF', 'c2lnMw']])]]));
      await t.deleteCrossSigningSigsForTarget(tx, ALICE, 'ed25519:K');
      await t.deleteCrossSigningSigsForTarget(tx, BOB, 'DEVICE');
      expect((await t.selectCrossSigningSigsForTarget(tx, ALICE, 'DEVICE')).size).to.equal(1);
    });

    test('hostile user and key IDs round-trip in keys and signatures', async ({ storage }) => {
      const keysT = storage.tables.crossSigningKeys;
      const sigsT = storage.tables.crossSigningSigs;
      const tx = storage.unitOfWork.autocommit;
      for (const u of HOSTILE_USERS) await keysT.upsertCrossSigningKeysForUser(tx, u, CrossSigningKeyPurpose.master, 'a2V5');
      for (const u of HOSTILE_USERS) expect([...(await keysT.selectCrossSigningKeysForUser(tx, u))], u).to.deep.equal([[1, 'a2V5']]);
      for (const [i, k] of HOSTILE_IDS.entries()) await sigsT.upsertCrossSigningSigsForTarget(tx, HOSTILE_USERS[i]!, k, ALICE, k, `c2ln${i}`);
      for (const [i, k] of HOSTILE_IDS.entries()) {
        expect(await sigsT.selectCrossSigningSigsForTarget(tx, ALICE, k), k).to.deep.equal(new Map([[HOSTILE_USERS[i]!, new Map([[k, `c2ln${i}`]])]]));
      }
    });
  });

  group(fw, driver, 'Table: stale_device_lists', (test) => {
    test('insertStaleDeviceList upserts the flag; select lists stale users of the domains, or of all domains, sorted', async ({ storage }) => {
      const t = storage.tables.staleDeviceLists;
      const tx = storage.unitOfWork.autocommit;
      expect(await t.selectUserIDsWithStaleDeviceLists(tx, [])).to.deep.equal([]);
      await t.insertStaleDeviceList(tx, '@z:remote.net', true);
      await t.insertStaleDeviceList(tx, '@a:remote.net', true);
      await t.insertStaleDeviceList(tx, '@m:other.org', true);
      await storage.unitOfWork.transaction((inTx) => t.insertStaleDeviceList(inTx, '@fresh:remote.net', false));
      await t.insertStaleDeviceList(tx, '@p:host.org:8448', true);
      expect(await t.selectUserIDsWithStaleDeviceLists(tx, [])).to.deep.equal(['@a:remote.net', '@m:other.org', '@p:host.org:8448', '@z:remote.net']);
      expect(await t.selectUserIDsWithStaleDeviceLists(tx, ['remote.net'])).to.deep.equal(['@a:remote.net', '@z:remote.net']);
      expect(await t.selectUserIDsWithStaleDeviceLists(tx, ['other.org', 'remote.net', 'nowhere'])).to.deep.equal(['@a:remote.net', '@m:other.org', '@z:remote.net']);
      expect(await t.selectUserIDsWithStaleDeviceLists(tx, ['host.org:8448'])).to.deep.equal(['@p:host.org:8448']);
      expect(await t.selectUserIDsWithStaleDeviceLists(tx, ['host.org', 'REMOTE.net', '%'])).to.deep.equal([]);
      await t.insertStaleDeviceList(tx, '@a:remote.net', false);
      await t.insertStaleDeviceList(tx, '@fresh:remote.net', true);
      expect(await t.selectUserIDsWithStaleDeviceLists(tx, ['remote.net'])).to.deep.equal(['@fresh:remote.net', '@z:remote.net']);
    });

    test('a user ID without a server part is an InvalidInputError, as a rejection', async ({ storage }) => {
      const t = storage.tables.staleDeviceLists;
      const tx = storage.unitOfWork.autocommit;
      for (const bad of ['@nocolon', 'alice:example.org', '@:example.org', '@alice:']) {
        await rejectsAsync(() => t.insertStaleDeviceList(tx, bad, true), InvalidInputError);
      }
      expect(await t.selectUserIDsWithStaleDeviceLists(tx, [])).to.deep.equal([]);
    });

    test('deleteStaleDeviceLists removes the users listed; no-op for the others', async ({ storage }) => {
      const t = storage.tables.staleDeviceLists;
      const tx = storage.unitOfWork.autocommit;
      for (const u of ['@a:remote.net', '@b:remote.net', '@c:remote.net']) await t.insertStaleDeviceList(tx, u, true);
      await t.deleteStaleDeviceLists(tx, ['@a:remote.net', '@nobody:remote.net']);
      await storage.unitOfWork.transaction((inTx) => t.deleteStaleDeviceLists(inTx, []));
      expect(await t.selectUserIDsWithStaleDeviceLists(tx, [])).to.deep.equal(['@b:remote.net', '@c:remote.net']);
      await t.deleteStaleDeviceLists(tx, ['@b:remote.net', '@c:remote.net']);
      expect(await t.selectUserIDsWithStaleDeviceLists(tx, [])).to.deep.equal([]);
    });

    test('hostile user IDs round-trip', async ({ storage }) => {
      const t = storage.tables.staleDeviceLists;
      const tx = storage.unitOfWork.autocommit;
      for (const u of HOSTILE_USERS) await t.insertStaleDeviceList(tx, u, true);
      // The domain is what follows the FIRST ":" (a localpart cannot hold one).
      const onExampleOrg = HOSTILE_USERS.filter((u) => u.slice(u.indexOf(':') + 1) === 'example.org');
      expect(onExampleOrg.length).to.be.greaterThan(15);
      expect(await t.selectUserIDsWithStaleDeviceLists(tx, ['example.org'])).to.deep.equal(onExampleOrg.sort());
      expect(await t.selectUserIDsWithStaleDeviceLists(tx, [])).to.deep.equal([...HOSTILE_USERS].sort());
    });
  });
}

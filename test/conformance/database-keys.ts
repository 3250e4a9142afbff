import { expect } from 'chai';
import {
  CrossSigningKeyPurpose, InvalidInputError, OFFSET_NEWEST, type DeviceMessage, type Storage,
} from '../../src/index.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import {
  checkFixtureLengths, deviceTuples, dm, fulfilled, HOSTILE_IDS, HOSTILE_USERS, LONG_DEVICE, LONG_USER, parallel, rejectsAsync, TOO_LONG_USER,
} from './keys-fixtures.js';

const ALICE = '@alice:example.org';
const BOB = '@bob:remote.net';
const OTK = 'signed_curve25519';

const otks = (userID: string, deviceID: string, n: number, prefix = 'K') => ({
  userID, deviceID, keyJSON: new Map(Array.from({ length: n }, (_, i) => [`${OTK}:${prefix}${i}`, JSON.stringify({ key: `${prefix}${i}` })])),
});

const claim = (userID: string, deviceID: string, algorithm = OTK) => new Map([[userID, new Map([[deviceID, algorithm]])]]);

/** The user IDs every key server method refuses, and why. */
const BAD_USERS: readonly [unknown, RegExp][] = [
  ['alice:example.org', /must start with "@"/],
  ['@alice', /user ID/],
  ['@:example.org', /user ID/],
  ['@alice:', /user ID/],
  ['', /must not be empty/],
  ['@a\u0000b:example.org', /NUL/],
  [TOO_LONG_USER, /256 bytes/],
  [42, /must be a string/],
  [null, /must be a string/],
];

async function deviceIDsOf(storage: Storage, userID: string): Promise<string[]> {
  return (await storage.keys.deviceKeysForUser(userID, [])).map((m) => m.deviceID);
}

/** The key server's Database: every method's contract, the write orders, concurrency and input checks. */
export function databaseKeyTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Database: key server device keys', (test) => {
    test('storeLocalDeviceKeys gives each user stream IDs max+1 upward in input order, and writes them back to the messages', async ({ storage }) => {
      const db = storage.keys;
      const first = [dm(ALICE, 'A', '{"a":1}', 999, 'phone'), dm(BOB, 'X', '{"x":1}'), dm(ALICE, 'B', '{"b":1}'), dm(ALICE, 'C', '{"c":1}')];
      await db.storeLocalDeviceKeys(first);
      expect(first.map((m) => m.streamID)).to.deep.equal([1, 1, 2, 3]);
      const second = [dm(ALICE, 'D', '{"d":1}'), dm(ALICE, 'A', '{"a":2}', 0, 'phone 2')];
      await db.storeLocalDeviceKeys(second);
      expect(second.map((m) => m.streamID)).to.deep.equal([4, 5]);
      expect(deviceTuples(await db.deviceKeysForUser(ALICE, []))).to.deep.equal([
        [ALICE, 'A', '{"a":2}', 5, 'phone 2'], [ALICE, 'B', '{"b":1}', 2, null], [ALICE, 'C', '{"c":1}', 3, null], [ALICE, 'D', '{"d":1}', 4, null],
      ]);
      expect(deviceTuples(await db.deviceKeysForUser(BOB, []))).to.deep.equal([[BOB, 'X', '{"x":1}', 1, null]]);
      await db.storeLocalDeviceKeys([]);
    });

    test('storeLocalDeviceKeys with one bad message writes nothing and leaves the messages alone', async ({ storage }) => {
      const db = storage.keys;
      const msgs = [dm(ALICE, 'A', '{}'), dm(ALICE, '', '{}'), dm(ALICE, 'C', '{}')];
      await rejectsAsync(() => db.storeLocalDeviceKeys(msgs), InvalidInputError, /messages\[1\]\.deviceID/);
      expect(msgs.map((m) => m.streamID)).to.deep.equal([0, 0, 0]);
      expect(await db.deviceKeysForUser(ALICE, [])).to.deep.equal([]);
      await rejectsAsync(() => db.storeLocalDeviceKeys([dm(ALICE, 'A', '{}'), dm('@x', 'B', '{}')]), InvalidInputError, /messages\[1\]\.userID/);
      await rejectsAsync(() => db.storeLocalDeviceKeys([dm(ALICE, 'A', 'a\u0000b')]), InvalidInputError, /keyJSON/);
      await rejectsAsync(() => db.storeLocalDeviceKeys([dm(ALICE, 'A', 'x'.repeat(70_000))]), InvalidInputError, /keyJSON/);
      await rejectsAsync(() => db.storeLocalDeviceKeys([{ ...dm(ALICE, 'A', '{}'), displayName: 7 as unknown as string }]), InvalidInputError, /displayName/);
      await rejectsAsync(() => db.storeLocalDeviceKeys('nope' as unknown as DeviceMessage[]), InvalidInputError);
      expect(await db.deviceKeysForUser(ALICE, [])).to.deep.equal([]);
    });

    test('concurrent storeLocalDeviceKeys for one user yield distinct, gapless stream IDs, consecutive within each call', async ({ storage }) => {
      const db = storage.keys;
      // Uploads of 1 to 3 devices each, for one user, plus a second user interleaved.
      const batches = Array.from({ length: 12 }, (_, i) => Array.from({ length: (i % 3) + 1 }, (__, j) => dm(ALICE, `D${i}-${j}`, `{"i":${i},"j":${j}}`)));
      const others = Array.from({ length: 5 }, (_, i) => [dm(BOB, `B${i}`, '{}')]);
      fulfilled(await Promise.allSettled([...batches, ...others].map((b) => db.storeLocalDeviceKeys(b))));
      const ids = batches.flat().map((m) => m.streamID);
      expect(new Set(ids).size, `stream IDs ${ids}`).to.equal(ids.length);
      expect([...ids].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: ids.length }, (_, i) => i + 1));
      for (const b of batches) expect(b.map((m) => m.streamID - b[0]!.streamID)).to.deep.equal(b.map((_, j) => j));
      expect(others.flat().map((m) => m.streamID).sort((a, b) => a - b)).to.deep.equal([1, 2, 3, 4, 5]);
      // What is stored is what was written back.
      const stored = new Map((await db.deviceKeysForUser(ALICE, [])).map((m) => [m.deviceID, m.streamID]));
      for (const m of batches.flat()) expect(stored.get(m.deviceID), m.deviceID).to.equal(m.streamID);
    });

    test('storeRemoteDeviceKeys keeps the stream IDs given and clears the listed users\' other devices', async ({ storage }) => {
      const db = storage.keys;
      await db.storeRemoteDeviceKeys([dm(BOB, 'OLD1', '{}', 10), dm(BOB, 'KEEP', '{"v":1}', 11), dm('@carol:remote.net', 'C', '{}', 3)], []);
      expect(await deviceIDsOf(storage, BOB)).to.deep.equal(['KEEP', 'OLD1']);
      await db.storeRemoteDeviceKeys([dm(BOB, 'KEEP', '{"v":2}', 20), dm(BOB, 'NEW', '{}', 21, 'new one')], [BOB, '@dave:remote.net']);
      expect(deviceTuples(await db.deviceKeysForUser(BOB, []))).to.deep.equal([[BOB, 'KEEP', '{"v":2}', 20, null], [BOB, 'NEW', '{}', 21, 'new one']]);
      // Users not listed keep their devices; a listed user with no message is cleared.
      expect(await deviceIDsOf(storage, '@carol:remote.net')).to.deep.equal(['C']);
      await db.storeRemoteDeviceKeys([], ['@carol:remote.net']);
      expect(await deviceIDsOf(storage, '@carol:remote.net')).to.deep.equal([]);
      // Without clearing, an update leaves the other devices.
      await db.storeRemoteDeviceKeys([dm(BOB, 'THIRD', '{}', 22)], []);
      expect(await deviceIDsOf(storage, BOB)).to.deep.equal(['KEEP', 'NEW', 'THIRD']);
      await rejectsAsync(() => db.storeRemoteDeviceKeys([dm(BOB, 'X', '{}', -1)], []), InvalidInputError, /streamID/);
      await rejectsAsync(() => db.storeRemoteDeviceKeys([dm(BOB, 'X', '{}', 1.5)], []), InvalidInputError, /streamID/);
      await rejectsAsync(() => db.storeRemoteDeviceKeys([dm(BOB, 'X', '{}', 1)], ['bob']), InvalidInputError, /users to clear\[0\]/);
      expect(await deviceIDsOf(storage, BOB)).to.deep.equal(['KEEP', 'NEW', 'THIRD']);
    });

    test('deviceKeysJSON fills the messages in place; unknown devices get "" and 0', async ({ storage }) => {
      const db = storage.keys;
      await db.storeLocalDeviceKeys([dm(ALICE, 'A', '{"a":1}', 0, 'laptop'), dm(ALICE, 'B', '{"b":1}')]);
      const asked = [dm(ALICE, 'B', ''), dm(ALICE, 'nope', 'stale', 7, 'stale'), dm(ALICE, 'A', '')];
      await db.deviceKeysJSON(asked);
      expect(deviceTuples(asked)).to.deep.equal([[ALICE, 'B', '{"b":1}', 2, null], [ALICE, 'nope', '', 0, null], [ALICE, 'A', '{"a":1}', 1, 'laptop']]);
      await db.deviceKeysJSON([]);
      await rejectsAsync(() => db.deviceKeysJSON([dm('nobody', 'A', '')]), InvalidInputError, /messages\[0\]\.userID/);
    });

    test('prevIDsExists: true iff the user has a device at every listed stream ID; true for an empty list', async ({ storage }) => {
      const db = storage.keys;
      expect(await db.prevIDsExists(ALICE, [])).to.equal(true);
      expect(await db.prevIDsExists(ALICE, [1])).to.equal(false);
      await db.storeLocalDeviceKeys([dm(ALICE, 'A', '{}'), dm(ALICE, 'B', '{}'), dm(ALICE, 'C', '{}')]);
      expect(await db.prevIDsExists(ALICE, [1, 3])).to.equal(true);
      expect(await db.prevIDsExists(ALICE, [3, 3, 1])).to.equal(true);
      expect(await db.prevIDsExists(ALICE, [1, 4])).to.equal(false);
      expect(await db.prevIDsExists(BOB, [1])).to.equal(false);
      // Two of a remote user's devices at one stream ID do not stand in for a missing one.
      await db.storeRemoteDeviceKeys([dm(BOB, 'X', '{}', 5), dm(BOB, 'Y', '{}', 5)], []);
      expect(await db.prevIDsExists(BOB, [5])).to.equal(true);
      expect(await db.prevIDsExists(BOB, [5, 6])).to.equal(false);
      await rejectsAsync(() => db.prevIDsExists(ALICE, [-1]), InvalidInputError);
    });

    test('deviceKeysForUser filters by device IDs, sorted, skipping unknown and deleted devices', async ({ storage }) => {
      const db = storage.keys;
      await db.storeLocalDeviceKeys([dm(ALICE, 'C', '{}'), dm(ALICE, 'A', '{}'), dm(ALICE, 'B', ''), dm(ALICE, 'D', '{}')]);
      expect(await deviceIDsOf(storage, ALICE)).to.deep.equal(['A', 'C', 'D']);
      expect((await db.deviceKeysForUser(ALICE, ['D', 'B', 'A', 'Z'])).map((m) => m.deviceID)).to.deep.equal(['A', 'D']);
      expect(await db.deviceKeysForUser(BOB, [])).to.deep.equal([]);
      await rejectsAsync(() => db.deviceKeysForUser(ALICE, ['ok', '']), InvalidInputError, /device IDs\[1\]/);
    });

    test('deviceKeysForUser with includeEmpty also gives the devices whose keys are empty', async ({ storage }) => {
      const db = storage.keys;
      await db.storeLocalDeviceKeys([dm(ALICE, 'C', '{}'), dm(ALICE, 'A', '{"a":1}'), dm(ALICE, 'D', '{}')]);
      await db.storeLocalDeviceKeys([dm(ALICE, 'B', '{"b":1}')]);
      await db.storeLocalDeviceKeys([dm(ALICE, 'B', '')]);
      const ids = (list: { deviceID: string }[]) => list.map((m) => m.deviceID);
      expect(ids(await db.deviceKeysForUser(ALICE, []))).to.deep.equal(['A', 'C', 'D']);
      expect(ids(await db.deviceKeysForUser(ALICE, [], false))).to.deep.equal(['A', 'C', 'D']);
      const all = await db.deviceKeysForUser(ALICE, [], true);
      expect(ids(all)).to.deep.equal(['A', 'B', 'C', 'D']);
      expect(all.find((m) => m.deviceID === 'B')!.keyJSON).to.equal('');
      expect(ids(await db.deviceKeysForUser(ALICE, ['B', 'D', 'Z'], true))).to.deep.equal(['B', 'D']);
      expect(ids(await db.deviceKeysForUser(ALICE, ['B', 'D', 'Z']))).to.deep.equal(['D']);
    });

    test('deleteDeviceKeys deletes the devices and the signatures of them, nothing else', async ({ storage }) => {
      const db = storage.keys;
      await db.storeLocalDeviceKeys([dm(ALICE, 'A', '{}'), dm(ALICE, 'B', '{}'), dm(ALICE, 'C', '{}')]);
      await db.storeCrossSigningSigsForTarget(ALICE, 'ed25519:SELF', ALICE, 'A', 'c2lnQQ');
      await db.storeCrossSigningSigsForTarget(ALICE, 'ed25519:SELF', ALICE, 'B', 'c2lnQg');
      await db.storeCrossSigningSigsForTarget(BOB, 'ed25519:BOB', BOB, 'A', 'Ym9i');
      await db.deleteDeviceKeys(ALICE, ['A', 'missing', 'A']);
      expect(await deviceIDsOf(storage, ALICE)).to.deep.equal(['B', 'C']);
      expect(await db.crossSigningSigsForTarget(ALICE, 'A')).to.deep.equal(new Map());
      expect(await db.crossSigningSigsForTarget(ALICE, 'B')).to.deep.equal(new Map([[ALICE, new Map([['ed25519:SELF', 'c2lnQg']])]]));
      expect(await db.crossSigningSigsForTarget(BOB, 'A')).to.deep.equal(new Map([[BOB, new Map([['ed25519:BOB', 'Ym9i']])]]));
      await db.deleteDeviceKeys(ALICE, []);
      await db.deleteDeviceKeys(ALICE, ['B', 'C']);
      expect(await deviceIDsOf(storage, ALICE)).to.deep.equal([]);
    });

    test('hostile and 255-byte user and device IDs round-trip through store, read and delete', async ({ storage }) => {
      checkFixtureLengths();
      const db = storage.keys;
      const devices = [...HOSTILE_IDS, LONG_DEVICE];
      const users = [...HOSTILE_USERS, LONG_USER];
      for (const u of users) await db.storeLocalDeviceKeys(devices.map((d) => dm(u, d, JSON.stringify({ u, d }), 0, d)));
      for (const u of users) {
        const back = await db.deviceKeysForUser(u, []);
        expect(back.map((m) => m.deviceID), u).to.deep.equal([...devices].sort());
        for (const m of back) expect(JSON.parse(m.keyJSON)).to.deep.equal({ u, d: m.deviceID });
        expect(back.map((m) => m.streamID).sort((a, b) => a - b)).to.deep.equal(devices.map((_, i) => i + 1));
      }
      await db.deleteDeviceKeys(HOSTILE_USERS[0]!, ['%', '_', '__proto__']);
      expect(await deviceIDsOf(storage, HOSTILE_USERS[0]!)).to.have.length(devices.length - 3);
      expect(await deviceIDsOf(storage, HOSTILE_USERS[1]!)).to.have.length(devices.length);
    });

    test('bad user IDs are InvalidInputErrors naming the field, as rejections, for every device-key method', async ({ storage }) => {
      const db = storage.keys;
      for (const [bad, pattern] of BAD_USERS) {
        const u = bad as string;
        await rejectsAsync(() => db.storeLocalDeviceKeys([dm(u, 'A', '{}')]), InvalidInputError, pattern);
        await rejectsAsync(() => db.storeRemoteDeviceKeys([dm(u, 'A', '{}', 1)], []), InvalidInputError, pattern);
        await rejectsAsync(() => db.deviceKeysForUser(u, []), InvalidInputError, pattern);
        await rejectsAsync(() => db.prevIDsExists(u, []), InvalidInputError, pattern);
        await rejectsAsync(() => db.deleteDeviceKeys(u, ['A']), InvalidInputError, pattern);
      }
      for (const bad of ['', 'a\u0000b', 'd'.repeat(256), 5]) {
        await rejectsAsync(() => db.storeLocalDeviceKeys([dm(ALICE, bad as string, '{}')]), InvalidInputError, /deviceID/);
        await rejectsAsync(() => db.deleteDeviceKeys(ALICE, [bad as string]), InvalidInputError, /device IDs\[0\]/);
      }
    });
  });

  group(fw, driver, 'Database: key server one-time keys', (test) => {
    test('storeOneTimeKeys returns counts; oneTimeKeysCount and existingOneTimeKeys read them back', async ({ storage }) => {
      const db = storage.keys;
      const c = await db.storeOneTimeKeys({ userID: ALICE, deviceID: 'D', keyJSON: new Map([[`${OTK}:A`, '{"a":1}'], [`${OTK}:B`, '{"b":1}'], ['curve25519:C', '{"c":1}']]) });
      expect(c).to.deep.equal({ userID: ALICE, deviceID: 'D', keyCount: new Map([['curve25519', 1], [OTK, 2]]) });
      expect(await db.oneTimeKeysCount(ALICE, 'D')).to.deep.equal(c);
      expect(await db.oneTimeKeysCount(ALICE, 'other')).to.deep.equal({ userID: ALICE, deviceID: 'other', keyCount: new Map() });
      expect(await db.existingOneTimeKeys(ALICE, 'D', [`${OTK}:A`, `${OTK}:Z`, 'curve25519:C'])).to.deep.equal(new Map([[`${OTK}:A`, '{"a":1}'], ['curve25519:C', '{"c":1}']]));
      expect(await db.existingOneTimeKeys(ALICE, 'D', [])).to.deep.equal(new Map());
      // Storing an existing key replaces its JSON.
      const again = await db.storeOneTimeKeys({ userID: ALICE, deviceID: 'D', keyJSON: new Map([[`${OTK}:A`, '{"a":2}']]) });
      expect(again.keyCount.get(OTK)).to.equal(2);
      expect(await db.existingOneTimeKeys(ALICE, 'D', [`${OTK}:A`])).to.deep.equal(new Map([[`${OTK}:A`, '{"a":2}']]));
    });

    test('one-time key names are checked before anything is written', async ({ storage }) => {
      const db = storage.keys;
      const bad = ['nocolon', ':keyonly', `${OTK}:`, `a\u0000b:K`, `${'a'.repeat(256)}:K`, `${OTK}:${'k'.repeat(256)}`];
      for (const name of bad) {
        await rejectsAsync(() => db.storeOneTimeKeys({ userID: ALICE, deviceID: 'D', keyJSON: new Map([[`${OTK}:good`, '{}'], [name, '{}']]) }), InvalidInputError, /keyJSON/);
        await rejectsAsync(() => db.existingOneTimeKeys(ALICE, 'D', [name]), InvalidInputError, /key IDs\[0\]/);
      }
      await rejectsAsync(() => db.storeOneTimeKeys({ userID: ALICE, deviceID: 'D', keyJSON: new Map([[`${OTK}:good`, 'a\u0000']]) }), InvalidInputError, /keyJSON/);
      await rejectsAsync(() => db.storeOneTimeKeys({ userID: ALICE, deviceID: 'D', keyJSON: { [`${OTK}:A`]: '{}' } as never }), InvalidInputError, /keyJSON must be a Map/);
      await rejectsAsync(() => db.storeOneTimeKeys({ userID: 'alice', deviceID: 'D', keyJSON: new Map() }), InvalidInputError, /userID/);
      await rejectsAsync(() => db.storeOneTimeKeys({ userID: ALICE, deviceID: '', keyJSON: new Map() }), InvalidInputError, /deviceID/);
      expect((await db.oneTimeKeysCount(ALICE, 'D')).keyCount).to.deep.equal(new Map());
    });

    test('claimKeys takes one key per (user, device, algorithm) and deletes it; missing keys are skipped', async ({ storage }) => {
      const db = storage.keys;
      await db.storeOneTimeKeys(otks(ALICE, 'D1', 2));
      await db.storeOneTimeKeys(otks(ALICE, 'D2', 1));
      await db.storeOneTimeKeys(otks(BOB, 'B1', 1));
      const request = new Map([
        [ALICE, new Map([['D1', OTK], ['D2', OTK], ['D3', OTK], ['D1x', 'curve25519']])],
        ['@nobody:example.org', new Map([['X', OTK]])],
        [BOB, new Map([['B1', OTK]])],
      ]);
      const got = await db.claimKeys(request);
      expect(got.map((k) => [k.userID, k.deviceID, k.keyJSON.size])).to.deep.equal([[ALICE, 'D1', 1], [ALICE, 'D2', 1], [BOB, 'B1', 1]]);
      const [name, json] = [...got[0]!.keyJSON][0]!;
      expect(name.startsWith(`${OTK}:`)).to.equal(true);
      expect(JSON.parse(json)).to.deep.equal({ key: name.slice(OTK.length + 1) });
      expect((await db.oneTimeKeysCount(ALICE, 'D1')).keyCount).to.deep.equal(new Map([[OTK, 1]]));
      expect((await db.oneTimeKeysCount(ALICE, 'D2')).keyCount).to.deep.equal(new Map());
      expect(await db.existingOneTimeKeys(ALICE, 'D1', [name])).to.deep.equal(new Map());
      // The second claim on D1 gets the other key; then D1 is empty too.
      const second = await db.claimKeys(claim(ALICE, 'D1'));
      expect([...second[0]!.keyJSON.keys()][0]).to.not.equal(name);
      expect(await db.claimKeys(claim(ALICE, 'D1'))).to.deep.equal([]);
      expect(await db.claimKeys(new Map())).to.deep.equal([]);
    });

    test('concurrent claims on one device: no key handed out twice, exactly as many successes as keys', async ({ storage }) => {
      const db = storage.keys;
      const KEYS = 20;
      const CLAIMS = 45;
      await db.storeOneTimeKeys(otks(ALICE, 'D', KEYS));
      const results = fulfilled(await parallel(CLAIMS, () => db.claimKeys(claim(ALICE, 'D'))));
      const won = results.flat().map((k) => [...k.keyJSON.keys()][0]!);
      expect(results.filter((r) => r.length === 1)).to.have.length(KEYS);
      expect(results.filter((r) => r.length === 0)).to.have.length(CLAIMS - KEYS);
      expect(new Set(won).size).to.equal(KEYS);
      expect([...won].sort()).to.deep.equal([...otks(ALICE, 'D', KEYS).keyJSON.keys()].sort());
      expect((await db.oneTimeKeysCount(ALICE, 'D')).keyCount).to.deep.equal(new Map());
    });

    test('concurrent claims across devices and algorithms, mixed with uploads, hand out every key exactly once', async ({ storage }) => {
      const db = storage.keys;
      await db.storeOneTimeKeys(otks(ALICE, 'D1', 6, 'a'));
      await db.storeOneTimeKeys(otks(ALICE, 'D2', 6, 'b'));
      const results = fulfilled(await parallel(30, (i) => (i === 10
        ? db.storeOneTimeKeys(otks(ALICE, 'D1', 4, 'late')).then(() => [])
        : db.claimKeys(new Map([[ALICE, new Map([['D1', OTK], ['D2', OTK]])]])))));
      const won = results.flat().map((k) => `${k.deviceID}/${[...k.keyJSON.keys()][0]}`);
      expect(new Set(won).size).to.equal(won.length);
      const left = (await db.oneTimeKeysCount(ALICE, 'D1')).keyCount.get(OTK) ?? 0;
      expect(won.filter((w) => w.startsWith('D1/')).length + left).to.equal(10);
      expect(won.filter((w) => w.startsWith('D2/'))).to.have.length(6);
    });

    test('claim requests are checked before any key is taken', async ({ storage }) => {
      const db = storage.keys;
      await db.storeOneTimeKeys(otks(ALICE, 'D', 2));
      const cases: [unknown, RegExp][] = [
        [new Map([[ALICE, new Map([['D', OTK]])], ['bob', new Map([['D', OTK]])]]), /claim request user ID/],
        [new Map([[ALICE, new Map([['D', OTK], ['', OTK]])]]), /device ID/],
        [new Map([[ALICE, new Map([['D', `${OTK}:x`]])]]), /algorithm.*":"/],
        [new Map([[ALICE, new Map([['D', '']])]]), /algorithm/],
        [new Map([[ALICE, { D: OTK }]]), /must be a Map/],
        [{ [ALICE]: { D: OTK } }, /must be a Map/],
      ];
      for (const [request, pattern] of cases) await rejectsAsync(() => db.claimKeys(request as never), InvalidInputError, pattern);
      expect((await db.oneTimeKeysCount(ALICE, 'D')).keyCount).to.deep.equal(new Map([[OTK, 2]]));
    });

    test('hostile algorithms, key IDs and device IDs round-trip through store, count, read and claim', async ({ storage }) => {
      const db = storage.keys;
      const algs = HOSTILE_IDS.filter((s) => !s.includes(':'));
      for (const device of ['__proto__', "it's", '%']) {
        const keyJSON = new Map(algs.map((a, i) => [`${a}:${HOSTILE_IDS[i]}`, JSON.stringify({ a, device })]));
        const c = await db.storeOneTimeKeys({ userID: HOSTILE_USERS[0]!, deviceID: device, keyJSON });
        expect([...c.keyCount.keys()].sort()).to.deep.equal([...algs].sort());
        expect(await db.existingOneTimeKeys(HOSTILE_USERS[0]!, device, [...keyJSON.keys()])).to.deep.equal(keyJSON);
      }
      const got = await db.claimKeys(new Map([[HOSTILE_USERS[0]!, new Map([['__proto__', '__proto__'], ['%', '_']])]]));
      expect(got.map((k) => [k.deviceID, JSON.parse([...k.keyJSON.values()][0]!)])).to.deep.equal([
        ['__proto__', { a: '__proto__', device: '__proto__' }], ['%', { a: '_', device: '%' }],
      ]);
      expect((await db.oneTimeKeysCount(HOSTILE_USERS[0]!, "it's")).keyCount.get('__proto__')).to.equal(1);
    });
  });

  group(fw, driver, 'Database: key changes and stale device lists', (test) => {
    test('storeKeyChange / keyChanges: increasing positions, (from, to] ranges, OFFSET_NEWEST, one entry per user', async ({ storage }) => {
      const db = storage.keys;
      expect(await db.keyChanges(0, OFFSET_NEWEST)).to.deep.equal({ userIDs: [], latestOffset: 0 });
      const a1 = await db.storeKeyChange(ALICE);
      const b1 = await db.storeKeyChange(BOB);
      const a2 = await db.storeKeyChange(ALICE);
      expect(b1).to.be.greaterThan(a1);
      expect(a2).to.be.greaterThan(b1);
      expect(await db.keyChanges(0, OFFSET_NEWEST)).to.deep.equal({ userIDs: [ALICE, BOB].sort(), latestOffset: a2 });
      expect(await db.keyChanges(0, b1)).to.deep.equal({ userIDs: [BOB], latestOffset: b1 });
      expect(await db.keyChanges(b1, OFFSET_NEWEST)).to.deep.equal({ userIDs: [ALICE], latestOffset: a2 });
      expect(await db.keyChanges(a2, OFFSET_NEWEST)).to.deep.equal({ userIDs: [], latestOffset: a2 });
      await rejectsAsync(() => db.storeKeyChange('nope'), InvalidInputError, /user ID/);
      await rejectsAsync(() => db.keyChanges(0.5, OFFSET_NEWEST), InvalidInputError, /from offset/);
      await rejectsAsync(() => db.keyChanges(0, Number.NaN), InvalidInputError, /to offset/);
    });

    test('concurrent key changes get distinct positions', async ({ storage }) => {
      const db = storage.keys;
      const ids = fulfilled(await parallel(30, (i) => db.storeKeyChange(`@u${i}:example.org`)));
      expect(new Set(ids).size).to.equal(30);
      const all = await db.keyChanges(0, OFFSET_NEWEST);
      expect(all.userIDs).to.have.length(30);
      expect(all.latestOffset).to.equal(Math.max(...ids));
    });

    test('markDeviceListStale / staleDeviceLists / deleteStaleDeviceLists', async ({ storage }) => {
      const db = storage.keys;
      expect(await db.staleDeviceLists([])).to.deep.equal([]);
      await db.markDeviceListStale('@b:remote.net', true);
      await db.markDeviceListStale('@a:remote.net', true);
      await db.markDeviceListStale('@c:other.org', true);
      await db.markDeviceListStale('@d:other.org', false);
      expect(await db.staleDeviceLists([])).to.deep.equal(['@a:remote.net', '@b:remote.net', '@c:other.org']);
      expect(await db.staleDeviceLists(['remote.net'])).to.deep.equal(['@a:remote.net', '@b:remote.net']);
      await db.markDeviceListStale('@a:remote.net', false);
      expect(await db.staleDeviceLists(['remote.net', 'other.org'])).to.deep.equal(['@b:remote.net', '@c:other.org']);
      await db.deleteStaleDeviceLists(['@b:remote.net']);
      await db.deleteStaleDeviceLists([]);
      expect(await db.staleDeviceLists([])).to.deep.equal(['@c:other.org']);
      await rejectsAsync(() => db.markDeviceListStale('@nodomain', true), InvalidInputError, /user ID/);
      await rejectsAsync(() => db.markDeviceListStale(ALICE, 'yes' as unknown as boolean), InvalidInputError, /is stale/);
      await rejectsAsync(() => db.staleDeviceLists(['']), InvalidInputError, /domains\[0\]/);
      await rejectsAsync(() => db.deleteStaleDeviceLists(['x']), InvalidInputError, /user IDs\[0\]/);
    });
  });

  group(fw, driver, 'Database: key server cross-signing', (test) => {
    const MASTER = 'bWFzdGVyIGtleSBieXRlcw';
    const SELF = 'c2VsZi1zaWduaW5nIGtleQ==';
    const USER = 'dXNlci1zaWduaW5n';

    test('crossSigningKeysForUser builds ed25519 key IDs and attaches only the user\'s own signatures', async ({ storage }) => {
      const db = storage.keys;
      expect(await db.crossSigningKeysForUser(ALICE)).to.deep.equal(new Map());
      await db.storeCrossSigningKeysForUser(ALICE, new Map([
        [CrossSigningKeyPurpose.master, MASTER], [CrossSigningKeyPurpose.selfSigning, SELF], [CrossSigningKeyPurpose.userSigning, USER],
      ]));
      const masterID = `ed25519:${MASTER}`;
      const selfID = 'ed25519:c2VsZi1zaWduaW5nIGtleQ';
      await db.storeCrossSigningSigsForTarget(ALICE, 'ed25519:DEVICE', ALICE, masterID, 'b3duIHNpZw');
      await db.storeCrossSigningSigsForTarget(BOB, 'ed25519:BOBS', ALICE, masterID, 'Ym9icyBzaWc');
      await db.storeCrossSigningSigsForTarget(BOB, 'ed25519:BOBS', ALICE, selfID, 'Ym9icyBvbmx5');
      const keys = await db.crossSigningKeysForUser(ALICE);
      expect([...keys.keys()]).to.deep.equal([1, 2, 3]);
      expect(keys.get(CrossSigningKeyPurpose.master)).to.deep.equal({
        userID: ALICE, usage: ['master'], keys: new Map([[masterID, MASTER]]),
        signatures: new Map([[ALICE, new Map([['ed25519:DEVICE', 'b3duIHNpZw']])]]),
      });
      // Padding is dropped from the key ID and the key (Matrix uses unpadded base64); bob's signature is left out.
      expect(keys.get(CrossSigningKeyPurpose.selfSigning)).to.deep.equal({
        userID: ALICE, usage: ['self_signing'], keys: new Map([[selfID, 'c2VsZi1zaWduaW5nIGtleQ']]), signatures: new Map(),
      });
      expect(keys.get(CrossSigningKeyPurpose.userSigning)!.usage).to.deep.equal(['user_signing']);
      // The signatures themselves are all still there.
      expect([...(await db.crossSigningSigsForTarget(ALICE, masterID)).keys()]).to.deep.equal([ALICE, BOB].sort());
    });

    test('crossSigningSigsForTarget given an origin user: only that user\'s and the target user\'s own signatures', async ({ storage }) => {
      const db = storage.keys;
      const CAROL = '@carol:example.org';
      const target = 'ed25519:ALICEMASTER';
      await db.storeCrossSigningSigsForTarget(ALICE, 'ed25519:DEVICE', ALICE, target, 'b3duIHNpZw');
      await db.storeCrossSigningSigsForTarget(BOB, 'ed25519:BOBS', ALICE, target, 'Ym9icyBzaWc');
      await db.storeCrossSigningSigsForTarget(CAROL, 'ed25519:CAROLS', ALICE, target, 'Y2Fyb2xz');
      await db.storeCrossSigningSigsForTarget(BOB, 'ed25519:BOBS', ALICE, 'ed25519:OTHER', 'b3RoZXI');
      const origins = async (...args: [string, string] | [string, string, string]) =>
        [...(await (db.crossSigningSigsForTarget as (...a: string[]) => Promise<Map<string, Map<string, string>>>)(...args)).keys()].sort();
      expect(await origins(BOB, ALICE, target)).to.deep.equal([ALICE, BOB].sort());
      expect((await db.crossSigningSigsForTarget(BOB, ALICE, target)).get(BOB)).to.deep.equal(new Map([['ed25519:BOBS', 'Ym9icyBzaWc']]));
      expect(await origins(CAROL, ALICE, target)).to.deep.equal([ALICE, CAROL].sort());
      expect(await origins(ALICE, ALICE, target)).to.deep.equal([ALICE]);
      expect(await origins('@nobody:example.org', ALICE, target)).to.deep.equal([ALICE]);
      expect(await origins(ALICE, target)).to.deep.equal([ALICE, BOB, CAROL].sort());
      expect(await origins(BOB, ALICE, 'ed25519:NONE')).to.deep.equal([]);
    });

    test('storeCrossSigningKeysForUser upserts per purpose and keeps the others; the data reads back raw', async ({ storage }) => {
      const db = storage.keys;
      await db.storeCrossSigningKeysForUser(ALICE, new Map([[CrossSigningKeyPurpose.master, MASTER], [CrossSigningKeyPurpose.selfSigning, SELF]]));
      await db.storeCrossSigningKeysForUser(ALICE, new Map([[CrossSigningKeyPurpose.master, USER]]));
      await db.storeCrossSigningKeysForUser(ALICE, new Map());
      expect(await db.crossSigningKeysDataForUser(ALICE)).to.deep.equal(new Map([[1, USER], [2, SELF]]));
      expect(await db.crossSigningKeysDataForUser(BOB)).to.deep.equal(new Map());
    });

    test('a signature replaces the same origin user\'s earlier one on that target key', async ({ storage }) => {
      const db = storage.keys;
      await db.storeCrossSigningSigsForTarget(BOB, 'ed25519:OLD', ALICE, 'DEV', 'b2xk');
      await db.storeCrossSigningSigsForTarget(BOB, 'ed25519:NEW', ALICE, 'DEV', 'bmV3');
      await db.storeCrossSigningSigsForTarget(ALICE, 'ed25519:A', ALICE, 'DEV', 'YWxpY2U');
      expect(await db.crossSigningSigsForTarget(ALICE, 'DEV')).to.deep.equal(new Map([
        [ALICE, new Map([['ed25519:A', 'YWxpY2U']])], [BOB, new Map([['ed25519:NEW', 'bmV3']])],
      ]));
      expect(await db.crossSigningSigsForTarget(ALICE, 'OTHER')).to.deep.equal(new Map());
    });

    test('cross-signing input is checked: purpose, base64 key data and signatures, user and key IDs', async ({ storage }) => {
      const db = storage.keys;
      for (const purpose of [0, 4, '1', null]) {
        await rejectsAsync(() => db.storeCrossSigningKeysForUser(ALICE, new Map([[CrossSigningKeyPurpose.master, MASTER], [purpose as never, MASTER]])), InvalidInputError, /purpose/);
      }
      for (const data of ['', 'not base64!', 'a\u0000', 'Zm9v===', 'x'.repeat(256)]) {
        await rejectsAsync(() => db.storeCrossSigningKeysForUser(ALICE, new Map([[CrossSigningKeyPurpose.master, data]])), InvalidInputError, /key data \(master\)/);
      }
      await rejectsAsync(() => db.storeCrossSigningKeysForUser(ALICE, { 1: MASTER } as never), InvalidInputError, /must be a Map/);
      await rejectsAsync(() => db.storeCrossSigningKeysForUser('alice', new Map()), InvalidInputError, /user ID/);
      await rejectsAsync(() => db.storeCrossSigningSigsForTarget('x', 'k', ALICE, 'k', 'c2ln'), InvalidInputError, /origin user ID/);
      await rejectsAsync(() => db.storeCrossSigningSigsForTarget(ALICE, '', ALICE, 'k', 'c2ln'), InvalidInputError, /origin key ID/);
      await rejectsAsync(() => db.storeCrossSigningSigsForTarget(ALICE, 'k', 'x', 'k', 'c2ln'), InvalidInputError, /target user ID/);
      await rejectsAsync(() => db.storeCrossSigningSigsForTarget(ALICE, 'k', ALICE, '', 'c2ln'), InvalidInputError, /target key ID/);
      await rejectsAsync(() => db.storeCrossSigningSigsForTarget(ALICE, 'k', ALICE, 'k', 'not base64'), InvalidInputError, /signature/);
      await rejectsAsync(() => db.crossSigningKeysForUser(''), InvalidInputError, /user ID/);
      await rejectsAsync(() => db.crossSigningSigsForTarget(ALICE, 'a\u0000'), InvalidInputError, /target key ID/);
      expect(await db.crossSigningKeysDataForUser(ALICE)).to.deep.equal(new Map());
      expect(await db.crossSigningSigsForTarget(ALICE, 'k')).to.deep.equal(new Map());
    });

    test('hostile user and key IDs round-trip through keys and signatures', async ({ storage }) => {
      const db = storage.keys;
      for (const u of HOSTILE_USERS) await db.storeCrossSigningKeysForUser(u, new Map([[CrossSigningKeyPurpose.master, MASTER]]));
      for (const u of HOSTILE_USERS) await db.storeCrossSigningSigsForTarget(u, `ed25519:${u}`, u, `ed25519:${MASTER}`, 'c2ln');
      for (const u of HOSTILE_USERS) {
        const master = (await db.crossSigningKeysForUser(u)).get(CrossSigningKeyPurpose.master)!;
        expect(master.signatures, u).to.deep.equal(new Map([[u, new Map([[`ed25519:${u}`, 'c2ln']])]]));
      }
    });
  });

  group(fw, driver, 'Database: key server partition offsets', (test) => {
    test('the key server embeds the PartitionStorer bound by DI: both see the same offsets', async ({ storage }) => {
      expect(storage.keys.partitionStorer).to.equal(storage.partitionStorer);
      await storage.keys.setPartitionOffset('keyserver.topic', 0, 41);
      expect(await storage.partitionStorer.partitionOffsets('keyserver.topic')).to.deep.equal([{ partition: 0, offset: 41 }]);
      await storage.partitionStorer.setPartitionOffset('keyserver.topic', 2, 7);
      expect(await storage.keys.partitionOffsets('keyserver.topic')).to.deep.equal([{ partition: 0, offset: 41 }, { partition: 2, offset: 7 }]);
    });
  });
}

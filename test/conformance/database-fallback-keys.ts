import { expect } from 'chai';
import { InvalidInputError } from '../../src/index.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { dm, HOSTILE_IDS, LONG_DEVICE, LONG_USER, rejectsAsync } from './keys-fixtures.js';

const ALICE = '@alice:example.org';
const BOB = '@bob:remote.net';
const OTK = 'signed_curve25519';

const keys = (userID: string, deviceID: string, entries: Record<string, string>) => ({ userID, deviceID, keyJSON: new Map(Object.entries(entries)) });
const claim = (userID: string, deviceID: string, algorithm = OTK) => new Map([[userID, new Map([[deviceID, algorithm]])]]);
/** The one key a claim of one device handed out, as [name, JSON]; undefined if it got none. */
const only = (claimed: { keyJSON: ReadonlyMap<string, string> }[]) => (claimed.length === 0 ? undefined : [...claimed[0]!.keyJSON][0]);

/**
 * Fallback keys (MSC2732, in the spec since v1.2): one per (user, device, algorithm), handed out by a claim that
 * finds no one-time key of the algorithm left, marked used and kept until a new one is uploaded.
 */
export function databaseFallbackKeyTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Database: fallback keys', (test) => {
    test('storeFallbackKeys keeps one key per algorithm; unusedFallbackKeyAlgorithms lists the unused ones, sorted', async ({ storage }) => {
      const db = storage.keys;
      expect(await db.unusedFallbackKeyAlgorithms(ALICE, 'D')).to.deep.equal([]);
      await db.storeFallbackKeys(keys(ALICE, 'D', { [`${OTK}:F1`]: '{"key":"f1","fallback":true}', 'curve25519:C1': '{"c":1}' }));
      expect(await db.unusedFallbackKeyAlgorithms(ALICE, 'D')).to.deep.equal(['curve25519', OTK]);
      // Another device, another user: nothing of theirs.
      expect(await db.unusedFallbackKeyAlgorithms(ALICE, 'other')).to.deep.equal([]);
      expect(await db.unusedFallbackKeyAlgorithms(BOB, 'D')).to.deep.equal([]);
      // An upload of one algorithm keeps the device's key of the other; an empty upload changes nothing.
      await db.storeFallbackKeys(keys(ALICE, 'D', { [`${OTK}:F2`]: '{"key":"f2","fallback":true}' }));
      await db.storeFallbackKeys(keys(ALICE, 'D', {}));
      expect(await db.unusedFallbackKeyAlgorithms(ALICE, 'D')).to.deep.equal(['curve25519', OTK]);
      expect(only(await db.claimKeys(claim(ALICE, 'D', 'curve25519')))).to.deep.equal(['curve25519:C1', '{"c":1}']);
      expect(only(await db.claimKeys(claim(ALICE, 'D')))).to.deep.equal([`${OTK}:F2`, '{"key":"f2","fallback":true}']);
    });

    test('a claim falls back to the fallback key only when no one-time key is left, marks it used, and hands it out again', async ({ storage }) => {
      const db = storage.keys;
      await db.storeOneTimeKeys(keys(ALICE, 'D', { [`${OTK}:K1`]: '{"key":"k1"}' }));
      await db.storeFallbackKeys(keys(ALICE, 'D', { [`${OTK}:F1`]: '{"key":"f1"}' }));
      expect(only(await db.claimKeys(claim(ALICE, 'D')))).to.deep.equal([`${OTK}:K1`, '{"key":"k1"}']);
      expect(await db.unusedFallbackKeyAlgorithms(ALICE, 'D'), 'a one-time key was there: the fallback key is unused').to.deep.equal([OTK]);
      expect(only(await db.claimKeys(claim(ALICE, 'D')))).to.deep.equal([`${OTK}:F1`, '{"key":"f1"}']);
      expect(await db.unusedFallbackKeyAlgorithms(ALICE, 'D')).to.deep.equal([]);
      // Used, it is still handed out while no new one is uploaded; one-time keys uploaded meanwhile come first.
      expect(only(await db.claimKeys(claim(ALICE, 'D')))).to.deep.equal([`${OTK}:F1`, '{"key":"f1"}']);
      await db.storeOneTimeKeys(keys(ALICE, 'D', { [`${OTK}:K2`]: '{"key":"k2"}' }));
      expect(only(await db.claimKeys(claim(ALICE, 'D')))).to.deep.equal([`${OTK}:K2`, '{"key":"k2"}']);
      expect(only(await db.claimKeys(claim(ALICE, 'D')))).to.deep.equal([`${OTK}:F1`, '{"key":"f1"}']);
      expect((await db.oneTimeKeysCount(ALICE, 'D')).keyCount).to.deep.equal(new Map());
      // A fallback key of another algorithm is no stand-in; a device with neither kind is skipped.
      expect(await db.claimKeys(claim(ALICE, 'D', 'curve25519'))).to.deep.equal([]);
      expect(await db.claimKeys(claim(ALICE, 'none'))).to.deep.equal([]);
      // In a claim of several devices, each falls back on its own.
      await db.storeOneTimeKeys(keys(ALICE, 'E', { [`${OTK}:E1`]: '{"key":"e1"}' }));
      const both = await db.claimKeys(new Map([[ALICE, new Map([['D', OTK], ['E', OTK], ['none', OTK]])]]));
      expect(both.map((k) => [k.deviceID, [...k.keyJSON.keys()]])).to.deep.equal([['D', [`${OTK}:F1`]], ['E', [`${OTK}:E1`]]]);
    });

    test('a new fallback key replaces the old one unused; the same key uploaded again keeps its used mark', async ({ storage }) => {
      const db = storage.keys;
      await db.storeFallbackKeys(keys(ALICE, 'D', { [`${OTK}:F1`]: '{"key":"f1"}' }));
      await db.claimKeys(claim(ALICE, 'D'));
      expect(await db.unusedFallbackKeyAlgorithms(ALICE, 'D')).to.deep.equal([]);
      // Clients send their current fallback key again: that must not make a used key look fresh.
      await db.storeFallbackKeys(keys(ALICE, 'D', { [`${OTK}:F1`]: '{"key":"f1"}' }));
      expect(await db.unusedFallbackKeyAlgorithms(ALICE, 'D')).to.deep.equal([]);
      await db.storeFallbackKeys(keys(ALICE, 'D', { [`${OTK}:F2`]: '{"key":"f2"}' }));
      expect(await db.unusedFallbackKeyAlgorithms(ALICE, 'D')).to.deep.equal([OTK]);
      expect(only(await db.claimKeys(claim(ALICE, 'D')))).to.deep.equal([`${OTK}:F2`, '{"key":"f2"}']);
      // The same key ID with other JSON is a new key too.
      await db.storeFallbackKeys(keys(ALICE, 'D', { [`${OTK}:F2`]: '{"key":"f2","v":2}' }));
      expect(await db.unusedFallbackKeyAlgorithms(ALICE, 'D')).to.deep.equal([OTK]);
      expect(only(await db.claimKeys(claim(ALICE, 'D')))).to.deep.equal([`${OTK}:F2`, '{"key":"f2","v":2}']);
    });

    test('concurrent claims: N one-time keys go to N claims once each, every other claim gets the fallback key', async ({ storage }) => {
      const db = storage.keys;
      await db.storeOneTimeKeys(keys(ALICE, 'D', Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`${OTK}:K${i}`, `{"k":${i}}`]))));
      await db.storeFallbackKeys(keys(ALICE, 'D', { [`${OTK}:F`]: '{"fallback":true}' }));
      const got = (await Promise.all(Array.from({ length: 12 }, () => db.claimKeys(claim(ALICE, 'D'))))).map((c) => only(c)![0]);
      const oneTime = got.filter((name) => name !== `${OTK}:F`);
      expect(new Set(oneTime).size, `one-time keys ${oneTime}`).to.equal(oneTime.length);
      expect(oneTime.sort()).to.deep.equal([0, 1, 2, 3, 4].map((i) => `${OTK}:K${i}`));
      expect(got.filter((name) => name === `${OTK}:F`)).to.have.length(7);
      expect(await db.unusedFallbackKeyAlgorithms(ALICE, 'D')).to.deep.equal([]);
    });

    test('deleteDeviceKeys deletes the devices\' fallback keys and no one else\'s', async ({ storage }) => {
      const db = storage.keys;
      await db.storeLocalDeviceKeys([dm(ALICE, 'A', '{}'), dm(ALICE, 'B', '{}')]);
      for (const [user, device] of [[ALICE, 'A'], [ALICE, 'B'], [BOB, 'A']] as const) {
        await db.storeFallbackKeys(keys(user, device, { [`${OTK}:F${device}`]: '{}', 'curve25519:X': '{}' }));
      }
      await db.deleteDeviceKeys(ALICE, ['A']);
      expect(await db.unusedFallbackKeyAlgorithms(ALICE, 'A')).to.deep.equal([]);
      expect(await db.claimKeys(claim(ALICE, 'A'))).to.deep.equal([]);
      expect(await db.unusedFallbackKeyAlgorithms(ALICE, 'B')).to.deep.equal(['curve25519', OTK]);
      expect(await db.unusedFallbackKeyAlgorithms(BOB, 'A')).to.deep.equal(['curve25519', OTK]);
      // A device that had fallback keys but no device keys row: its keys go all the same.
      await db.storeFallbackKeys(keys(ALICE, 'keysonly', { [`${OTK}:F`]: '{}' }));
      await db.deleteDeviceKeys(ALICE, ['keysonly']);
      expect(await db.unusedFallbackKeyAlgorithms(ALICE, 'keysonly')).to.deep.equal([]);
    });

    test('bad input is refused with the field named, and nothing is written', async ({ storage }) => {
      const db = storage.keys;
      await rejectsAsync(() => db.storeFallbackKeys(keys(ALICE, 'D', { [`${OTK}:A`]: '{}', [`${OTK}:B`]: '{}' })), InvalidInputError, /two fallback keys of algorithm/);
      for (const name of ['nocolon', ':key', `${OTK}:`, `${OTK}:a\u0000b`]) {
        await rejectsAsync(() => db.storeFallbackKeys(keys(ALICE, 'D', { 'curve25519:ok': '{}', [name]: '{}' })), InvalidInputError, /keyJSON/);
      }
      await rejectsAsync(() => db.storeFallbackKeys(keys(ALICE, 'D', { [`${OTK}:A`]: 'a\u0000' })), InvalidInputError, /keyJSON/);
      await rejectsAsync(() => db.storeFallbackKeys({ userID: ALICE, deviceID: 'D', keyJSON: { [`${OTK}:A`]: '{}' } as never }), InvalidInputError, /keyJSON must be a Map/);
      await rejectsAsync(() => db.storeFallbackKeys(keys('alice', 'D', {})), InvalidInputError, /userID/);
      await rejectsAsync(() => db.storeFallbackKeys(keys(ALICE, '', {})), InvalidInputError, /deviceID/);
      await rejectsAsync(() => db.storeFallbackKeys(null as never), InvalidInputError, /fallback keys must be an object/);
      await rejectsAsync(() => db.unusedFallbackKeyAlgorithms('nobody', 'D'), InvalidInputError, /user ID/);
      await rejectsAsync(() => db.unusedFallbackKeyAlgorithms(ALICE, ''), InvalidInputError, /device ID/);
      expect(await db.unusedFallbackKeyAlgorithms(ALICE, 'D')).to.deep.equal([]);
      expect(await db.claimKeys(claim(ALICE, 'D'))).to.deep.equal([]);
    });

    test('any user, device and algorithm identifiers round-trip (quotes, slashes, "__proto__", long ones)', async ({ storage }) => {
      const db = storage.keys;
      const users = [`@${HOSTILE_IDS[0]}:example.org`, '@__proto__:example.org', LONG_USER];
      const devices = [HOSTILE_IDS[0]!, 'a/b\\c', '__proto__', '\'; DROP TABLE keyserver_fallback_keys; --', LONG_DEVICE];
      for (const user of users) {
        for (const device of devices) {
          await db.storeFallbackKeys({ userID: user, deviceID: device, keyJSON: new Map([['__proto__:k', `{"u":${JSON.stringify(user)}}`], [`${OTK}:${device}`, '{}']]) });
        }
      }
      for (const user of users) {
        for (const device of devices) {
          expect(await db.unusedFallbackKeyAlgorithms(user, device), `${user} ${device}`).to.deep.equal(['__proto__', OTK]);
          expect(only(await db.claimKeys(claim(user, device, '__proto__')))).to.deep.equal(['__proto__:k', `{"u":${JSON.stringify(user)}}`]);
          expect(only(await db.claimKeys(claim(user, device)))).to.deep.equal([`${OTK}:${device}`, '{}']);
          expect(await db.unusedFallbackKeyAlgorithms(user, device)).to.deep.equal([]);
        }
      }
    });
  });

  group(fw, driver, 'Table: fallback_keys', (test) => {
    test('upsert, unused algorithms, claim (marks used, keeps the key), delete per device, in and out of a transaction', async ({ storage }) => {
      const t = storage.tables.fallbackKeys;
      const tx = storage.unitOfWork.autocommit;
      await t.upsertFallbackKeys(tx, ALICE, 'D', [[OTK, 'F1', '{"f":1}'], ['b', 'B1', '{"b":1}']]);
      await storage.unitOfWork.transaction((inTx) => t.upsertFallbackKeys(inTx, ALICE, 'E', [[OTK, 'E1', '{"e":1}']]));
      await t.upsertFallbackKeys(tx, ALICE, 'D', []);
      expect(await t.selectUnusedFallbackKeyAlgorithms(tx, ALICE, 'D')).to.deep.equal(['b', OTK]);
      expect(await t.claimFallbackKey(tx, ALICE, 'D', OTK)).to.deep.equal([`${OTK}:F1`, '{"f":1}']);
      expect(await storage.unitOfWork.transaction((inTx) => t.claimFallbackKey(inTx, ALICE, 'D', OTK))).to.deep.equal([`${OTK}:F1`, '{"f":1}']);
      expect(await t.claimFallbackKey(tx, ALICE, 'D', 'missing')).to.equal(null);
      expect(await t.selectUnusedFallbackKeyAlgorithms(tx, ALICE, 'D')).to.deep.equal(['b']);
      await t.upsertFallbackKeys(tx, ALICE, 'D', [[OTK, 'F1', '{"f":1}']]);
      expect(await t.selectUnusedFallbackKeyAlgorithms(tx, ALICE, 'D'), 'the same key again: still used').to.deep.equal(['b']);
      await t.upsertFallbackKeys(tx, ALICE, 'D', [[OTK, 'F2', '{"f":2}']]);
      expect(await t.selectUnusedFallbackKeyAlgorithms(tx, ALICE, 'D')).to.deep.equal(['b', OTK]);
      await t.deleteFallbackKeys(tx, ALICE, 'D');
      await t.deleteFallbackKeys(tx, ALICE, 'never');
      expect(await t.selectUnusedFallbackKeyAlgorithms(tx, ALICE, 'D')).to.deep.equal([]);
      expect(await t.claimFallbackKey(tx, ALICE, 'D', OTK)).to.equal(null);
      expect(await t.selectUnusedFallbackKeyAlgorithms(tx, ALICE, 'E')).to.deep.equal([OTK]);
    });
  });
}

import { expect } from 'chai';
import { ConflictError, InvalidInputError, NotFoundError, type KeyBackupRow } from '../../src/index.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { fulfilled, HOSTILE_IDS, parallel, rejectsAsync } from './keys-fixtures.js';

const ALICE = '@alice:example.org';
const BOB = '@bob:example.org';
const ALG = 'm.megolm_backup.v1.curve25519-aes-sha2';

export const session = (roomID: string, sessionID: string, fields: Partial<KeyBackupRow> = {}): KeyBackupRow => ({
  roomID, sessionID, firstMessageIndex: 0, forwardedCount: 0, isVerified: false, sessionData: `{"s":${JSON.stringify(sessionID)}}`, ...fields,
});

const isDecimal = (v: string) => /^[0-9]+$/.test(v) && String(Number(v)) === v;

/** Every contract of the key backup tables. */
export function keyBackupTableTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Table: key_backup_versions', (test) => {
    test('insertKeyBackup returns decimal versions, increasing and unique across users; selectKeyBackup returns the row', async ({ storage }) => {
      const t = storage.tables.keyBackupVersions;
      const tx = storage.unitOfWork.autocommit;
      const v1 = await t.insertKeyBackup(tx, ALICE, ALG, '{"a":1}', '');
      const v2 = await t.insertKeyBackup(tx, BOB, ALG, '{"b":1}', '7');
      const v3 = await storage.unitOfWork.transaction((inTx) => t.insertKeyBackup(inTx, ALICE, 'other.alg', '{"a":2}', ''));
      for (const v of [v1, v2, v3]) expect(isDecimal(v), v).to.equal(true);
      expect(Number(v2)).to.be.greaterThan(Number(v1));
      expect(Number(v3)).to.be.greaterThan(Number(v2));
      expect(await t.selectKeyBackup(tx, ALICE, v1)).to.deep.equal({ userID: ALICE, version: v1, algorithm: ALG, authData: '{"a":1}', etag: '', deleted: false });
      expect(await t.selectKeyBackup(tx, BOB, v2)).to.deep.equal({ userID: BOB, version: v2, algorithm: ALG, authData: '{"b":1}', etag: '7', deleted: false });
    });

    test('selectKeyBackup("") is the user\'s latest version, deleted ones included; NotFoundError if the user has none', async ({ storage }) => {
      const t = storage.tables.keyBackupVersions;
      const tx = storage.unitOfWork.autocommit;
      await rejectsAsync(() => t.selectKeyBackup(tx, ALICE, ''), NotFoundError);
      const v1 = await t.insertKeyBackup(tx, ALICE, ALG, '{}', '');
      const other = await t.insertKeyBackup(tx, BOB, ALG, '{}', '');
      expect((await t.selectKeyBackup(tx, ALICE, '')).version).to.equal(v1);
      const v2 = await t.insertKeyBackup(tx, ALICE, ALG, '{}', '');
      expect(await t.deleteKeyBackup(tx, ALICE, v2)).to.equal(true);
      expect(await t.selectKeyBackup(tx, ALICE, '')).to.include({ version: v2, deleted: true });
      expect((await t.selectKeyBackup(tx, BOB, '')).version).to.equal(other);
    });

    test('a missing version, or another user\'s, is a NotFoundError; a non-numeric one an InvalidInputError (as rejections)', async ({ storage }) => {
      const t = storage.tables.keyBackupVersions;
      const tx = storage.unitOfWork.autocommit;
      const v = await t.insertKeyBackup(tx, ALICE, ALG, '{}', '');
      await rejectsAsync(() => t.selectKeyBackup(tx, BOB, v), NotFoundError);
      await rejectsAsync(() => t.selectKeyBackup(tx, ALICE, String(Number(v) + 1000)), NotFoundError);
      for (const bad of ['abc', '1a', '-1', ' 1', '1.5', '0x10']) {
        await rejectsAsync(() => t.selectKeyBackup(tx, ALICE, bad), InvalidInputError);
        await rejectsAsync(() => t.updateKeyBackupAuthData(tx, ALICE, bad, '{}'), InvalidInputError);
        await rejectsAsync(() => t.bumpKeyBackupETag(tx, ALICE, bad), InvalidInputError);
        await rejectsAsync(() => t.deleteKeyBackup(tx, ALICE, bad), InvalidInputError);
      }
      // Versions compare as numbers.
      expect((await t.selectKeyBackup(tx, ALICE, `00${v}`)).version).to.equal(v);
    });

    test('updateKeyBackupAuthData replaces the auth data (deleted or not); a missing version is a no-op', async ({ storage }) => {
      const t = storage.tables.keyBackupVersions;
      const tx = storage.unitOfWork.autocommit;
      const v = await t.insertKeyBackup(tx, ALICE, ALG, '{"old":1}', '');
      await t.updateKeyBackupAuthData(tx, ALICE, v, '{"new":1}');
      expect((await t.selectKeyBackup(tx, ALICE, v)).authData).to.equal('{"new":1}');
      await t.deleteKeyBackup(tx, ALICE, v);
      await storage.unitOfWork.transaction((inTx) => t.updateKeyBackupAuthData(inTx, ALICE, v, '{"newer":1}'));
      expect(await t.selectKeyBackup(tx, ALICE, v)).to.include({ authData: '{"newer":1}', deleted: true, algorithm: ALG });
      await t.updateKeyBackupAuthData(tx, BOB, v, '{"mallory":1}');
      await t.updateKeyBackupAuthData(tx, ALICE, String(Number(v) + 1000), '{}');
      expect((await t.selectKeyBackup(tx, ALICE, v)).authData).to.equal('{"newer":1}');
    });

    test('bumpKeyBackupETag: "" becomes "1", "n" becomes "n+1"; a missing version is a NotFoundError', async ({ storage }) => {
      const t = storage.tables.keyBackupVersions;
      const tx = storage.unitOfWork.autocommit;
      const v = await t.insertKeyBackup(tx, ALICE, ALG, '{}', '');
      expect(await t.bumpKeyBackupETag(tx, ALICE, v)).to.equal('1');
      expect(await storage.unitOfWork.transaction((inTx) => t.bumpKeyBackupETag(inTx, ALICE, v))).to.equal('2');
      expect((await t.selectKeyBackup(tx, ALICE, v)).etag).to.equal('2');
      const w = await t.insertKeyBackup(tx, ALICE, ALG, '{}', '41');
      expect(await t.bumpKeyBackupETag(tx, ALICE, w)).to.equal('42');
      const x = await t.insertKeyBackup(tx, ALICE, ALG, '{}', 'garbage');
      expect(await t.bumpKeyBackupETag(tx, ALICE, x)).to.equal('1');
      await rejectsAsync(() => t.bumpKeyBackupETag(tx, BOB, v), NotFoundError);
      await rejectsAsync(() => t.bumpKeyBackupETag(tx, ALICE, String(Number(x) + 1000)), NotFoundError);
    });

    test('concurrent bumps of one etag give successive values, never the same one', async ({ storage }) => {
      const t = storage.tables.keyBackupVersions;
      const tx = storage.unitOfWork.autocommit;
      const v = await t.insertKeyBackup(tx, ALICE, ALG, '{}', '');
      const etags = fulfilled(await parallel(12, () => storage.unitOfWork.transaction((inTx) => t.bumpKeyBackupETag(inTx, ALICE, v))));
      expect(etags.map(Number).sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 12 }, (_, i) => i + 1));
      expect((await t.selectKeyBackup(tx, ALICE, v)).etag).to.equal('12');
    });

    test('deleteKeyBackup is a soft delete: true while the version exists (twice too), false otherwise', async ({ storage }) => {
      const t = storage.tables.keyBackupVersions;
      const tx = storage.unitOfWork.autocommit;
      const v = await t.insertKeyBackup(tx, ALICE, ALG, '{"a":1}', '3');
      expect(await t.deleteKeyBackup(tx, ALICE, v)).to.equal(true);
      expect(await storage.unitOfWork.transaction((inTx) => t.deleteKeyBackup(inTx, ALICE, v))).to.equal(true);
      expect(await t.selectKeyBackup(tx, ALICE, v)).to.deep.equal({ userID: ALICE, version: v, algorithm: ALG, authData: '{"a":1}', etag: '3', deleted: true });
      expect(await t.deleteKeyBackup(tx, BOB, v)).to.equal(false);
      expect(await t.deleteKeyBackup(tx, ALICE, String(Number(v) + 1000))).to.equal(false);
    });

    test('concurrent inserts for many users get unique versions', async ({ storage }) => {
      const t = storage.tables.keyBackupVersions;
      const tx = storage.unitOfWork.autocommit;
      const versions = fulfilled(await parallel(20, (i) => t.insertKeyBackup(tx, `@u${i % 5}:example.org`, ALG, '{}', '')));
      expect(new Set(versions).size).to.equal(20);
      for (let u = 0; u < 5; u++) {
        const mine = versions.filter((_, i) => i % 5 === u).map(Number);
        expect(Number((await t.selectKeyBackup(tx, `@u${u}:example.org`, '')).version)).to.equal(Math.max(...mine));
      }
    });
  });

  group(fw, driver, 'Table: key_backups', (test) => {
    test('insertBackupKey stores sessions that the selects return, grouped and sorted by room then session', async ({ storage }) => {
      const t = storage.tables.keyBackups;
      const tx = storage.unitOfWork.autocommit;
      expect(await t.selectKeys(tx, ALICE, '1')).to.deep.equal(new Map());
      await t.insertBackupKey(tx, ALICE, '1', session('!b:x.org', 's2', { firstMessageIndex: 3, forwardedCount: 1, isVerified: true }));
      await t.insertBackupKey(tx, ALICE, '1', session('!a:x.org', 's9'));
      await storage.unitOfWork.transaction((inTx) => t.insertBackupKey(inTx, ALICE, '1', session('!b:x.org', 's1')));
      await t.insertBackupKey(tx, ALICE, '2', session('!a:x.org', 'other-version'));
      await t.insertBackupKey(tx, BOB, '1', session('!a:x.org', 'bobs'));
      const all = await t.selectKeys(tx, ALICE, '1');
      expect([...all.keys()]).to.deep.equal(['!a:x.org', '!b:x.org']);
      expect([...all.get('!b:x.org')!.keys()]).to.deep.equal(['s1', 's2']);
      expect(all.get('!b:x.org')!.get('s2')).to.deep.equal({ firstMessageIndex: 3, forwardedCount: 1, isVerified: true, sessionData: '{"s":"s2"}' });
      expect(all.get('!a:x.org')!.get('s9')).to.deep.equal({ firstMessageIndex: 0, forwardedCount: 0, isVerified: false, sessionData: '{"s":"s9"}' });
      expect(await t.selectKeysByRoomID(tx, ALICE, '1', '!b:x.org')).to.deep.equal(new Map([['!b:x.org', all.get('!b:x.org')]]));
      expect(await t.selectKeysByRoomID(tx, ALICE, '1', '!c:x.org')).to.deep.equal(new Map());
      expect(await t.selectKeysByRoomIDAndSessionID(tx, ALICE, '1', '!b:x.org', 's2'))
        .to.deep.equal(new Map([['!b:x.org', new Map([['s2', all.get('!b:x.org')!.get('s2')]])]]));
      expect(await t.selectKeysByRoomIDAndSessionID(tx, ALICE, '1', '!a:x.org', 's2')).to.deep.equal(new Map());
      expect(await t.countKeys(tx, ALICE, '1')).to.equal(3);
      expect(await t.countKeys(tx, ALICE, '2')).to.equal(1);
      expect(await t.countKeys(tx, BOB, '1')).to.equal(1);
      expect(await t.countKeys(tx, BOB, '2')).to.equal(0);
    });

    test('inserting an existing (user, version, room, session) is a ConflictError; the transaction goes on and the row is kept', async ({ storage }) => {
      const t = storage.tables.keyBackups;
      const tx = storage.unitOfWork.autocommit;
      await t.insertBackupKey(tx, ALICE, '1', session('!r:x.org', 's', { sessionData: '{"first":1}' }));
      await rejectsAsync(() => t.insertBackupKey(tx, ALICE, '1', session('!r:x.org', 's', { sessionData: '{"second":1}' })), ConflictError);
      // Inside a transaction, the conflict does not spoil it: later statements still run and commit.
      await storage.unitOfWork.transaction(async (inTx) => {
        await rejectsAsync(() => t.insertBackupKey(inTx, ALICE, '1', session('!r:x.org', 's')), ConflictError);
        await t.insertBackupKey(inTx, ALICE, '1', session('!r:x.org', 'after'));
      });
      const keys = await t.selectKeys(tx, ALICE, '1');
      expect(keys.get('!r:x.org')!.get('s')!.sessionData).to.equal('{"first":1}');
      expect(keys.get('!r:x.org')!.has('after')).to.equal(true);
    });

    test('updateBackupKey replaces the session\'s fields; a missing session is a no-op', async ({ storage }) => {
      const t = storage.tables.keyBackups;
      const tx = storage.unitOfWork.autocommit;
      await t.insertBackupKey(tx, ALICE, '1', session('!r:x.org', 's'));
      await t.insertBackupKey(tx, ALICE, '2', session('!r:x.org', 's'));
      const updated = session('!r:x.org', 's', { firstMessageIndex: 9, forwardedCount: 2, isVerified: true, sessionData: '{"new":1}' });
      await storage.unitOfWork.transaction((inTx) => t.updateBackupKey(inTx, ALICE, '1', updated));
      expect((await t.selectKeys(tx, ALICE, '1')).get('!r:x.org')!.get('s'))
        .to.deep.equal({ firstMessageIndex: 9, forwardedCount: 2, isVerified: true, sessionData: '{"new":1}' });
      expect((await t.selectKeys(tx, ALICE, '2')).get('!r:x.org')!.get('s')!.sessionData).to.equal('{"s":"s"}');
      await t.updateBackupKey(tx, ALICE, '1', session('!r:x.org', 'missing'));
      await t.updateBackupKey(tx, BOB, '1', updated);
      expect(await t.countKeys(tx, ALICE, '1')).to.equal(1);
      expect(await t.countKeys(tx, BOB, '1')).to.equal(0);
    });

    test('hostile room and session IDs round-trip and stay distinct', async ({ storage }) => {
      const t = storage.tables.keyBackups;
      const tx = storage.unitOfWork.autocommit;
      for (const id of HOSTILE_IDS) await t.insertBackupKey(tx, ALICE, '1', session(`!${id}:x.org`, id));
      const all = await t.selectKeys(tx, ALICE, '1');
      expect(all.size).to.equal(HOSTILE_IDS.length);
      for (const id of HOSTILE_IDS) expect(all.get(`!${id}:x.org`)!.get(id)!.sessionData, id).to.equal(`{"s":${JSON.stringify(id)}}`);
      expect(await t.selectKeysByRoomIDAndSessionID(tx, ALICE, '1', '!%:x.org', '%')).to.have.property('size', 1);
      expect(await t.selectKeysByRoomID(tx, ALICE, '1', '!_:x.org')).to.have.property('size', 1);
      expect(await t.countKeys(tx, ALICE, '1')).to.equal(HOSTILE_IDS.length);
    });
  });
}

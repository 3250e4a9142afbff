import { expect } from 'chai';
import { InvalidInputError, KeyBackupDeletedError, NotFoundError, shouldReplaceRoomKey, type KeyBackupRow } from '../../src/index.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { fulfilled, HOSTILE_IDS, parallel, rejectsAsync, TOO_LONG_USER } from './keys-fixtures.js';
import { session } from './tables-key-backup.js';

const ALICE = '@alice:example.org';
const BOB = '@bob:example.org';
const ALG = 'm.megolm_backup.v1.curve25519-aes-sha2';
const ROOM = '!room:example.org';

const fields = (s: KeyBackupRow) => ({ firstMessageIndex: s.firstMessageIndex, forwardedCount: s.forwardedCount, isVerified: s.isVerified, sessionData: s.sessionData });

/** Server-side key backup: versions, soft delete, uploads with the replacement rules, etags, input checks. */
export function databaseKeyBackupTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Database: key backup versions', (test) => {
    test('createKeyBackup: versions increase and are unique across users; etag starts at ""', async ({ storage }) => {
      const db = storage.keyBackup;
      const a1 = await db.createKeyBackup(ALICE, ALG, '{"public_key":"a1"}');
      const b1 = await db.createKeyBackup(BOB, ALG, '{"public_key":"b1"}');
      const a2 = await db.createKeyBackup(ALICE, ALG, '{"public_key":"a2"}');
      expect(new Set([a1, b1, a2]).size).to.equal(3);
      expect(Number(b1)).to.be.greaterThan(Number(a1));
      expect(Number(a2)).to.be.greaterThan(Number(b1));
      expect(await db.getKeyBackup(ALICE, a1)).to.deep.equal({ userID: ALICE, version: a1, algorithm: ALG, authData: '{"public_key":"a1"}', etag: '', deleted: false });
      expect((await db.getKeyBackup(ALICE, '')).version).to.equal(a2);
      expect((await db.getKeyBackup(BOB, '')).version).to.equal(b1);
    });

    test('getKeyBackup: unknown versions and other users\' are NotFoundErrors; "" is NotFoundError for a user with none', async ({ storage }) => {
      const db = storage.keyBackup;
      await rejectsAsync(() => db.getKeyBackup(ALICE, ''), NotFoundError);
      const v = await db.createKeyBackup(ALICE, ALG, '{}');
      await rejectsAsync(() => db.getKeyBackup(BOB, v), NotFoundError);
      await rejectsAsync(() => db.getKeyBackup(ALICE, String(Number(v) + 100)), NotFoundError);
      for (const bad of ['x', '1.0', '-1', ' ', 'NaN', '1e3']) await rejectsAsync(() => db.getKeyBackup(ALICE, bad), InvalidInputError, /version/);
      expect((await db.getKeyBackup(ALICE, `0${v}`)).version).to.equal(v);
    });

    test('deleteKeyBackup is a soft delete: the latest may be a deleted version; deleting twice is fine; unknown is NotFoundError', async ({ storage }) => {
      const db = storage.keyBackup;
      const v1 = await db.createKeyBackup(ALICE, ALG, '{}');
      const v2 = await db.createKeyBackup(ALICE, ALG, '{}');
      await db.deleteKeyBackup(ALICE, v2);
      await db.deleteKeyBackup(ALICE, v2);
      expect(await db.getKeyBackup(ALICE, '')).to.include({ version: v2, deleted: true });
      expect(await db.getKeyBackup(ALICE, v1)).to.include({ deleted: false });
      await rejectsAsync(() => db.deleteKeyBackup(BOB, v1), NotFoundError);
      await rejectsAsync(() => db.deleteKeyBackup(ALICE, String(Number(v2) + 100)), NotFoundError);
      await rejectsAsync(() => db.deleteKeyBackup(ALICE, ''), InvalidInputError);
      expect((await db.getKeyBackup(ALICE, v1)).deleted).to.equal(false);
    });

    test('updateKeyBackupAuthData replaces the auth data; unknown version NotFoundError, non-numeric InvalidInputError', async ({ storage }) => {
      const db = storage.keyBackup;
      const v = await db.createKeyBackup(ALICE, ALG, '{"old":1}');
      await db.updateKeyBackupAuthData(ALICE, v, '{"new":1}');
      expect(await db.getKeyBackup(ALICE, v)).to.include({ authData: '{"new":1}', algorithm: ALG, etag: '' });
      await rejectsAsync(() => db.updateKeyBackupAuthData(BOB, v, '{}'), NotFoundError);
      await rejectsAsync(() => db.updateKeyBackupAuthData(ALICE, String(Number(v) + 100), '{}'), NotFoundError);
      await rejectsAsync(() => db.updateKeyBackupAuthData(ALICE, 'latest', '{}'), InvalidInputError);
      await rejectsAsync(() => db.updateKeyBackupAuthData(ALICE, v, 'a\u0000'), InvalidInputError, /auth data/);
      expect((await db.getKeyBackup(ALICE, v)).authData).to.equal('{"new":1}');
    });

    test('concurrent creates for several users give unique versions; each user\'s latest is its highest', async ({ storage }) => {
      const db = storage.keyBackup;
      const users = ['@a:example.org', '@b:example.org', '@c:example.org'];
      const versions = fulfilled(await parallel(24, (i) => db.createKeyBackup(users[i % 3]!, ALG, `{"i":${i}}`)));
      expect(new Set(versions).size).to.equal(24);
      for (const [u, user] of users.entries()) {
        const mine = versions.filter((_, i) => i % 3 === u).map(Number);
        expect(Number((await db.getKeyBackup(user, '')).version)).to.equal(Math.max(...mine));
      }
    });

    test('version and backup inputs are checked before anything is written', async ({ storage }) => {
      const db = storage.keyBackup;
      await rejectsAsync(() => db.createKeyBackup('alice', ALG, '{}'), InvalidInputError, /user ID/);
      await rejectsAsync(() => db.createKeyBackup(TOO_LONG_USER, ALG, '{}'), InvalidInputError, /user ID/);
      await rejectsAsync(() => db.createKeyBackup(ALICE, '', '{}'), InvalidInputError, /algorithm/);
      await rejectsAsync(() => db.createKeyBackup(ALICE, 'a:b', '{}'), InvalidInputError, /algorithm/);
      await rejectsAsync(() => db.createKeyBackup(ALICE, ALG, 'x'.repeat(70_000)), InvalidInputError, /auth data/);
      await rejectsAsync(() => db.createKeyBackup(ALICE, ALG, 3 as unknown as string), InvalidInputError, /auth data/);
      await rejectsAsync(() => db.getKeyBackup(ALICE, ''), NotFoundError);
    });
  });

  group(fw, driver, 'Database: key backup uploads', (test) => {
    test('upsertBackupKeys stores new sessions, returns the count and bumps the etag from "" to "1"', async ({ storage }) => {
      const db = storage.keyBackup;
      const v = await db.createKeyBackup(ALICE, ALG, '{}');
      expect(await db.upsertBackupKeys(ALICE, v, [session(ROOM, 's1'), session(ROOM, 's2'), session('!other:example.org', 's1')]))
        .to.deep.equal({ count: 3, etag: '1' });
      expect(await db.getKeyBackup(ALICE, v)).to.include({ etag: '1' });
      expect(await db.countBackupKeys(ALICE, v)).to.equal(3);
      expect(await db.upsertBackupKeys(ALICE, v, [session(ROOM, 's3')])).to.deep.equal({ count: 4, etag: '2' });
      // Nothing new: the etag stays.
      expect(await db.upsertBackupKeys(ALICE, v, [session(ROOM, 's3')])).to.deep.equal({ count: 4, etag: '2' });
      expect(await db.upsertBackupKeys(ALICE, v, [])).to.deep.equal({ count: 4, etag: '2' });
      // Another version of the same user is separate.
      const w = await db.createKeyBackup(ALICE, ALG, '{}');
      expect(await db.upsertBackupKeys(ALICE, w, [session(ROOM, 's1')])).to.deep.equal({ count: 1, etag: '1' });
      expect(await db.countBackupKeys(ALICE, v)).to.equal(4);
    });

    test('the replacement rules: verified beats unverified, then lower first_message_index, then lower forwarded_count', async ({ storage }) => {
      const db = storage.keyBackup;
      const v = await db.createKeyBackup(ALICE, ALG, '{}');
      const stored = () => db.getBackupKeys(ALICE, v, { roomID: ROOM, sessionID: 's' }).then((m) => m.get(ROOM)!.get('s')!);
      const base = session(ROOM, 's', { firstMessageIndex: 5, forwardedCount: 2, isVerified: false, sessionData: '{"v":"base"}' });
      await db.upsertBackupKeys(ALICE, v, [base]);
      const steps: [Partial<KeyBackupRow>, boolean][] = [
        [{ firstMessageIndex: 6, forwardedCount: 0 }, false], // higher index loses, even with a lower count
        [{ firstMessageIndex: 5, forwardedCount: 2 }, false], // equal on every rule: nothing changes
        [{ firstMessageIndex: 5, forwardedCount: 3 }, false], // same index, higher count loses
        [{ firstMessageIndex: 5, forwardedCount: 1 }, true], // same index, lower count wins
        [{ firstMessageIndex: 4, forwardedCount: 9 }, true], // lower index wins whatever the count
        [{ firstMessageIndex: 9, forwardedCount: 9, isVerified: true }, true], // verified beats unverified
        [{ firstMessageIndex: 0, forwardedCount: 0, isVerified: false }, false], // unverified never beats verified
        [{ firstMessageIndex: 8, forwardedCount: 0, isVerified: true }, true], // between verified ones: lower index
      ];
      let etag = 1;
      for (const [i, [change, replaces]] of steps.entries()) {
        const upload = session(ROOM, 's', { ...change, sessionData: `{"v":${i}}` });
        const before = await stored();
        const result = await db.upsertBackupKeys(ALICE, v, [upload]);
        if (replaces) etag++;
        expect(result, `step ${i}`).to.deep.equal({ count: 1, etag: String(etag) });
        expect(await stored(), `step ${i}`).to.deep.equal(replaces ? fields(upload) : before);
        expect(shouldReplaceRoomKey(before, upload), `step ${i}`).to.equal(replaces);
      }
    });

    test('several uploads of one session in one call are weighed in order; the etag moves once', async ({ storage }) => {
      const db = storage.keyBackup;
      const v = await db.createKeyBackup(ALICE, ALG, '{}');
      const r = await db.upsertBackupKeys(ALICE, v, [
        session(ROOM, 's', { firstMessageIndex: 5, sessionData: '{"n":1}' }),
        session(ROOM, 's', { firstMessageIndex: 3, sessionData: '{"n":2}' }),
        session(ROOM, 's', { firstMessageIndex: 4, sessionData: '{"n":3}' }),
      ]);
      expect(r).to.deep.equal({ count: 1, etag: '1' });
      expect((await db.getBackupKeys(ALICE, v)).get(ROOM)!.get('s')!.sessionData).to.equal('{"n":2}');
    });

    test('uploads to a deleted version fail with KeyBackupDeletedError and change nothing; unknown versions are NotFoundError', async ({ storage }) => {
      const db = storage.keyBackup;
      const v = await db.createKeyBackup(ALICE, ALG, '{}');
      await db.upsertBackupKeys(ALICE, v, [session(ROOM, 's1')]);
      await db.deleteKeyBackup(ALICE, v);
      await rejectsAsync(() => db.upsertBackupKeys(ALICE, v, [session(ROOM, 's2')]), KeyBackupDeletedError, /backup was deleted/);
      expect(await db.countBackupKeys(ALICE, v)).to.equal(1);
      expect((await db.getKeyBackup(ALICE, v)).etag).to.equal('1');
      await rejectsAsync(() => db.upsertBackupKeys(BOB, v, [session(ROOM, 's2')]), NotFoundError);
      await rejectsAsync(() => db.upsertBackupKeys(ALICE, String(Number(v) + 100), [session(ROOM, 's2')]), NotFoundError);
      await rejectsAsync(() => db.upsertBackupKeys(ALICE, '', [session(ROOM, 's2')]), InvalidInputError);
    });

    test('getBackupKeys: all, by room, by room and session; empty maps when nothing matches; NotFoundError for an unknown version', async ({ storage }) => {
      const db = storage.keyBackup;
      const v = await db.createKeyBackup(ALICE, ALG, '{}');
      expect(await db.getBackupKeys(ALICE, v)).to.deep.equal(new Map());
      const uploads = [session('!b:example.org', 's2'), session('!a:example.org', 's1'), session('!b:example.org', 's1', { isVerified: true })];
      await db.upsertBackupKeys(ALICE, v, uploads);
      const all = await db.getBackupKeys(ALICE, v);
      expect([...all].map(([room, s]) => [room, [...s.keys()]])).to.deep.equal([['!a:example.org', ['s1']], ['!b:example.org', ['s1', 's2']]]);
      expect(all.get('!b:example.org')!.get('s1')).to.deep.equal(fields(uploads[2]!));
      expect([...(await db.getBackupKeys(ALICE, v, { roomID: '!b:example.org' })).keys()]).to.deep.equal(['!b:example.org']);
      expect(await db.getBackupKeys(ALICE, v, { roomID: '!b:example.org', sessionID: 's2' }))
        .to.deep.equal(new Map([['!b:example.org', new Map([['s2', fields(uploads[0]!)]])]]));
      expect(await db.getBackupKeys(ALICE, v, { roomID: '!c:example.org' })).to.deep.equal(new Map());
      expect(await db.getBackupKeys(ALICE, v, { roomID: '!a:example.org', sessionID: 's2' })).to.deep.equal(new Map());
      await rejectsAsync(() => db.getBackupKeys(ALICE, v, { sessionID: 's1' }), InvalidInputError, /needs a room ID/);
      await rejectsAsync(() => db.getBackupKeys(ALICE, v, { roomID: 'no-sigil' }), InvalidInputError, /room ID/);
      await rejectsAsync(() => db.getBackupKeys(BOB, v), NotFoundError);
      await rejectsAsync(() => db.countBackupKeys(BOB, v), NotFoundError);
      await rejectsAsync(() => db.getBackupKeys(ALICE, 'one'), InvalidInputError);
      // A deleted version's keys stay readable.
      await db.deleteKeyBackup(ALICE, v);
      expect(await db.countBackupKeys(ALICE, v)).to.equal(3);
    });

    test('upload rows are checked before anything is written', async ({ storage }) => {
      const db = storage.keyBackup;
      const v = await db.createKeyBackup(ALICE, ALG, '{}');
      const bad: [Partial<KeyBackupRow>, RegExp][] = [
        [{ roomID: 'room' }, /uploads\[1\]\.roomID/],
        [{ sessionID: '' }, /uploads\[1\]\.sessionID/],
        [{ firstMessageIndex: -1 }, /uploads\[1\]\.firstMessageIndex/],
        [{ forwardedCount: 1.5 }, /uploads\[1\]\.forwardedCount/],
        [{ isVerified: 1 as unknown as boolean }, /uploads\[1\]\.isVerified/],
        [{ sessionData: 'a\u0000' }, /uploads\[1\]\.sessionData/],
      ];
      for (const [change, pattern] of bad) {
        await rejectsAsync(() => db.upsertBackupKeys(ALICE, v, [session(ROOM, 'ok'), { ...session(ROOM, 'bad'), ...change }]), InvalidInputError, pattern);
      }
      await rejectsAsync(() => db.upsertBackupKeys(ALICE, v, 'x' as never), InvalidInputError, /uploads/);
      expect(await db.countBackupKeys(ALICE, v)).to.equal(0);
      expect((await db.getKeyBackup(ALICE, v)).etag).to.equal('');
    });

    test('concurrent uploads: every session stored once, one etag step per changing upload, no etag handed out twice', async ({ storage }) => {
      const db = storage.keyBackup;
      const v = await db.createKeyBackup(ALICE, ALG, '{}');
      // 16 uploads of distinct sessions, plus 8 that all race to store the same new session.
      const results = fulfilled(await parallel(24, (i) => db.upsertBackupKeys(ALICE, v, [i < 16 ? session(ROOM, `s${i}`) : session(ROOM, 'shared')])));
      expect(await db.countBackupKeys(ALICE, v)).to.equal(17);
      const changing = results.slice(0, 16).map((r) => r.etag);
      expect(new Set(changing).size).to.equal(16);
      // Exactly one of the racing uploads stored "shared": 17 changes in all.
      expect((await db.getKeyBackup(ALICE, v)).etag).to.equal('17');
    });

    test('hostile room and session IDs round-trip', async ({ storage }) => {
      const db = storage.keyBackup;
      const v = await db.createKeyBackup(ALICE, ALG, '{}');
      await db.upsertBackupKeys(ALICE, v, HOSTILE_IDS.map((id) => session(`!${id}:example.org`, id)));
      const all = await db.getBackupKeys(ALICE, v);
      expect(all.size).to.equal(HOSTILE_IDS.length);
      for (const id of HOSTILE_IDS) {
        const one = await db.getBackupKeys(ALICE, v, { roomID: `!${id}:example.org`, sessionID: id });
        expect(one.get(`!${id}:example.org`)!.get(id)!.sessionData, id).to.equal(`{"s":${JSON.stringify(id)}}`);
      }
    });
  });
}

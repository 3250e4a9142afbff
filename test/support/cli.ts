import type { Storage } from '../../src/index.js';
import { main } from '../../src/cli/main.js';

/** Runs the CLI in-process, returning its exit code and what it printed on stdout (stderr is silenced). */
export async function runCli(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  const err = console.error;
  console.log = (...a: unknown[]) => { lines.push(a.join(' ')); };
  console.error = () => {};
  try {
    const code = await main(args);
    return { code, out: lines.join('\n') };
  } finally {
    console.log = log;
    console.error = err;
  }
}

export const KEYS_USER = '@alice:example.org';
/** A device ID that would break a naive object key or a LIKE pattern. */
export const HOSTILE_DEVICE = "__proto__'%_";

/**
 * The writes behind the `keys` command's cases: three devices (one hostile ID), another user's device, two
 * cross-signing keys with one own and one foreign signature, and two backups, the latest with three sessions, then
 * deleted. Closes the store; returns the latest backup version.
 */
export async function writeKeysFixture(s: Storage): Promise<string> {
  const alice = KEYS_USER;
  try {
    await s.keys.storeLocalDeviceKeys([
      { userID: alice, deviceID: 'PHONE', keyJSON: '{"device_id":"PHONE"}', streamID: 0, displayName: 'Phone' },
      { userID: alice, deviceID: HOSTILE_DEVICE, keyJSON: '{"device_id":"x"}', streamID: 0 },
    ]);
    await s.keys.storeLocalDeviceKeys([{ userID: alice, deviceID: 'LAPTOP', keyJSON: '{}', streamID: 0, displayName: 'Laptop' }]);
    await s.keys.storeLocalDeviceKeys([{ userID: '@bob:example.org', deviceID: 'BOBS', keyJSON: '{}', streamID: 0 }]);
    await s.keys.storeCrossSigningKeysForUser(alice, new Map([[1, 'bWFzdGVy'], [2, 'c2VsZg==']]));
    await s.keys.storeCrossSigningSigsForTarget(alice, 'ed25519:PHONE', alice, 'ed25519:bWFzdGVy', 'c2lnbmF0dXJl');
    await s.keys.storeCrossSigningSigsForTarget('@bob:example.org', 'ed25519:BOB', alice, 'ed25519:bWFzdGVy', 'Ym9i');
    const session = { roomID: '!r:example.org', firstMessageIndex: 0, forwardedCount: 0, isVerified: false, sessionData: '{}' };
    const old = await s.keyBackup.createKeyBackup(alice, 'm.megolm_backup.v1.curve25519-aes-sha2', '{}');
    await s.keyBackup.upsertBackupKeys(alice, old, [{ ...session, sessionID: 'old' }]);
    const latest = await s.keyBackup.createKeyBackup(alice, 'm.megolm_backup.v1.curve25519-aes-sha2', '{"k":1}');
    await s.keyBackup.upsertBackupKeys(alice, latest, [{ ...session, sessionID: 'a' }, { ...session, sessionID: 'b' }]);
    await s.keyBackup.upsertBackupKeys(alice, latest, [{ ...session, sessionID: 'c' }]);
    await s.keyBackup.deleteKeyBackup(alice, latest);
    return latest;
  } finally {
    await s.close();
  }
}

/** What `matrix-storage keys` prints for KEYS_USER after writeKeysFixture. */
export function expectedKeysOutput(latestVersion: string): unknown {
  const alice = KEYS_USER;
  return {
    user_id: alice,
    devices: [
      { device_id: 'LAPTOP', display_name: 'Laptop', stream_id: 3 },
      { device_id: 'PHONE', display_name: 'Phone', stream_id: 1 },
      { device_id: HOSTILE_DEVICE, display_name: null, stream_id: 2 },
    ],
    cross_signing_keys: {
      master: { user_id: alice, usage: ['master'], keys: { 'ed25519:bWFzdGVy': 'bWFzdGVy' }, signatures: { [alice]: { 'ed25519:PHONE': 'c2lnbmF0dXJl' } } },
      self_signing: { user_id: alice, usage: ['self_signing'], keys: { 'ed25519:c2VsZg': 'c2VsZg' }, signatures: {} },
    },
    key_backup: { version: latestVersion, algorithm: 'm.megolm_backup.v1.curve25519-aes-sha2', key_count: 3, etag: '2', deleted: true },
  };
}

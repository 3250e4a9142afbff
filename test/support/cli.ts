import type { Storage } from '../../src/index.js';
import { main, runCli as runReported } from '../../src/cli/main.js';
import type { CliIO } from '../../src/cli/output.js';

const capture = (): CliIO & { stdout: string[]; stderr: string[] } => {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => { stdout.push(l); }, err: (l) => { stderr.push(l); } };
};

/** Runs a command in-process, returning its exit code and its output (stdout); a failure is thrown, not reported. */
export async function runCli(args: string[]): Promise<{ code: number; out: string }> {
  const io = capture();
  const code = await main(args, io);
  return { code, out: io.stdout.join('\n') };
}

/** Runs a command in-process as the installed CLI does: failures reported on stderr, the exit code returned. */
export async function runCliReported(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = capture();
  const code = await runReported(args, io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
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

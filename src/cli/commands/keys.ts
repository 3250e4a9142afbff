import type { Storage } from '../../index.js';
import { NotFoundError } from '../../types/errors.js';
import { CROSS_SIGNING_USAGE } from '../../types/keys.js';

export interface UserKeysSummary {
  readonly user_id: string;
  /** The devices with keys, sorted by device ID. */
  readonly devices: readonly { device_id: string; display_name: string | null; stream_id: number }[];
  /** By usage (master, self_signing, user_signing), in the Matrix CrossSigningKey shape. */
  readonly cross_signing_keys: Record<string, { user_id: string; usage: string[]; keys: Record<string, string>; signatures: Record<string, Record<string, string>> }>;
  /** The latest backup version (deleted or not), or null if the user has none. */
  readonly key_backup: { version: string; algorithm: string; key_count: number; etag: string; deleted: boolean } | null;
}

/** What `matrix-storage keys USER_ID` prints: a user's devices, cross-signing keys and key backup, as JSON. */
export async function userKeys(storage: Storage, userID: string): Promise<UserKeysSummary> {
  const devices = await storage.keys.deviceKeysForUser(userID, []);
  const crossSigning = await storage.keys.crossSigningKeysForUser(userID);
  let backup: UserKeysSummary['key_backup'] = null;
  try {
    const b = await storage.keyBackup.getKeyBackup(userID, '');
    const count = await storage.keyBackup.countBackupKeys(userID, b.version);
    backup = { version: b.version, algorithm: b.algorithm, key_count: count, etag: b.etag, deleted: b.deleted };
  } catch (e) {
    if (!(e instanceof NotFoundError)) throw e;
  }
  // Object.fromEntries defines own properties, so IDs such as "__proto__" survive into the JSON.
  return {
    user_id: userID,
    devices: devices.map((d) => ({ device_id: d.deviceID, display_name: d.displayName ?? null, stream_id: d.streamID })),
    cross_signing_keys: Object.fromEntries([...crossSigning].map(([purpose, key]) => [CROSS_SIGNING_USAGE[purpose], {
      user_id: key.userID,
      usage: [...key.usage],
      keys: Object.fromEntries(key.keys),
      signatures: Object.fromEntries([...key.signatures].map(([u, sigs]) => [u, Object.fromEntries(sigs)])),
    }])),
    key_backup: backup,
  };
}

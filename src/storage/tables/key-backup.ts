import type { Tx } from './unit-of-work.js';

export interface KeyBackupVersion {
  readonly userID: string;
  /** Decimal string of a global counter: versions are unique across all users. */
  readonly version: string;
  readonly algorithm: string;
  readonly authData: string;
  readonly etag: string;
  readonly deleted: boolean;
}

/** key_backup_versions: a user's server-side key backups, soft-deleted. */
export interface KeyBackupVersionsTable {
  /** Creates a backup version and returns it (the next value of the global counter, as a decimal string). */
  insertKeyBackup(tx: Tx, userID: string, algorithm: string, authData: string, etag: string): Promise<string>;
  /** InvalidInputError for a non-numeric version; no-op for a missing one. */
  updateKeyBackupAuthData(tx: Tx, userID: string, version: string, authData: string): Promise<void>;
  /** InvalidInputError for a non-numeric version; no-op for a missing one. */
  updateKeyBackupETag(tx: Tx, userID: string, version: string, etag: string): Promise<void>;
  /** Soft delete. True iff the version exists (deleting twice is true both times). InvalidInputError if non-numeric. */
  deleteKeyBackup(tx: Tx, userID: string, version: string): Promise<boolean>;
  /**
   * The version's row; "" means the user's latest version, deleted ones included. NotFoundError when there is no
   * such version (or, for "", no version at all); InvalidInputError for a non-numeric version.
   */
  selectKeyBackup(tx: Tx, userID: string, version: string): Promise<KeyBackupVersion>;
}

export interface KeyBackupSession {
  readonly firstMessageIndex: number;
  readonly forwardedCount: number;
  readonly isVerified: boolean;
  readonly sessionData: string;
}

export interface KeyBackupRow extends KeyBackupSession {
  readonly roomID: string;
  readonly sessionID: string;
}

/** roomID -> sessionID -> session. */
export type KeyBackupSessions = Map<string, Map<string, KeyBackupSession>>;

/** key_backups: the backed-up megolm sessions of each (user, version). */
export interface KeyBackupsTable {
  /** Plain insert: ConflictError if (user, room, session, version) exists. */
  insertBackupKey(tx: Tx, userID: string, version: string, row: KeyBackupRow): Promise<void>;
  /** Replaces the session's fields. No-op if missing. */
  updateBackupKey(tx: Tx, userID: string, version: string, row: KeyBackupRow): Promise<void>;
  countKeys(tx: Tx, userID: string, version: string): Promise<number>;
  selectKeys(tx: Tx, userID: string, version: string): Promise<KeyBackupSessions>;
  selectKeysByRoomID(tx: Tx, userID: string, version: string, roomID: string): Promise<KeyBackupSessions>;
  selectKeysByRoomIDAndSessionID(tx: Tx, userID: string, version: string, roomID: string, sessionID: string): Promise<KeyBackupSessions>;
}

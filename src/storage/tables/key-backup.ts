import type { Tx } from './unit-of-work.js';

export interface KeyBackupVersion {
  readonly userID: string;
  /** Decimal string of a global counter: versions are unique across all users. */
  readonly version: string;
  readonly algorithm: string;
  /** The backup's auth_data JSON text, stored verbatim. */
  readonly authData: string;
  /** "" until the first keys are stored, then "1", "2", ...: it changes whenever the backed-up keys do. */
  readonly etag: string;
  readonly deleted: boolean;
}

/**
 * key_backup_versions: a user's server-side key backups, soft-deleted. Versions are decimal strings; a version
 * that is not one (InvalidInputError) is checked before anything is read or written.
 */
export interface KeyBackupVersionsTable {
  /**
   * Creates a backup version (not deleted) and returns it: the next value of a counter shared by all users, as a
   * decimal string, greater than any version handed out before.
   */
  insertKeyBackup(tx: Tx, userID: string, algorithm: string, authData: string, etag: string): Promise<string>;
  /** Replaces the auth data (deleted or not). No-op for a missing version; InvalidInputError if non-numeric. */
  updateKeyBackupAuthData(tx: Tx, userID: string, version: string, authData: string): Promise<void>;
  /**
   * Atomically replaces the etag by its successor ("" or a non-number: "1"; "n": "n+1") and returns the new one:
   * two concurrent bumps give two successive values, never the same. NotFoundError for a missing version;
   * InvalidInputError if non-numeric.
   */
  bumpKeyBackupETag(tx: Tx, userID: string, version: string): Promise<string>;
  /** Soft delete. True iff the version exists (deleting twice is true both times). InvalidInputError if non-numeric. */
  deleteKeyBackup(tx: Tx, userID: string, version: string): Promise<boolean>;
  /**
   * The version's row; "" means the user's latest version, deleted ones included. NotFoundError when there is no
   * such version of this user (or, for "", no version at all); InvalidInputError for a non-numeric version.
   */
  selectKeyBackup(tx: Tx, userID: string, version: string): Promise<KeyBackupVersion>;
}

export interface KeyBackupSession {
  readonly firstMessageIndex: number;
  readonly forwardedCount: number;
  readonly isVerified: boolean;
  /** The encrypted session JSON text, stored verbatim. */
  readonly sessionData: string;
}

export interface KeyBackupRow extends KeyBackupSession {
  readonly roomID: string;
  readonly sessionID: string;
}

/** roomID -> sessionID -> session, both levels sorted by ID. */
export type KeyBackupSessions = Map<string, Map<string, KeyBackupSession>>;

/** key_backups: the backed-up megolm sessions of each (user, version). The version is taken as given (text). */
export interface KeyBackupsTable {
  /**
   * Plain insert: ConflictError if (user, version, room, session) exists, and the existing row is kept. The
   * conflict is detected without failing the statement (ON CONFLICT DO NOTHING), so the transaction goes on.
   */
  insertBackupKey(tx: Tx, userID: string, version: string, row: KeyBackupRow): Promise<void>;
  /** Replaces the session's fields. No-op if missing. */
  updateBackupKey(tx: Tx, userID: string, version: string, row: KeyBackupRow): Promise<void>;
  /** 0 if none. */
  countKeys(tx: Tx, userID: string, version: string): Promise<number>;
  /** Empty map if none (for these and the two filtered forms). */
  selectKeys(tx: Tx, userID: string, version: string): Promise<KeyBackupSessions>;
  selectKeysByRoomID(tx: Tx, userID: string, version: string, roomID: string): Promise<KeyBackupSessions>;
  selectKeysByRoomIDAndSessionID(tx: Tx, userID: string, version: string, roomID: string, sessionID: string): Promise<KeyBackupSessions>;
}

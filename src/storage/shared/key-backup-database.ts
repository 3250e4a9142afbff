import { inject, injectable } from 'inversify';
import { TOKENS } from '../../di/tokens.js';
import { ConflictError, InvalidInputError, KeyBackupDeletedError, NotFoundError } from '../../types/errors.js';
import { checkBoolean, checkCount, checkIdentifier, checkUserID, preview } from '../../types/input.js';
import { checkAlgorithm, checkBackupVersion, checkID, checkText } from '../../types/keys.js';
import type { KeyBackupRow, KeyBackupSession, KeyBackupSessions, KeyBackupTables, KeyBackupVersion, Tx, UnitOfWork } from '../tables/index.js';

/** Which backed-up sessions `getBackupKeys` returns: all, one room's, or one session. */
export interface BackupKeysFilter {
  readonly roomID?: string;
  /** Needs `roomID`. */
  readonly sessionID?: string;
}

/**
 * Whether an uploaded session replaces the stored one, by the Matrix spec's tie-break order
 * (m.megolm_backup.v1.curve25519-aes-sha2): a verified key beats an unverified one; between equally verified
 * keys, the lower first_message_index wins; when that is equal too, the lower forwarded_count wins. An identical
 * session replaces nothing. (Dendrite's if/else-if chain is looser: it lets an unverified key with a lower index
 * replace a verified one.)
 */
export function shouldReplaceRoomKey(stored: KeyBackupSession, uploaded: KeyBackupSession): boolean {
  if (uploaded.isVerified !== stored.isVerified) return uploaded.isVerified;
  if (uploaded.firstMessageIndex !== stored.firstMessageIndex) return uploaded.firstMessageIndex < stored.firstMessageIndex;
  return uploaded.forwardedCount < stored.forwardedCount;
}

function checkUpload(what: string, u: unknown): KeyBackupRow {
  if (typeof u !== 'object' || u === null) throw new InvalidInputError(`${what} must be a backed-up session, got ${preview(u)}`);
  const r = u as KeyBackupRow;
  checkIdentifier(`${what}.roomID`, r.roomID, '!');
  checkID(`${what}.sessionID`, r.sessionID);
  checkCount(`${what}.firstMessageIndex`, r.firstMessageIndex);
  checkCount(`${what}.forwardedCount`, r.forwardedCount);
  checkBoolean(`${what}.isVerified`, r.isVerified);
  checkText(`${what}.sessionData`, r.sessionData);
  return r;
}

/**
 * Server-side key backup (Dendrite's userapi key backup), written once over the two key backup tables.
 * Versions are decimal strings from one counter shared by all users; "" means the user's latest version (only
 * where noted). An unknown version is a NotFoundError, one that is not a number an InvalidInputError; versions
 * are compared as numbers ("007" is "7").
 */
@injectable()
export class KeyBackupDatabase {
  constructor(
    @inject(TOKENS.UnitOfWork) readonly uow: UnitOfWork,
    @inject(TOKENS.KeyBackupTables) readonly tables: KeyBackupTables,
  ) {}

  private get auto() {
    return this.uow.autocommit;
  }

  /** Creates a new backup version (etag "") and returns it: greater than every version handed out before, to anyone. */
  async createKeyBackup(userID: string, algorithm: string, authData: string): Promise<string> {
    checkUserID('user ID', userID);
    checkAlgorithm('algorithm', algorithm);
    checkText('auth data', authData);
    return this.uow.transaction((tx) => this.tables.keyBackupVersions.insertKeyBackup(tx, userID, algorithm, authData, ''));
  }

  /** Replaces the version's auth data (a deleted version's too). NotFoundError for an unknown version. */
  async updateKeyBackupAuthData(userID: string, version: string, authData: string): Promise<void> {
    checkUserID('user ID', userID);
    const v = checkBackupVersion('version', version);
    checkText('auth data', authData);
    await this.uow.transaction(async (tx) => {
      await this.tables.keyBackupVersions.selectKeyBackup(tx, userID, v);
      await this.tables.keyBackupVersions.updateKeyBackupAuthData(tx, userID, v, authData);
    });
  }

  /** Marks the version deleted (its keys stay readable; no new ones are accepted). Deleting twice is fine. NotFoundError if unknown. */
  async deleteKeyBackup(userID: string, version: string): Promise<void> {
    checkUserID('user ID', userID);
    const v = checkBackupVersion('version', version);
    const exists = await this.uow.transaction((tx) => this.tables.keyBackupVersions.deleteKeyBackup(tx, userID, v));
    if (!exists) throw new NotFoundError(`key backup version ${preview(version)} of ${preview(userID)} not found`);
  }

  /** The version ("" for the latest, deleted or not). NotFoundError if unknown, or if the user has none. */
  async getKeyBackup(userID: string, version: string): Promise<KeyBackupVersion> {
    checkUserID('user ID', userID);
    const v = version === '' ? '' : checkBackupVersion('version', version);
    return this.tables.keyBackupVersions.selectKeyBackup(this.auto, userID, v);
  }

  /**
   * The version's sessions (room -> session -> data, sorted): all, one room's, or one session's. An empty map
   * when nothing matches; NotFoundError for an unknown version.
   */
  async getBackupKeys(userID: string, version: string, filter: BackupKeysFilter = {}): Promise<KeyBackupSessions> {
    checkUserID('user ID', userID);
    const v = checkBackupVersion('version', version);
    if (typeof filter !== 'object' || filter === null) throw new InvalidInputError(`the filter must be { roomID?, sessionID? }, got ${preview(filter)}`);
    if (filter.roomID !== undefined) checkIdentifier('room ID', filter.roomID, '!');
    if (filter.sessionID !== undefined) {
      checkID('session ID', filter.sessionID);
      if (filter.roomID === undefined) throw new InvalidInputError('a session ID filter needs a room ID');
    }
    const t = this.tables;
    await t.keyBackupVersions.selectKeyBackup(this.auto, userID, v);
    if (filter.sessionID !== undefined) return t.keyBackups.selectKeysByRoomIDAndSessionID(this.auto, userID, v, filter.roomID!, filter.sessionID);
    if (filter.roomID !== undefined) return t.keyBackups.selectKeysByRoomID(this.auto, userID, v, filter.roomID);
    return t.keyBackups.selectKeys(this.auto, userID, v);
  }

  /** How many sessions the version holds. NotFoundError for an unknown version. */
  async countBackupKeys(userID: string, version: string): Promise<number> {
    checkUserID('user ID', userID);
    const v = checkBackupVersion('version', version);
    await this.tables.keyBackupVersions.selectKeyBackup(this.auto, userID, v);
    return this.tables.keyBackups.countKeys(this.auto, userID, v);
  }

  /**
   * Uploads sessions into a live version: a new (room, session) is stored; an existing one is replaced only when
   * `shouldReplaceRoomKey` says so (several uploads of one session in a call are weighed in order). Returns the
   * number of sessions afterwards and the etag, which moves on ("" -> "1" -> "2" ...) only if something changed.
   * NotFoundError for an unknown version; KeyBackupDeletedError ("backup was deleted") for a deleted one.
   *
   * Order: the sessions first, the etag bump last. A reader never sees a new etag before the keys it stands for,
   * so a client that caches keys under an etag cannot cache stale keys under a new one. The bump is an atomic
   * increment, so concurrent uploads never hand out the same etag for different contents. (Without a transaction,
   * a crash between the two writes leaves new keys under the old etag until the next change; a driver without
   * transactions should keep a user's sessions and version rows in one partition and batch them.)
   */
  async upsertBackupKeys(userID: string, version: string, uploads: readonly KeyBackupRow[]): Promise<{ count: number; etag: string }> {
    checkUserID('user ID', userID);
    const v = checkBackupVersion('version', version);
    if (!Array.isArray(uploads)) throw new InvalidInputError(`uploads must be an array, got ${preview(uploads)}`);
    uploads.forEach((u, i) => checkUpload(`uploads[${i}]`, u));
    return this.uow.transaction(async (tx) => {
      const backup = await this.tables.keyBackupVersions.selectKeyBackup(tx, userID, v);
      if (backup.deleted) throw new KeyBackupDeletedError(`backup was deleted: version ${v} of ${preview(userID)}`);
      const existing = await this.tables.keyBackups.selectKeys(tx, userID, v);
      let changed = false;
      for (const u of uploads) {
        if (await this.upsertOne(tx, userID, v, existing, u)) changed = true;
      }
      const count = await this.tables.keyBackups.countKeys(tx, userID, v);
      const etag = changed ? await this.tables.keyBackupVersions.bumpKeyBackupETag(tx, userID, v) : backup.etag;
      return { count, etag };
    });
  }

  /** Stores one upload against what is known to be stored; returns whether it changed anything. */
  private async upsertOne(tx: Tx, userID: string, version: string, existing: KeyBackupSessions, u: KeyBackupRow): Promise<boolean> {
    const session: KeyBackupSession = {
      firstMessageIndex: u.firstMessageIndex, forwardedCount: u.forwardedCount, isVerified: u.isVerified, sessionData: u.sessionData,
    };
    const row: KeyBackupRow = { roomID: u.roomID, sessionID: u.sessionID, ...session };
    let stored = existing.get(u.roomID)?.get(u.sessionID);
    if (stored === undefined) {
      try {
        await this.tables.keyBackups.insertBackupKey(tx, userID, version, row);
        remember(existing, u.roomID, u.sessionID, session);
        return true;
      } catch (e) {
        // A concurrent upload stored the session first (possible where nothing locks): weigh ours against it.
        if (!(e instanceof ConflictError)) throw e;
        stored = (await this.tables.keyBackups.selectKeysByRoomIDAndSessionID(tx, userID, version, u.roomID, u.sessionID)).get(u.roomID)?.get(u.sessionID);
        if (stored === undefined) throw e;
      }
    }
    if (!shouldReplaceRoomKey(stored, session)) return false;
    await this.tables.keyBackups.updateBackupKey(tx, userID, version, row);
    remember(existing, u.roomID, u.sessionID, session);
    return true;
  }
}

function remember(sessions: KeyBackupSessions, roomID: string, sessionID: string, session: KeyBackupSession): void {
  let room = sessions.get(roomID);
  if (!room) sessions.set(roomID, (room = new Map()));
  room.set(sessionID, session);
}

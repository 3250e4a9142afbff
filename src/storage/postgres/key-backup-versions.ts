import { inject, injectable } from 'inversify';
import { checkBackupVersion } from '../../types/keys.js';
import { keyBackupVersionOf, notFound, type KeyBackupVersionRow } from '../shared/contracts.js';
import type { KeyBackupVersion, KeyBackupVersionsTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';
import { changed } from './values.js';

const COLUMNS = 'user_id AS "userID", version, algorithm, auth_data AS "authData", etag, deleted';

/** The version as the bigint column holds it; InvalidInputError (a rejection: every caller is async) if not a number. */
const versionNumber = (version: string): number => Number(checkBackupVersion('backup version', version));

@injectable()
export class PostgresKeyBackupVersionsTable implements KeyBackupVersionsTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  /** The version is the identity column's next value: one sequence for all users. */
  async insertKeyBackup(tx: Tx, userID: string, algorithm: string, authData: string, etag: string): Promise<string> {
    const r = await this.conn.query<{ version: number }>(tx, `INSERT INTO userapi_key_backup_versions (user_id, algorithm, auth_data, etag)
      VALUES ($1, $2, $3, $4) RETURNING version`, [userID, algorithm, authData, etag]);
    return String(r.rows[0]!.version);
  }

  async updateKeyBackupAuthData(tx: Tx, userID: string, version: string, authData: string): Promise<void> {
    const v = versionNumber(version);
    await this.conn.query(tx, 'UPDATE userapi_key_backup_versions SET auth_data = $1 WHERE user_id = $2 AND version = $3', [authData, userID, v]);
  }

  /**
   * One UPDATE ... RETURNING: the successor is computed from the row as it is when the update runs. A concurrent
   * bump holds the row lock until its transaction ends; this one then re-reads the row it committed (READ
   * COMMITTED re-evaluates an UPDATE against the newest row version), so two bumps give two successive values.
   */
  async bumpKeyBackupETag(tx: Tx, userID: string, version: string): Promise<string> {
    const v = versionNumber(version);
    const r = await this.conn.query<{ etag: string }>(tx, `UPDATE userapi_key_backup_versions
      SET etag = (CASE WHEN etag ~ '^[0-9]{1,15}$' THEN etag::bigint ELSE 0 END + 1)::text
      WHERE user_id = $1 AND version = $2 RETURNING etag`, [userID, v]);
    const row = r.rows[0];
    if (!row) throw notFound('key backup version', version);
    return row.etag;
  }

  async deleteKeyBackup(tx: Tx, userID: string, version: string): Promise<boolean> {
    const v = versionNumber(version);
    const r = await this.conn.query(tx, 'UPDATE userapi_key_backup_versions SET deleted = true WHERE user_id = $1 AND version = $2', [userID, v]);
    return changed(r) === 1;
  }

  async selectKeyBackup(tx: Tx, userID: string, version: string): Promise<KeyBackupVersion> {
    const r = version === ''
      ? await this.conn.query<KeyBackupVersionRow>(tx, `SELECT ${COLUMNS} FROM userapi_key_backup_versions WHERE user_id = $1 ORDER BY version DESC LIMIT 1`, [userID])
      : await this.conn.query<KeyBackupVersionRow>(tx, `SELECT ${COLUMNS} FROM userapi_key_backup_versions WHERE user_id = $1 AND version = $2`,
        [userID, versionNumber(version)]);
    const row = r.rows[0];
    return keyBackupVersionOf(row, userID, version);
  }
}

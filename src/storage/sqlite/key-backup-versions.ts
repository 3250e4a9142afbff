import { inject, injectable } from 'inversify';
import { keyBackupVersionOf, notFound, type KeyBackupVersionRow } from '../shared/contracts.js';
import { checkBackupVersion } from '../../types/keys.js';
import type { KeyBackupVersion, KeyBackupVersionsTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';

const COLUMNS = 'user_id AS userID, version, algorithm, auth_data AS authData, etag, deleted';

@injectable()
export class SqliteKeyBackupVersionsTable implements KeyBackupVersionsTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertKeyBackup(tx: Tx, userID: string, algorithm: string, authData: string, etag: string): Promise<string> {
    return this.conn.run(tx, (c) => String((c.stmt(`INSERT INTO userapi_key_backup_versions (user_id, algorithm, auth_data, etag)
      VALUES (?, ?, ?, ?) RETURNING version`).get(userID, algorithm, authData, etag) as { version: number }).version));
  }

  updateKeyBackupAuthData(tx: Tx, userID: string, version: string, authData: string): Promise<void> {
    return this.conn.run(tx, (c) => {
      const v = Number(checkBackupVersion('backup version', version));
      c.stmt('UPDATE userapi_key_backup_versions SET auth_data = ? WHERE user_id = ? AND version = ?').run(authData, userID, v);
    });
  }

  bumpKeyBackupETag(tx: Tx, userID: string, version: string): Promise<string> {
    return this.conn.run(tx, (c) => {
      const v = Number(checkBackupVersion('backup version', version));
      // One UPDATE ... RETURNING: the successor is computed from the row as it is when the update runs.
      const row = c.stmt(`UPDATE userapi_key_backup_versions
        SET etag = CAST(CASE WHEN etag != '' AND etag NOT GLOB '*[^0-9]*' AND length(etag) <= 15 THEN CAST(etag AS INTEGER) ELSE 0 END + 1 AS TEXT)
        WHERE user_id = ? AND version = ? RETURNING etag`).get(userID, v) as { etag: string } | undefined;
      if (!row) throw notFound('key backup version', version);
      return row.etag;
    });
  }

  deleteKeyBackup(tx: Tx, userID: string, version: string): Promise<boolean> {
    return this.conn.run(tx, (c) => {
      const v = Number(checkBackupVersion('backup version', version));
      return c.stmt('UPDATE userapi_key_backup_versions SET deleted = 1 WHERE user_id = ? AND version = ?').run(userID, v).changes === 1;
    });
  }

  selectKeyBackup(tx: Tx, userID: string, version: string): Promise<KeyBackupVersion> {
    return this.conn.run(tx, (c) => {
      const row = (version === ''
        ? c.stmt(`SELECT ${COLUMNS} FROM userapi_key_backup_versions WHERE user_id = ? ORDER BY version DESC LIMIT 1`).get(userID)
        : c.stmt(`SELECT ${COLUMNS} FROM userapi_key_backup_versions WHERE user_id = ? AND version = ?`)
          .get(userID, Number(checkBackupVersion('backup version', version)))) as KeyBackupVersionRow | undefined;
      return keyBackupVersionOf(row, userID, version);
    });
  }
}

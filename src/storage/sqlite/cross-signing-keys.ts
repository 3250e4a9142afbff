import { inject, injectable } from 'inversify';
import { CorruptionError, InvalidInputError } from '../../types/errors.js';
import { isCrossSigningKeyPurpose, type CrossSigningKeyPurpose } from '../../types/keys.js';
import type { CrossSigningKeysTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';

@injectable()
export class SqliteCrossSigningKeysTable implements CrossSigningKeysTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  selectCrossSigningKeysForUser(tx: Tx, userID: string): Promise<Map<CrossSigningKeyPurpose, string>> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt('SELECT key_type AS purpose, key_data AS data FROM keyserver_cross_signing_keys WHERE user_id = ? ORDER BY key_type')
        .all(userID) as { purpose: number; data: string }[];
      const out = new Map<CrossSigningKeyPurpose, string>();
      for (const r of rows) {
        if (!isCrossSigningKeyPurpose(r.purpose)) throw new CorruptionError(`cross-signing key of ${userID} has unknown purpose ${r.purpose}`);
        out.set(r.purpose, r.data);
      }
      return out;
    });
  }

  upsertCrossSigningKeysForUser(tx: Tx, userID: string, purpose: CrossSigningKeyPurpose, keyData: string): Promise<void> {
    return this.conn.run(tx, (c) => {
      if (!isCrossSigningKeyPurpose(purpose)) throw new InvalidInputError(`cross-signing key purposes are 1, 2 or 3, got ${String(purpose)}`);
      c.stmt(`INSERT INTO keyserver_cross_signing_keys (user_id, key_type, key_data) VALUES (?, ?, ?)
        ON CONFLICT (user_id, key_type) DO UPDATE SET key_data = excluded.key_data`).run(userID, purpose, keyData);
    });
  }
}

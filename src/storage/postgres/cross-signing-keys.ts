import { inject, injectable } from 'inversify';
import { CorruptionError, InvalidInputError } from '../../types/errors.js';
import { isCrossSigningKeyPurpose, type CrossSigningKeyPurpose } from '../../types/keys.js';
import type { CrossSigningKeysTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

@injectable()
export class PostgresCrossSigningKeysTable implements CrossSigningKeysTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async selectCrossSigningKeysForUser(tx: Tx, userID: string): Promise<Map<CrossSigningKeyPurpose, string>> {
    const r = await this.conn.query<{ purpose: number; data: string }>(tx, `SELECT key_type AS purpose, key_data AS data
      FROM keyserver_cross_signing_keys WHERE user_id = $1 ORDER BY key_type`, [userID]);
    const out = new Map<CrossSigningKeyPurpose, string>();
    for (const row of r.rows) {
      if (!isCrossSigningKeyPurpose(row.purpose)) throw new CorruptionError(`cross-signing key of ${userID} has unknown purpose ${row.purpose}`);
      out.set(row.purpose, row.data);
    }
    return out;
  }

  async upsertCrossSigningKeysForUser(tx: Tx, userID: string, purpose: CrossSigningKeyPurpose, keyData: string): Promise<void> {
    if (!isCrossSigningKeyPurpose(purpose)) throw new InvalidInputError(`cross-signing key purposes are 1, 2 or 3, got ${String(purpose)}`);
    await this.conn.query(tx, `INSERT INTO keyserver_cross_signing_keys (user_id, key_type, key_data) VALUES ($1, $2, $3)
      ON CONFLICT (user_id, key_type) DO UPDATE SET key_data = excluded.key_data`, [userID, purpose, keyData]);
  }
}

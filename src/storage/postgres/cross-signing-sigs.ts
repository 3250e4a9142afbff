import { inject, injectable } from 'inversify';
import type { CrossSigningSigsTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

@injectable()
export class PostgresCrossSigningSigsTable implements CrossSigningSigsTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async selectCrossSigningSigsForTarget(tx: Tx, targetUserID: string, targetKeyID: string): Promise<Map<string, Map<string, string>>> {
    const r = await this.conn.query<{ originUser: string; originKey: string; signature: string }>(tx, `SELECT origin_user_id AS "originUser",
      origin_key_id AS "originKey", signature FROM keyserver_cross_signing_sigs
      WHERE target_user_id = $1 AND target_key_id = $2 ORDER BY origin_user_id`, [targetUserID, targetKeyID]);
    const out = new Map<string, Map<string, string>>();
    for (const row of r.rows) {
      let byKey = out.get(row.originUser);
      if (!byKey) out.set(row.originUser, (byKey = new Map()));
      byKey.set(row.originKey, row.signature);
    }
    return out;
  }

  async upsertCrossSigningSigsForTarget(
    tx: Tx, originUserID: string, originKeyID: string, targetUserID: string, targetKeyID: string, signature: string,
  ): Promise<void> {
    await this.conn.query(tx, `INSERT INTO keyserver_cross_signing_sigs (origin_user_id, origin_key_id, target_user_id, target_key_id, signature)
      VALUES ($1, $2, $3, $4, $5) ON CONFLICT (target_user_id, target_key_id, origin_user_id)
      DO UPDATE SET origin_key_id = excluded.origin_key_id, signature = excluded.signature`,
    [originUserID, originKeyID, targetUserID, targetKeyID, signature]);
  }

  async deleteCrossSigningSigsForTarget(tx: Tx, targetUserID: string, targetKeyID: string): Promise<void> {
    await this.conn.query(tx, 'DELETE FROM keyserver_cross_signing_sigs WHERE target_user_id = $1 AND target_key_id = $2', [targetUserID, targetKeyID]);
  }
}

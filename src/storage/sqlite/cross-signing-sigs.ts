import { inject, injectable } from 'inversify';
import type { CrossSigningSigsTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';

@injectable()
export class SqliteCrossSigningSigsTable implements CrossSigningSigsTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  selectCrossSigningSigsForTarget(tx: Tx, targetUserID: string, targetKeyID: string): Promise<Map<string, Map<string, string>>> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT origin_user_id AS originUser, origin_key_id AS originKey, signature FROM keyserver_cross_signing_sigs
        WHERE target_user_id = ? AND target_key_id = ? ORDER BY origin_user_id`).all(targetUserID, targetKeyID) as
        { originUser: string; originKey: string; signature: string }[];
      const out = new Map<string, Map<string, string>>();
      for (const r of rows) {
        let byKey = out.get(r.originUser);
        if (!byKey) out.set(r.originUser, (byKey = new Map()));
        byKey.set(r.originKey, r.signature);
      }
      return out;
    });
  }

  upsertCrossSigningSigsForTarget(
    tx: Tx, originUserID: string, originKeyID: string, targetUserID: string, targetKeyID: string, signature: string,
  ): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt(`INSERT INTO keyserver_cross_signing_sigs (origin_user_id, origin_key_id, target_user_id, target_key_id, signature)
        VALUES (?, ?, ?, ?, ?) ON CONFLICT (target_user_id, target_key_id, origin_user_id)
        DO UPDATE SET origin_key_id = excluded.origin_key_id, signature = excluded.signature`)
        .run(originUserID, originKeyID, targetUserID, targetKeyID, signature);
    });
  }

  deleteCrossSigningSigsForTarget(tx: Tx, targetUserID: string, targetKeyID: string): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt('DELETE FROM keyserver_cross_signing_sigs WHERE target_user_id = ? AND target_key_id = ?').run(targetUserID, targetKeyID);
    });
  }
}

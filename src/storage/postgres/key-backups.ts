import { inject, injectable } from 'inversify';
import { duplicate } from '../shared/contracts.js';
import type { KeyBackupRow, KeyBackupSessions, KeyBackupsTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';
import { changed } from './values.js';

const SELECT = `SELECT room_id AS "roomID", session_id AS "sessionID", first_message_index AS "firstMessageIndex",
  forwarded_count AS "forwardedCount", is_verified AS "isVerified", session_data AS "sessionData" FROM userapi_key_backups
  WHERE user_id = $1 AND version = $2`;
const ORDER = 'ORDER BY room_id, session_id';

function sessions(rows: readonly KeyBackupRow[]): KeyBackupSessions {
  const out: KeyBackupSessions = new Map();
  for (const r of rows) {
    let room = out.get(r.roomID);
    if (!room) out.set(r.roomID, (room = new Map()));
    room.set(r.sessionID, {
      firstMessageIndex: r.firstMessageIndex, forwardedCount: r.forwardedCount, isVerified: r.isVerified, sessionData: r.sessionData,
    });
  }
  return out;
}

@injectable()
export class PostgresKeyBackupsTable implements KeyBackupsTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  /** DO NOTHING and a row count rather than a unique violation, which would abort the caller's transaction. */
  async insertBackupKey(tx: Tx, userID: string, version: string, row: KeyBackupRow): Promise<void> {
    const r = await this.conn.query(tx, `INSERT INTO userapi_key_backups (user_id, version, room_id, session_id, first_message_index,
      forwarded_count, is_verified, session_data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
    [userID, version, row.roomID, row.sessionID, row.firstMessageIndex, row.forwardedCount, row.isVerified, row.sessionData]);
    if (changed(r) === 0) throw duplicate('backed-up session', { userID, version, roomID: row.roomID, sessionID: row.sessionID });
  }

  async updateBackupKey(tx: Tx, userID: string, version: string, row: KeyBackupRow): Promise<void> {
    await this.conn.query(tx, `UPDATE userapi_key_backups SET first_message_index = $1, forwarded_count = $2, is_verified = $3, session_data = $4
      WHERE user_id = $5 AND version = $6 AND room_id = $7 AND session_id = $8`,
    [row.firstMessageIndex, row.forwardedCount, row.isVerified, row.sessionData, userID, version, row.roomID, row.sessionID]);
  }

  async countKeys(tx: Tx, userID: string, version: string): Promise<number> {
    const r = await this.conn.query<{ n: number }>(tx, 'SELECT COUNT(*) AS n FROM userapi_key_backups WHERE user_id = $1 AND version = $2', [userID, version]);
    return r.rows[0]!.n;
  }

  async selectKeys(tx: Tx, userID: string, version: string): Promise<KeyBackupSessions> {
    return sessions((await this.conn.query<KeyBackupRow>(tx, `${SELECT} ${ORDER}`, [userID, version])).rows);
  }

  async selectKeysByRoomID(tx: Tx, userID: string, version: string, roomID: string): Promise<KeyBackupSessions> {
    return sessions((await this.conn.query<KeyBackupRow>(tx, `${SELECT} AND room_id = $3 ${ORDER}`, [userID, version, roomID])).rows);
  }

  async selectKeysByRoomIDAndSessionID(tx: Tx, userID: string, version: string, roomID: string, sessionID: string): Promise<KeyBackupSessions> {
    return sessions((await this.conn.query<KeyBackupRow>(tx, `${SELECT} AND room_id = $3 AND session_id = $4 ${ORDER}`,
      [userID, version, roomID, sessionID])).rows);
  }
}

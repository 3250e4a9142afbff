import { inject, injectable } from 'inversify';
import { duplicate } from '../shared/contracts.js';
import type { KeyBackupRow, KeyBackupSessions, KeyBackupsTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { bool } from './values.js';

interface Row {
  roomID: string;
  sessionID: string;
  firstMessageIndex: number;
  forwardedCount: number;
  isVerified: number;
  sessionData: string;
}

const SELECT = `SELECT room_id AS roomID, session_id AS sessionID, first_message_index AS firstMessageIndex,
  forwarded_count AS forwardedCount, is_verified AS isVerified, session_data AS sessionData FROM userapi_key_backups
  WHERE user_id = ? AND version = ?`;
const ORDER = 'ORDER BY room_id, session_id';

function sessions(rows: Row[]): KeyBackupSessions {
  const out: KeyBackupSessions = new Map();
  for (const r of rows) {
    let room = out.get(r.roomID);
    if (!room) out.set(r.roomID, (room = new Map()));
    room.set(r.sessionID, {
      firstMessageIndex: r.firstMessageIndex, forwardedCount: r.forwardedCount, isVerified: r.isVerified === 1, sessionData: r.sessionData,
    });
  }
  return out;
}

@injectable()
export class SqliteKeyBackupsTable implements KeyBackupsTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertBackupKey(tx: Tx, userID: string, version: string, row: KeyBackupRow): Promise<void> {
    return this.conn.run(tx, (c) => {
      const r = c.stmt(`INSERT INTO userapi_key_backups (user_id, version, room_id, session_id, first_message_index, forwarded_count,
        is_verified, session_data) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
        .run(userID, version, row.roomID, row.sessionID, row.firstMessageIndex, row.forwardedCount, bool(row.isVerified), row.sessionData);
      if (r.changes === 0) throw duplicate('backed-up session', { userID, version, roomID: row.roomID, sessionID: row.sessionID });
    });
  }

  updateBackupKey(tx: Tx, userID: string, version: string, row: KeyBackupRow): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt(`UPDATE userapi_key_backups SET first_message_index = ?, forwarded_count = ?, is_verified = ?, session_data = ?
        WHERE user_id = ? AND version = ? AND room_id = ? AND session_id = ?`)
        .run(row.firstMessageIndex, row.forwardedCount, bool(row.isVerified), row.sessionData, userID, version, row.roomID, row.sessionID);
    });
  }

  countKeys(tx: Tx, userID: string, version: string): Promise<number> {
    return this.conn.run(tx, (c) => (c.stmt('SELECT COUNT(*) AS n FROM userapi_key_backups WHERE user_id = ? AND version = ?')
      .get(userID, version) as { n: number }).n);
  }

  selectKeys(tx: Tx, userID: string, version: string): Promise<KeyBackupSessions> {
    return this.conn.run(tx, (c) => sessions(c.stmt(`${SELECT} ${ORDER}`).all(userID, version) as Row[]));
  }

  selectKeysByRoomID(tx: Tx, userID: string, version: string, roomID: string): Promise<KeyBackupSessions> {
    return this.conn.run(tx, (c) => sessions(c.stmt(`${SELECT} AND room_id = ? ${ORDER}`).all(userID, version, roomID) as Row[]));
  }

  selectKeysByRoomIDAndSessionID(tx: Tx, userID: string, version: string, roomID: string, sessionID: string): Promise<KeyBackupSessions> {
    return this.conn.run(tx, (c) => sessions(c.stmt(`${SELECT} AND room_id = ? AND session_id = ? ${ORDER}`)
      .all(userID, version, roomID, sessionID) as Row[]));
  }
}

import { inject, injectable } from 'inversify';
import { duplicate } from '../shared/contracts.js';
import type { KeyBackupRow, KeyBackupSessions, KeyBackupsTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { docId } from './ids.js';
import { codePointCompare } from './order.js';

interface SessionDoc {
  version: string;
  roomID: string;
  sessionID: string;
  firstMessageIndex: number;
  forwardedCount: number;
  isVerified: boolean;
  sessionData: string;
}

function sessions(rows: SessionDoc[]): KeyBackupSessions {
  const out: KeyBackupSessions = new Map();
  rows.sort((a, b) => codePointCompare(a.roomID, b.roomID) || codePointCompare(a.sessionID, b.sessionID));
  for (const r of rows) {
    let room = out.get(r.roomID);
    if (!room) out.set(r.roomID, (room = new Map()));
    room.set(r.sessionID, { firstMessageIndex: r.firstMessageIndex, forwardedCount: r.forwardedCount, isVerified: r.isVerified, sessionData: r.sessionData });
  }
  return out;
}

const FIELDS = 'c.version, c.roomID, c.sessionID, c.firstMessageIndex, c.forwardedCount, c.isVerified, c.sessionData';

/** key_backups on Cosmos DB: a document per (version, room, session) in the user's backup partition `backup|<user ID>`. */
@injectable()
export class CosmosKeyBackupsTable implements KeyBackupsTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private ref(userID: string, version: string, roomID: string, sessionID: string) {
    return { id: docId('s', version, roomID, sessionID), pk: this.conn.pk('backup', userID) };
  }

  async insertBackupKey(_tx: Tx, userID: string, version: string, row: KeyBackupRow): Promise<void> {
    const doc: SessionDoc = { version, ...row };
    // The user kept as a field too: the partition key may hold it only hashed (see ids.ts).
    if (!(await this.conn.requests.create('keyBackups.insert', { ...this.ref(userID, version, row.roomID, row.sessionID), k: 'backup_session', ...doc, userID }))) {
      throw duplicate('backed-up session', { userID, version, roomID: row.roomID, sessionID: row.sessionID });
    }
  }

  async updateBackupKey(_tx: Tx, userID: string, version: string, row: KeyBackupRow): Promise<void> {
    const { id, pk } = this.ref(userID, version, row.roomID, row.sessionID);
    await this.conn.requests.patch('keyBackups.update', id, pk, [
      { op: 'set', path: '/firstMessageIndex', value: row.firstMessageIndex },
      { op: 'set', path: '/forwardedCount', value: row.forwardedCount },
      { op: 'set', path: '/isVerified', value: row.isVerified },
      { op: 'set', path: '/sessionData', value: row.sessionData },
    ]);
  }

  private select(userID: string, version: string, filter: string, parameters: { name: string; value: string }[]): Promise<SessionDoc[]> {
    return this.conn.requests.query<SessionDoc>('keyBackups.select', this.conn.pk('backup', userID),
      `SELECT ${FIELDS} FROM c WHERE c.pk = @pk AND c.k = 'backup_session' AND c.version = @version ${filter}`,
      [{ name: '@version', value: version }, ...parameters]);
  }

  async countKeys(_tx: Tx, userID: string, version: string): Promise<number> {
    const [n] = await this.conn.requests.query<number>('keyBackups.count', this.conn.pk('backup', userID),
      "SELECT VALUE COUNT(1) FROM c WHERE c.pk = @pk AND c.k = 'backup_session' AND c.version = @version", [{ name: '@version', value: version }]);
    return n ?? 0;
  }

  async selectKeys(_tx: Tx, userID: string, version: string): Promise<KeyBackupSessions> {
    return sessions(await this.select(userID, version, '', []));
  }

  async selectKeysByRoomID(_tx: Tx, userID: string, version: string, roomID: string): Promise<KeyBackupSessions> {
    return sessions(await this.select(userID, version, 'AND c.roomID = @room', [{ name: '@room', value: roomID }]));
  }

  async selectKeysByRoomIDAndSessionID(_tx: Tx, userID: string, version: string, roomID: string, sessionID: string): Promise<KeyBackupSessions> {
    return sessions(await this.select(userID, version, 'AND c.roomID = @room AND c.sessionID = @session',
      [{ name: '@room', value: roomID }, { name: '@session', value: sessionID }]));
  }
}

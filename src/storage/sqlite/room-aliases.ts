import { inject, injectable } from 'inversify';
import { duplicate } from '../shared/contracts.js';
import type { RoomAliasesTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { isUniqueViolation } from './values.js';

@injectable()
export class SqliteRoomAliasesTable implements RoomAliasesTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertRoomAlias(tx: Tx, alias: string, roomID: string, creatorUserID: string): Promise<void> {
    return this.conn.run(tx, (c) => {
      try {
        c.stmt('INSERT INTO roomserver_room_aliases (alias, room_id, creator_id) VALUES (?, ?, ?)').run(alias, roomID, creatorUserID);
      } catch (e) {
        if (isUniqueViolation(e)) throw duplicate('room alias', alias);
        throw e;
      }
    });
  }

  selectRoomIDFromAlias(tx: Tx, alias: string): Promise<string | null> {
    return this.conn.run(tx, (c) => (c.stmt('SELECT room_id AS v FROM roomserver_room_aliases WHERE alias = ?').get(alias) as { v: string } | undefined)?.v ?? null);
  }

  selectAliasesFromRoomID(tx: Tx, roomID: string): Promise<string[]> {
    return this.conn.run(tx, (c) => (c.stmt('SELECT alias FROM roomserver_room_aliases WHERE room_id = ? ORDER BY rowid').all(roomID) as
      { alias: string }[]).map((r) => r.alias));
  }

  selectCreatorIDFromAlias(tx: Tx, alias: string): Promise<string | null> {
    return this.conn.run(tx, (c) => (c.stmt('SELECT creator_id AS v FROM roomserver_room_aliases WHERE alias = ?').get(alias) as { v: string } | undefined)?.v ?? null);
  }

  deleteRoomAlias(tx: Tx, alias: string): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt('DELETE FROM roomserver_room_aliases WHERE alias = ?').run(alias);
    });
  }

  moveRoomAliases(tx: Tx, oldRoomID: string, newRoomID: string, creatorUserID: string): Promise<string[]> {
    return this.conn.run(tx, (c) => (c.stmt('UPDATE roomserver_room_aliases SET room_id = ?, creator_id = ? WHERE room_id = ? RETURNING alias, rowid AS seq')
      .all(newRoomID, creatorUserID, oldRoomID) as { alias: string; seq: number }[]).sort((a, b) => a.seq - b.seq).map((r) => r.alias));
  }
}

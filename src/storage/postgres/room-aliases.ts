import { inject, injectable } from 'inversify';
import { duplicate } from '../shared/contracts.js';
import type { RoomAliasesTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';
import { changed } from './values.js';

@injectable()
export class PostgresRoomAliasesTable implements RoomAliasesTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  /**
   * ON CONFLICT DO NOTHING and a row count, rather than catching the unique violation: on PostgreSQL a failed
   * statement aborts the whole transaction, and the caller may want to go on after a ConflictError.
   */
  async insertRoomAlias(tx: Tx, alias: string, roomID: string, creatorUserID: string): Promise<void> {
    const r = await this.conn.query(tx, `INSERT INTO roomserver_room_aliases (alias, room_id, creator_id) VALUES ($1, $2, $3)
      ON CONFLICT (alias) DO NOTHING`, [alias, roomID, creatorUserID]);
    if (changed(r) === 0) throw duplicate('room alias', alias);
  }

  async selectRoomIDFromAlias(tx: Tx, alias: string): Promise<string | null> {
    const r = await this.conn.query<{ v: string }>(tx, 'SELECT room_id AS v FROM roomserver_room_aliases WHERE alias = $1', [alias]);
    return r.rows[0]?.v ?? null;
  }

  async selectAliasesFromRoomID(tx: Tx, roomID: string): Promise<string[]> {
    const r = await this.conn.query<{ alias: string }>(tx, 'SELECT alias FROM roomserver_room_aliases WHERE room_id = $1 ORDER BY insertion', [roomID]);
    return r.rows.map((row) => row.alias);
  }

  async selectCreatorIDFromAlias(tx: Tx, alias: string): Promise<string | null> {
    const r = await this.conn.query<{ v: string }>(tx, 'SELECT creator_id AS v FROM roomserver_room_aliases WHERE alias = $1', [alias]);
    return r.rows[0]?.v ?? null;
  }

  async deleteRoomAlias(tx: Tx, alias: string): Promise<void> {
    await this.conn.query(tx, 'DELETE FROM roomserver_room_aliases WHERE alias = $1', [alias]);
  }

  async moveRoomAliases(tx: Tx, oldRoomID: string, newRoomID: string, creatorUserID: string): Promise<string[]> {
    const r = await this.conn.query<{ alias: string; seq: number }>(tx, `UPDATE roomserver_room_aliases SET room_id = $1, creator_id = $2
      WHERE room_id = $3 RETURNING alias, insertion AS seq`, [newRoomID, creatorUserID, oldRoomID]);
    return r.rows.sort((a, b) => Number(a.seq) - Number(b.seq)).map((row) => row.alias);
  }
}

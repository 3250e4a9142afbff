import { inject, injectable } from 'inversify';
import type { PublishedTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

@injectable()
export class PostgresPublishedTable implements PublishedTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async upsertRoomPublished(tx: Tx, roomID: string, published: boolean): Promise<void> {
    await this.conn.query(tx, `INSERT INTO roomserver_published (room_id, published) VALUES ($1, $2)
      ON CONFLICT (room_id) DO UPDATE SET published = excluded.published`, [roomID, published]);
  }

  async selectPublishedFromRoomID(tx: Tx, roomID: string): Promise<boolean> {
    const r = await this.conn.query<{ published: boolean }>(tx, 'SELECT published FROM roomserver_published WHERE room_id = $1', [roomID]);
    return r.rows[0]?.published === true;
  }

  async selectAllPublishedRooms(tx: Tx, published: boolean): Promise<string[]> {
    const r = await this.conn.query<{ id: string }>(tx, 'SELECT room_id AS id FROM roomserver_published WHERE published = $1 ORDER BY room_id COLLATE "C"',
      [published]);
    return r.rows.map((row) => row.id);
  }
}

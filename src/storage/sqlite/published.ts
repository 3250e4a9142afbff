import { inject, injectable } from 'inversify';
import type { PublishedTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { bool } from './values.js';

@injectable()
export class SqlitePublishedTable implements PublishedTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  upsertRoomPublished(tx: Tx, roomID: string, published: boolean): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt(`INSERT INTO roomserver_published (room_id, published) VALUES (?, ?)
        ON CONFLICT (room_id) DO UPDATE SET published = excluded.published`).run(roomID, bool(published));
    });
  }

  selectPublishedFromRoomID(tx: Tx, roomID: string): Promise<boolean> {
    return this.conn.run(tx, (c) => (c.stmt('SELECT published FROM roomserver_published WHERE room_id = ?').get(roomID) as
      { published: number } | undefined)?.published === 1);
  }

  selectAllPublishedRooms(tx: Tx, published: boolean): Promise<string[]> {
    return this.conn.run(tx, (c) => (c.stmt('SELECT room_id AS id FROM roomserver_published WHERE published = ? ORDER BY room_id')
      .all(bool(published)) as { id: string }[]).map((r) => r.id));
  }
}

import { inject, injectable } from 'inversify';
import type { Publication, PublishedTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { bool } from './values.js';

@injectable()
export class SqlitePublishedTable implements PublishedTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  upsertRoomPublished(tx: Tx, roomID: string, published: boolean, appserviceID = '', networkID = ''): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt(`INSERT INTO roomserver_published (room_id, appservice_id, network_id, published) VALUES (?, ?, ?, ?)
        ON CONFLICT (room_id, appservice_id, network_id) DO UPDATE SET published = excluded.published`).run(roomID, appserviceID, networkID, bool(published));
    });
  }

  selectPublishedFromRoomID(tx: Tx, roomID: string): Promise<boolean> {
    return this.conn.run(tx, (c) => c.stmt('SELECT 1 FROM roomserver_published WHERE room_id = ? AND published = 1 LIMIT 1').get(roomID) !== undefined);
  }

  selectRoomPublications(tx: Tx, roomID: string): Promise<Publication[]> {
    return this.conn.run(tx, (c) => (c.stmt(`SELECT appservice_id AS appserviceID, network_id AS networkID, published FROM roomserver_published
      WHERE room_id = ? ORDER BY appservice_id, network_id`).all(roomID) as { appserviceID: string; networkID: string; published: number }[])
      .map((r) => ({ appserviceID: r.appserviceID, networkID: r.networkID, published: r.published === 1 })));
  }

  selectAllPublishedRooms(tx: Tx, published: boolean, networkID = '', includeAllNetworks = true): Promise<string[]> {
    const everyNetwork = networkID === '' && includeAllNetworks;
    return this.conn.run(tx, (c) => (c.stmt(`SELECT DISTINCT room_id AS id FROM roomserver_published
      WHERE published = ? AND (? = 1 OR network_id = ?) ORDER BY room_id`)
      .all(bool(published), bool(everyNetwork), networkID) as { id: string }[]).map((r) => r.id));
  }
}

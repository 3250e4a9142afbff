import { inject, injectable } from 'inversify';
import type { Publication, PublishedTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

@injectable()
export class PostgresPublishedTable implements PublishedTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async upsertRoomPublished(tx: Tx, roomID: string, published: boolean, appserviceID = '', networkID = ''): Promise<void> {
    await this.conn.query(tx, `INSERT INTO roomserver_published (room_id, appservice_id, network_id, published) VALUES ($1, $2, $3, $4)
      ON CONFLICT (room_id, appservice_id, network_id) DO UPDATE SET published = excluded.published`, [roomID, appserviceID, networkID, published]);
  }

  async selectPublishedFromRoomID(tx: Tx, roomID: string): Promise<boolean> {
    const r = await this.conn.query(tx, 'SELECT 1 FROM roomserver_published WHERE room_id = $1 AND published LIMIT 1', [roomID]);
    return r.rows.length > 0;
  }

  async selectRoomPublications(tx: Tx, roomID: string): Promise<Publication[]> {
    const r = await this.conn.query<Publication>(tx, `SELECT appservice_id AS "appserviceID", network_id AS "networkID", published
      FROM roomserver_published WHERE room_id = $1 ORDER BY appservice_id, network_id`, [roomID]);
    return r.rows.map((row) => ({ appserviceID: row.appserviceID, networkID: row.networkID, published: row.published }));
  }

  async selectAllPublishedRooms(tx: Tx, published: boolean, networkID = '', includeAllNetworks = true): Promise<string[]> {
    const everyNetwork = networkID === '' && includeAllNetworks;
    const r = await this.conn.query<{ id: string }>(tx, `SELECT DISTINCT room_id AS id FROM roomserver_published
      WHERE published = $1 AND ($2::boolean OR network_id = $3) ORDER BY id`, [published, everyNetwork, networkID]);
    return r.rows.map((row) => row.id);
  }
}

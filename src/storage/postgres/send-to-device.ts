import { inject, injectable } from 'inversify';
import type { SendToDeviceRow, SendToDeviceTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

@injectable()
export class PostgresSendToDeviceTable implements SendToDeviceTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  /** The position is the identity column's next value: never reused, even after the newest messages are deleted. */
  async insertSendToDeviceMessage(tx: Tx, userID: string, deviceID: string, content: string, sentAt: number): Promise<number> {
    const r = await this.conn.query<{ id: number }>(tx, `INSERT INTO syncapi_send_to_device (user_id, device_id, content, sent_at)
      VALUES ($1, $2, $3, $4) RETURNING id`, [userID, deviceID, content, sentAt]);
    return r.rows[0]!.id;
  }

  async selectSendToDeviceMessages(tx: Tx, userID: string, deviceID: string, from: number, to: number) {
    const r = await this.conn.query<SendToDeviceRow>(tx, `SELECT id, user_id AS "userID", device_id AS "deviceID", content FROM syncapi_send_to_device
      WHERE user_id = $1 AND device_id = $2 AND id > $3 AND id <= $4 ORDER BY id`, [userID, deviceID, from, to]);
    const events = r.rows;
    return { lastPosition: events.length > 0 ? events[events.length - 1]!.id : to, events };
  }

  async deleteSendToDeviceMessages(tx: Tx, userID: string, deviceID: string, upTo: number): Promise<void> {
    await this.conn.query(tx, 'DELETE FROM syncapi_send_to_device WHERE user_id = $1 AND device_id = $2 AND id <= $3', [userID, deviceID, upTo]);
  }

  async deleteSendToDeviceMessagesSentBefore(tx: Tx, before: number, limit: number): Promise<number> {
    const r = await this.conn.query(tx, `DELETE FROM syncapi_send_to_device WHERE id IN (
      SELECT id FROM syncapi_send_to_device WHERE sent_at < $1 ORDER BY sent_at LIMIT $2)`, [before, limit]);
    return r.rowCount ?? 0;
  }

  async selectMaxSendToDeviceMessageID(tx: Tx): Promise<number> {
    const r = await this.conn.query<{ m: number }>(tx, 'SELECT COALESCE(MAX(id), 0) AS m FROM syncapi_send_to_device');
    return r.rows[0]!.m;
  }
}

import { inject, injectable } from 'inversify';
import type { SendToDeviceRow, SendToDeviceTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';

@injectable()
export class SqliteSendToDeviceTable implements SendToDeviceTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertSendToDeviceMessage(tx: Tx, userID: string, deviceID: string, content: string, sentAt: number): Promise<number> {
    return this.conn.run(tx, (c) => (c.stmt('INSERT INTO syncapi_send_to_device (user_id, device_id, content, sent_at) VALUES (?, ?, ?, ?) RETURNING id')
      .get(userID, deviceID, content, sentAt) as { id: number }).id);
  }

  selectSendToDeviceMessages(tx: Tx, userID: string, deviceID: string, from: number, to: number) {
    return this.conn.run(tx, (c) => {
      const events = c.stmt(`SELECT id, user_id AS userID, device_id AS deviceID, content FROM syncapi_send_to_device
        WHERE user_id = ? AND device_id = ? AND id > ? AND id <= ? ORDER BY id`).all(userID, deviceID, from, to) as SendToDeviceRow[];
      return { lastPosition: events.length > 0 ? events[events.length - 1]!.id : to, events };
    });
  }

  deleteSendToDeviceMessages(tx: Tx, userID: string, deviceID: string, upTo: number): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt('DELETE FROM syncapi_send_to_device WHERE user_id = ? AND device_id = ? AND id <= ?').run(userID, deviceID, upTo);
    });
  }

  deleteSendToDeviceMessagesSentBefore(tx: Tx, before: number, limit: number): Promise<number> {
    return this.conn.run(tx, (c) => c.stmt(`DELETE FROM syncapi_send_to_device WHERE id IN (
      SELECT id FROM syncapi_send_to_device WHERE sent_at < ? ORDER BY sent_at LIMIT ?)`).run(before, limit).changes);
  }

  selectMaxSendToDeviceMessageID(tx: Tx): Promise<number> {
    return this.conn.run(tx, (c) => (c.stmt('SELECT COALESCE(MAX(id), 0) AS m FROM syncapi_send_to_device').get() as { m: number }).m);
  }
}

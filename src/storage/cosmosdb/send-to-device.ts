import { inject, injectable } from 'inversify';
import type { SendToDeviceRow, SendToDeviceTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';

/**
 * send_to_device on Cosmos DB: a partition per device (`s2d|<user>|<device>`), a document per message keyed by its
 * stream position. Positions come from a counter taken one value at a time, so they are handed out in order.
 * `sentAt` (milliseconds since 1970) is what retention goes by; a message written before it was recorded goes by
 * the document's own time, `_ts` (seconds), which a message that is never changed keeps from its creation.
 */
@injectable()
export class CosmosSendToDeviceTable implements SendToDeviceTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private pk(userID: string, deviceID: string) {
    return this.conn.pk('s2d', userID, deviceID);
  }

  async insertSendToDeviceMessage(_tx: Tx, userID: string, deviceID: string, content: string, sentAt: number): Promise<number> {
    const id = await this.conn.sequence('order').nextValue();
    await this.conn.requests.create('sendToDevice.insert', { id: String(id), pk: this.pk(userID, deviceID), k: 's2d', position: id, userID, deviceID, content, sentAt });
    return id;
  }

  async selectSendToDeviceMessages(_tx: Tx, userID: string, deviceID: string, from: number, to: number) {
    const rows = await this.conn.requests.query<{ position: number; content: string }>('sendToDevice.select', this.pk(userID, deviceID),
      "SELECT c.position, c.content FROM c WHERE c.pk = @pk AND c.k = 's2d' AND c.position > @from AND c.position <= @to",
      [{ name: '@from', value: from }, { name: '@to', value: to }]);
    const events: SendToDeviceRow[] = rows.sort((a, b) => a.position - b.position)
      .map((r) => ({ id: r.position, userID, deviceID, content: r.content }));
    return { lastPosition: events.length > 0 ? events[events.length - 1]!.id : to, events };
  }

  async deleteSendToDeviceMessages(_tx: Tx, userID: string, deviceID: string, upTo: number): Promise<void> {
    const pk = this.pk(userID, deviceID);
    const rows = await this.conn.requests.query<{ id: string }>('sendToDevice.delete', pk,
      "SELECT c.id FROM c WHERE c.pk = @pk AND c.k = 's2d' AND c.position <= @upTo", [{ name: '@upTo', value: upTo }]);
    for (const r of rows) await this.conn.requests.delete('sendToDevice.delete', r.id, pk);
  }

  /** A cross-partition query over this tenant's messages (retention runs now and then), then their deletes in bulk. */
  async deleteSendToDeviceMessagesSentBefore(_tx: Tx, before: number, limit: number): Promise<number> {
    const rows = await this.conn.requests.crossPartitionQuery<{ id: string; pk: string }>('sendToDevice.expire', this.conn.tenantPrefix,
      `SELECT TOP @limit c.id, c.pk FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 's2d'
        AND (c.sentAt < @before OR (NOT IS_DEFINED(c.sentAt) AND c._ts < @beforeSeconds))`,
      [{ name: '@limit', value: limit }, { name: '@before', value: before }, { name: '@beforeSeconds', value: Math.floor(before / 1000) }]);
    if (rows.length === 0) return 0;
    return (await this.conn.requests.deleteMany('sendToDevice.expire', rows)).filter(Boolean).length;
  }

  /** Rare (once at start-up): a cross-partition aggregate over this tenant's messages. */
  async selectMaxSendToDeviceMessageID(_tx: Tx): Promise<number> {
    const [max] = await this.conn.requests.crossPartitionQuery<number | undefined>('sendToDevice.max', this.conn.tenantPrefix,
      "SELECT VALUE MAX(c.position) FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 's2d'");
    return max ?? 0;
  }
}

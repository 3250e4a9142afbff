import { inject, injectable } from 'inversify';
import type { PublishedTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { docId } from './ids.js';
import { codePointCompare } from './order.js';

/** published on Cosmos DB: the room directory as one small tenant-wide partition `published`, a document per room. */
@injectable()
export class CosmosPublishedTable implements PublishedTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private get pk() {
    return this.conn.pk('published');
  }

  async upsertRoomPublished(_tx: Tx, roomID: string, published: boolean): Promise<void> {
    await this.conn.requests.upsert('published.upsert', { id: docId(roomID), pk: this.pk, k: 'published', roomID, published });
  }

  async selectPublishedFromRoomID(_tx: Tx, roomID: string): Promise<boolean> {
    return (await this.conn.requests.read<{ published: boolean }>('published.select', docId(roomID), this.pk))?.published === true;
  }

  async selectAllPublishedRooms(_tx: Tx, published: boolean): Promise<string[]> {
    const rows = await this.conn.requests.query<{ roomID: string }>('published.selectAll', this.pk,
      "SELECT c.roomID FROM c WHERE c.pk = @pk AND c.k = 'published' AND c.published = @p", [{ name: '@p', value: published }]);
    return rows.map((r) => r.roomID).sort(codePointCompare);
  }
}

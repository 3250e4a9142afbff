import { inject, injectable } from 'inversify';
import type { Publication, PublishedTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { docId } from './ids.js';
import { codePointCompare } from './order.js';

interface PublishedDoc {
  roomID: string;
  /** Absent on documents written before the directory had networks: the server's own list, "". */
  appserviceID?: string;
  networkID?: string;
  published: boolean;
}

/**
 * published on Cosmos DB: the room directory as one small tenant-wide partition `published`, a document per (room,
 * appservice, network). The server's own entry ("", "") keeps the id a room's only entry always had.
 */
@injectable()
export class CosmosPublishedTable implements PublishedTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private get pk() {
    return this.conn.pk('published');
  }

  static docID(roomID: string, appserviceID: string, networkID: string): string {
    return appserviceID === '' && networkID === '' ? docId(roomID) : docId(roomID, appserviceID, networkID);
  }

  async upsertRoomPublished(_tx: Tx, roomID: string, published: boolean, appserviceID = '', networkID = ''): Promise<void> {
    await this.conn.requests.upsert('published.upsert', {
      id: CosmosPublishedTable.docID(roomID, appserviceID, networkID), pk: this.pk, k: 'published', roomID, appserviceID, networkID, published,
    });
  }

  private async ofRoom(roomID: string): Promise<PublishedDoc[]> {
    return this.conn.requests.query<PublishedDoc>('published.select', this.pk,
      "SELECT c.roomID, c.appserviceID, c.networkID, c.published FROM c WHERE c.pk = @pk AND c.k = 'published' AND c.roomID = @room",
      [{ name: '@room', value: roomID }]);
  }

  async selectPublishedFromRoomID(_tx: Tx, roomID: string): Promise<boolean> {
    return (await this.ofRoom(roomID)).some((d) => d.published === true);
  }

  async selectRoomPublications(_tx: Tx, roomID: string): Promise<Publication[]> {
    return (await this.ofRoom(roomID))
      .map((d) => ({ appserviceID: d.appserviceID ?? '', networkID: d.networkID ?? '', published: d.published === true }))
      .sort((a, b) => codePointCompare(a.appserviceID, b.appserviceID) || codePointCompare(a.networkID, b.networkID));
  }

  async selectAllPublishedRooms(_tx: Tx, published: boolean, networkID = '', includeAllNetworks = true): Promise<string[]> {
    const rows = await this.conn.requests.query<PublishedDoc>('published.selectAll', this.pk,
      "SELECT c.roomID, c.networkID FROM c WHERE c.pk = @pk AND c.k = 'published' AND c.published = @p", [{ name: '@p', value: published }]);
    const everyNetwork = networkID === '' && includeAllNetworks;
    const ids = new Set(rows.filter((d) => everyNetwork || (d.networkID ?? '') === networkID).map((d) => d.roomID));
    return [...ids].sort(codePointCompare);
  }
}

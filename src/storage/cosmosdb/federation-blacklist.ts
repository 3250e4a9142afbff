import { inject, injectable } from 'inversify';
import type { FederationBlacklistTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { docId } from './ids.js';

/** federation_blacklist on Cosmos DB: one small tenant-wide partition `blacklist`, a document per server. */
@injectable()
export class CosmosFederationBlacklistTable implements FederationBlacklistTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private get pk() {
    return this.conn.pk('blacklist');
  }

  async insertBlacklist(_tx: Tx, serverName: string): Promise<void> {
    await this.conn.requests.create('blacklist.insert', { id: docId(serverName), pk: this.pk, k: 'blacklist', serverName });
  }

  async selectBlacklist(_tx: Tx, serverName: string): Promise<boolean> {
    return (await this.conn.requests.read('blacklist.select', docId(serverName), this.pk)) !== undefined;
  }

  async deleteBlacklist(_tx: Tx, serverName: string): Promise<void> {
    await this.conn.requests.delete('blacklist.delete', docId(serverName), this.pk);
  }

  async deleteAllBlacklist(_tx: Tx): Promise<void> {
    const rows = await this.conn.requests.query<{ id: string }>('blacklist.deleteAll', this.pk, "SELECT c.id FROM c WHERE c.pk = @pk AND c.k = 'blacklist'");
    for (const r of rows) await this.conn.requests.delete('blacklist.deleteAll', r.id, this.pk);
  }
}

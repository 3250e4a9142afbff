import { inject, injectable } from 'inversify';
import { serverNameOf } from '../../types/input.js';
import { unique } from '../shared/contracts.js';
import type { StaleDeviceListsTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { docId } from './ids.js';
import { codePointCompare } from './order.js';

/**
 * stale_device_lists on Cosmos DB: one tenant-wide partition `stale` (remote users whose lists need refetching:
 * a working set, not an archive), so "stale users on these domains" is a single-partition query.
 */
@injectable()
export class CosmosStaleDeviceListsTable implements StaleDeviceListsTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private get pk() {
    return this.conn.pk('stale');
  }

  async insertStaleDeviceList(_tx: Tx, userID: string, isStale: boolean): Promise<void> {
    const domain = serverNameOf(userID);
    await this.conn.requests.upsert('staleDeviceLists.insert', {
      id: docId(userID), pk: this.pk, k: 'stale', userID, domain, isStale, tsAdded: Math.floor(Date.now() / 1000),
    });
  }

  async selectUserIDsWithStaleDeviceLists(_tx: Tx, domains: readonly string[]): Promise<string[]> {
    const rows = await this.conn.requests.query<{ userID: string }>('staleDeviceLists.select', this.pk,
      "SELECT c.userID FROM c WHERE c.pk = @pk AND c.k = 'stale' AND c.isStale = true AND (@all = true OR ARRAY_CONTAINS(@domains, c.domain))",
      [{ name: '@all', value: domains.length === 0 }, { name: '@domains', value: unique(domains) }]);
    return rows.map((r) => r.userID).sort(codePointCompare);
  }

  async deleteStaleDeviceLists(_tx: Tx, userIDs: readonly string[]): Promise<void> {
    for (const userID of unique(userIDs)) await this.conn.requests.delete('staleDeviceLists.delete', docId(userID), this.pk);
  }
}

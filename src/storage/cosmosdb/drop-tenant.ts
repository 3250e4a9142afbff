import type { CosmosConfig } from '../../config/schema.js';
import { CosmosConnection } from './connection.js';
import { partitionKey } from './ids.js';

/**
 * Tenant housekeeping for tools that make short-lived tenants in a deployment's container (`matrix-storage
 * conformance` makes one per case): how many documents a tenant holds, and deleting all of them. A tenant is
 * nothing but the documents whose partition key starts with `<tenant>|` (ids.ts), so dropping one is a
 * cross-partition query for that prefix and a delete per document; other tenants' documents are never read.
 */
export interface CosmosTenantAdmin {
  /** Documents of `tenant` (0 for a tenant never written). */
  documentCount(tenant: string): Promise<number>;
  /** Deletes every document of `tenant`; returns how many it deleted. */
  dropTenant(tenant: string): Promise<number>;
  close(): Promise<void>;
}

/** Deletes at a time: enough to be quick, few enough not to be throttled on a small account. */
const DELETE_CONCURRENCY = 16;
/** Passes over the tenant: a document written while a drop ran (there should be none) is caught by the next. */
const MAX_PASSES = 5;

/**
 * Opens the deployment's container (never creating it, whatever cosmosdb.create_if_missing says: a database or
 * container that is not there is a ConfigError) for tenant housekeeping. The tenant of `config` is not used.
 */
export async function openTenantAdmin(config: CosmosConfig): Promise<CosmosTenantAdmin> {
  const conn = await CosmosConnection.open({ ...config, createIfMissing: false });
  const prefix = (tenant: string) => partitionKey(tenant, '');
  const documentCount = async (tenant: string) => {
    const [n] = await conn.requests.crossPartitionQuery<number>('tenant.count', prefix(tenant),
      'SELECT VALUE COUNT(1) FROM c WHERE STARTSWITH(c.pk, @tenant)');
    return n ?? 0;
  };
  return {
    documentCount,
    async dropTenant(tenant) {
      let deleted = 0;
      for (let pass = 0; pass < MAX_PASSES; pass++) {
        const docs = await conn.requests.crossPartitionQuery<{ id: string; pk: string }>('tenant.list', prefix(tenant),
          'SELECT c.id, c.pk FROM c WHERE STARTSWITH(c.pk, @tenant)');
        if (docs.length === 0) return deleted;
        let next = 0;
        const worker = async () => {
          while (next < docs.length) {
            const doc = docs[next++]!;
            if (await conn.requests.delete('tenant.drop', doc.id, doc.pk)) deleted++;
          }
        };
        await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, docs.length) }, worker));
      }
      const left = await documentCount(tenant);
      if (left > 0) throw new Error(`tenant ${tenant} still holds ${left} documents after ${MAX_PASSES} passes of deletes`);
      return deleted;
    },
    close: () => conn.close(),
  };
}

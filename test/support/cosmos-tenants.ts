import { createStorage, type Storage } from '../../src/index.js';
import type { CosmosConnection } from '../../src/storage/cosmosdb/connection.js';
import { SUITE_SETTINGS } from '../conformance/harness.js';
import { emulatorConfig } from './cosmos-emulator.js';
import { sharedEmulator } from './drivers-cosmos.js';

let container = 0;

/**
 * A store on the shared emulator for the driver's own cases: tenant `tenant` in a container of its own, or in
 * `containerName` where several stores share one; `extra` is merged into its `cosmosdb` config.
 */
export async function openTenant(tenant: string, extra: Record<string, unknown> = {}, containerName = `extra${++container}`): Promise<Storage> {
  const emulator = await sharedEmulator();
  const base = emulatorConfig(emulator, 'cosmos-tests', containerName, tenant);
  return createStorage({ ...SUITE_SETTINGS, ...base, cosmosdb: { ...(base.cosmosdb as object), ...extra } });
}

/** The Cosmos DB connection behind a store, to read and write its documents directly. */
export const connOf = (s: Storage) => (s.stats as unknown as { conn: CosmosConnection }).conn;

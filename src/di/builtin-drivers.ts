import { openCosmos } from '../storage/cosmosdb/module.js';
import { openPostgres } from '../storage/postgres/module.js';
import { openSqlite } from '../storage/sqlite/module.js';
import type { DriverFactory } from './driver.js';

/**
 * The drivers this package ships, by the `backend` name that selects them. SQLite, the default, is a dependency;
 * the PostgreSQL and Cosmos DB drivers load their client packages (`pg`, `@azure/cosmos`, optional peer
 * dependencies) when they open a store (see optional-packages.ts).
 */
export const BUILTIN_DRIVERS: ReadonlyArray<readonly [string, DriverFactory]> = [
  ['sqlite', openSqlite],
  ['postgres', openPostgres],
  ['cosmosdb', openCosmos],
];

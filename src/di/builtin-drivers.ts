import { openCosmos } from '../storage/cosmosdb/module.js';
import { openPostgres } from '../storage/postgres/module.js';
import { openSqlite } from '../storage/sqlite/module.js';
import type { DriverFactory } from './driver.js';

/** The drivers this package ships, by the `backend` name that selects them. */
export const BUILTIN_DRIVERS: ReadonlyArray<readonly [string, DriverFactory]> = [
  ['sqlite', openSqlite],
  ['postgres', openPostgres],
  ['cosmosdb', openCosmos],
];

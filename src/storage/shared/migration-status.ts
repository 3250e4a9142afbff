import { SchemaNotCurrentError } from '../../types/errors.js';
import type { StorageConfig } from '../../config/schema.js';
import type { OpenOptions } from '../../di/driver.js';
import type { MigrationStatus } from '../tables/index.js';

/** Whether opening this store may create or upgrade its schema: the caller's word, else the configuration's. */
export const migratesOnOpen = (config: StorageConfig, options: OpenOptions): boolean => options.migrate ?? config.migrateOnOpen;

/** Where a schema stands, from the versions a driver's migrations table records. */
export function statusOf(migrations: readonly { readonly version: number; readonly name: string }[], applied: ReadonlySet<number>): MigrationStatus {
  return {
    version: Math.max(0, ...applied),
    latest: Math.max(...migrations.map((m) => m.version)),
    pending: migrations.filter((m) => !applied.has(m.version)).map((m) => ({ version: m.version, name: m.name })),
  };
}

/**
 * Refuses a store whose schema is behind when opening may not migrate it, saying why it may not and what to run.
 * Returns the status when it is current.
 */
export function requireCurrent(status: MigrationStatus, where: string, options: OpenOptions): MigrationStatus {
  if (status.pending.length === 0) return status;
  const why = options.migrate === false
    ? 'this command does not create or upgrade a store. Fix: run `matrix-storage migrate` with this configuration first'
    : 'migrate_on_open is false. Fix: run `matrix-storage migrate` with this configuration (or set migrate_on_open: true)';
  throw new SchemaNotCurrentError(`${where} is at schema version ${status.version}${status.version === 0 ? ' (not created yet)' : ''}, ` +
    `this build needs version ${status.latest} (${status.pending.length} migration${status.pending.length === 1 ? '' : 's'} pending), and ${why}.`, status);
}

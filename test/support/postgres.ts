import pg from 'pg';
import { createStorage, type Storage, type StorageConfigInput } from '../../src/index.js';

/** The run's own PostgreSQL database, set up by global-postgres.ts. */
export function testDatabaseURL(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run the tests through mocha (.mocharc.json loads test/support/global-postgres.ts)');
  return url;
}

let admin: pg.Pool | undefined;

/** A small pool for creating and dropping schemas; it lets the process exit when idle. */
export function adminPool(): pg.Pool {
  if (!admin) {
    admin = new pg.Pool({ connectionString: testDatabaseURL(), max: 2, allowExitOnIdle: true });
    admin.on('error', () => {});
  }
  return admin;
}

export async function closeAdminPool(): Promise<void> {
  const a = admin;
  admin = undefined;
  await a?.end();
}

let counter = 0;

/** A schema name no other case of this run (or of a parallel run) uses. */
export function freshSchemaName(prefix = 't'): string {
  return `${prefix}_${process.pid}_${++counter}`;
}

export async function dropSchema(schema: string): Promise<void> {
  await adminPool().query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
}

/**
 * Opens a store in a schema of its own (created by the driver's migration on open), whose close() also drops the
 * schema: each conformance case gets a fresh, empty store and leaves nothing behind.
 */
export async function openInFreshSchema(config: StorageConfigInput = {}, schema = freshSchemaName()): Promise<Storage> {
  const postgres = { url: testDatabaseURL(), pool_size: 4, ...(config.postgres as object | undefined), schema };
  let storage: Storage;
  try {
    storage = await createStorage({ ...config, backend: 'postgres', postgres });
  } catch (e) {
    await dropSchema(schema);
    throw e;
  }
  const closeAndDrop = async () => {
    try {
      await storage.close();
    } finally {
      await dropSchema(schema);
    }
  };
  // A proxy rather than a copy: a copy would read (and so resolve) every lazily bound API of the store.
  return new Proxy(storage, { get: (target, key) => (key === 'close' ? closeAndDrop : Reflect.get(target, key)) });
}

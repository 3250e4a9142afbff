import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import pg from 'pg';
import { createStorage, type Storage } from '../src/index.js';
import { MIGRATIONS as SQLITE_MIGRATIONS, migrate as migrateSqlite } from '../src/storage/sqlite/migrations.js';
import { migrate as migratePostgres } from '../src/storage/postgres/migrations.js';
import { dropSchema, freshSchemaName, testDatabaseURL } from './support/postgres.js';

const ALICE = '@alice:example.org';
const OTK = 'signed_curve25519';

/** What a store of schema version 4 holds (a one-time key) stays, and fallback keys work once migration 6 ran. */
async function expectFallbackKeysAfterMigration(storage: Storage): Promise<void> {
  // Opening applied every migration after 4 (migrate reports what opening applied).
  const versions = SQLITE_MIGRATIONS.map((m) => m.version).sort((a, b) => a - b);
  expect(await storage.migrate()).to.deep.equal({ applied: versions.filter((v) => v > 4), version: versions.at(-1) });
  await storage.keys.storeFallbackKeys({ userID: ALICE, deviceID: 'D', keyJSON: new Map([[`${OTK}:F`, '{"fallback":true}']]) });
  expect(await storage.keys.unusedFallbackKeyAlgorithms(ALICE, 'D')).to.deep.equal([OTK]);
  const claim = new Map([[ALICE, new Map([['D', OTK]])]]);
  expect((await storage.keys.claimKeys(claim)).map((k) => [...k.keyJSON.keys()])).to.deep.equal([[`${OTK}:OLD`]]);
  expect((await storage.keys.claimKeys(claim)).map((k) => [...k.keyJSON.keys()])).to.deep.equal([[`${OTK}:F`]]);
  expect(await storage.keys.unusedFallbackKeyAlgorithms(ALICE, 'D')).to.deep.equal([]);
}

describe('fallback keys migration (schema version 6)', () => {
  it('SQLite: a store of version 4 gains the fallback keys table on open and keeps its one-time keys', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fallback-migration-'));
    const file = path.join(dir, 'store.db');
    try {
      const db = new Database(file);
      expect(migrateSqlite(db, undefined, 4)).to.deep.equal([1, 2, 3, 4]);
      db.prepare(`INSERT INTO keyserver_one_time_keys (user_id, device_id, algorithm, key_id, ts_added_secs, key_json)
        VALUES (?, 'D', ?, 'OLD', 0, '{}')`).run(ALICE, OTK);
      db.close();
      const storage = await createStorage({ backend: 'sqlite', sqlite: { path: file } });
      try {
        await expectFallbackKeysAfterMigration(storage);
      } finally {
        await storage.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('PostgreSQL: a schema of version 4 gains the fallback keys table on open and keeps its one-time keys', async () => {
    const schema = freshSchemaName('fallback');
    const pool = new pg.Pool({ connectionString: testDatabaseURL(), max: 1, options: `-c search_path=${schema}` });
    try {
      expect(await migratePostgres(pool, schema, undefined, 4)).to.deep.equal([1, 2, 3, 4]);
      await pool.query(`INSERT INTO keyserver_one_time_keys (user_id, device_id, algorithm, key_id, ts_added_secs, key_json)
        VALUES ($1, 'D', $2, 'OLD', 0, '{}')`, [ALICE, OTK]);
      const storage = await createStorage({ backend: 'postgres', postgres: { url: testDatabaseURL(), schema, pool_size: 2 } });
      try {
        await expectFallbackKeysAfterMigration(storage);
      } finally {
        await storage.close();
      }
    } finally {
      await pool.end();
      await dropSchema(schema);
    }
  });
});

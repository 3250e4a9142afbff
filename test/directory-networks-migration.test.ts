import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import pg from 'pg';
import { createStorage, type Storage } from '../src/index.js';
import { MIGRATIONS, migrate as migrateSqlite } from '../src/storage/sqlite/migrations.js';
import { migrate as migratePostgres } from '../src/storage/postgres/migrations.js';
import { dropSchema, freshSchemaName, testDatabaseURL } from './support/postgres.js';

/**
 * What a store of schema version 7 published stays published, in the server's own list, once migration 9 gave the
 * directory its appservice networks; a network's entry then sits beside it, and the new tables work.
 */
async function expectDirectoryAfterMigration(storage: Storage): Promise<void> {
  // Opening applied every migration after 7 (migrate reports what opening applied).
  expect(await storage.migrate()).to.deep.equal({ applied: LATER.filter((v) => v > 7), version: LATEST });
  const db = storage.roomserver;
  expect(await db.getPublishedRooms()).to.deep.equal(['!old:example.org']);
  expect(await db.getPublishedRooms('', false)).to.deep.equal(['!old:example.org']);
  expect(await db.getPublishedRoom('!hidden:example.org')).to.equal(false);
  await db.publishRoom('!old:example.org', 'as1', 'irc', true);
  await db.publishRoom('!old:example.org', false);
  expect(await db.getPublishedRooms('irc')).to.deep.equal(['!old:example.org']);
  expect(await db.getPublishedRooms('', false)).to.deep.equal([]);
  expect((await db.queryEventReports()).total).to.equal(0);
  expect(await db.selectUserRoomPublicKey('@alice:example.org', '!old:example.org')).to.equal(null);
}

/** Every schema version, and the newest: opening an older store applies those after its own. */
const LATER = MIGRATIONS.map((m) => m.version).sort((a, b) => a - b);
const LATEST = LATER.at(-1)!;

const SEED = [['!old:example.org', true], ['!hidden:example.org', false]] as const;

describe('directory networks, event reports and user room keys migration (schema version 9)', () => {
  it('SQLite: a store of version 7 keeps its published rooms as the server\'s own list', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'directory-migration-'));
    const file = path.join(dir, 'store.db');
    try {
      const db = new Database(file);
      expect(migrateSqlite(db, undefined, 7)).to.deep.equal([1, 2, 3, 4, 5, 6, 7]);
      for (const [room, published] of SEED) db.prepare('INSERT INTO roomserver_published (room_id, published) VALUES (?, ?)').run(room, published ? 1 : 0);
      db.close();
      const storage = await createStorage({ backend: 'sqlite', sqlite: { path: file } });
      try {
        await expectDirectoryAfterMigration(storage);
      } finally {
        await storage.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('PostgreSQL: a schema of version 7 keeps its published rooms as the server\'s own list', async () => {
    const schema = freshSchemaName('directory');
    const pool = new pg.Pool({ connectionString: testDatabaseURL(), max: 1, options: `-c search_path=${schema}` });
    try {
      expect(await migratePostgres(pool, schema, undefined, 7)).to.deep.equal([1, 2, 3, 4, 5, 6, 7]);
      for (const [room, published] of SEED) await pool.query('INSERT INTO roomserver_published (room_id, published) VALUES ($1, $2)', [room, published]);
      const storage = await createStorage({ backend: 'postgres', postgres: { url: testDatabaseURL(), schema, pool_size: 2 } });
      try {
        await expectDirectoryAfterMigration(storage);
      } finally {
        await storage.close();
      }
    } finally {
      await pool.end();
      await dropSchema(schema);
    }
  });
});

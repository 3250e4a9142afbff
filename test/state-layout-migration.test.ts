/**
 * Migration 4 (the compact state layout) on a store written by the layout before it: the raw rows of
 * test/fixtures/state-layout-v3/state-layout-v3.json (written by that layout's code, see make.ts there) are put into
 * a SQLite file and a PostgreSQL schema migrated to version 3, the store is opened (which migrates it), and every
 * block, snapshot and event must read back as that code read them. The fixture holds two blocks and two block
 * lists whose new 32-bit content keys collide, so the conversion has to probe.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import pg from 'pg';
import { createStorage, type Storage } from '../src/index.js';
import { MIGRATIONS as SQLITE_MIGRATIONS, migrate as migrateSqlite } from '../src/storage/sqlite/migrations.js';
import { migrate as migratePostgres } from '../src/storage/postgres/migrations.js';
import { contentKey, decodeStateBlock, encodeBlockList, encodeStateBlock } from '../src/storage/shared/state-codec.js';
import type { RoomNID, StateBlockNID, StateSnapshotNID } from '../src/types/nids.js';
import type { StateEntry } from '../src/types/state.js';
import { closeAdminPool, dropSchema, freshSchemaName, testDatabaseURL } from './support/postgres.js';

interface Fixture {
  collidingBlocks: number[];
  collidingSnapshots: number[];
  removed: number;
  blocks: { nid: number; hash: string; count: number; entries: string }[];
  snapshots: { nid: number; hash: string; room: number; blocks: string }[];
  sequences: { name: string; seq: number }[];
  events: Record<string, unknown>[];
  rooms: Record<string, unknown>[];
  stateAtEvent: Record<string, string>;
  stateAtSnapshot: Record<string, string>;
}

const fixture = JSON.parse(fs.readFileSync(new URL('./fixtures/state-layout-v3/state-layout-v3.json', import.meta.url), 'utf8')) as Fixture;
const digest = (entries: readonly StateEntry[]) => createHash('sha256')
  .update(JSON.stringify(entries.map((x) => [x.eventTypeNID, x.eventStateKeyNID, x.eventNID]))).digest('hex').slice(0, 16);
const EVENT_COLUMNS = ['event_nid', 'room_nid', 'event_type_nid', 'event_state_key_nid', 'sent_to_output', 'state_snapshot_nid', 'depth', 'event_id', 'auth_event_nids', 'is_rejected'];
const ROOM_COLUMNS = ['room_nid', 'room_id', 'latest_event_nids', 'last_event_sent_nid', 'state_snapshot_nid', 'room_version'];

/** The fixture's two blocks that share a content key, as migration 4 left them: both stored, each under a key of its own. */
function expectCollidingPair(rows: readonly { nid: string | number; key: number; entries: Buffer }[]): void {
  const fixtureBlocks = fixture.collidingBlocks.map((nid) => fixture.blocks.find((x) => x.nid === nid)!);
  expect(rows.map((r) => [Number(r.nid), Buffer.from(r.entries).toString('base64')])).to.deep.equal(fixtureBlocks.map((x) => [x.nid, x.entries]));
  expect(rows[0]!.key).to.not.equal(rows[1]!.key);
}

/** What every migrated store must answer, whichever engine holds it. */
async function expectSameState(storage: Storage): Promise<void> {
  const t = storage.tables;
  const tx = storage.unitOfWork.autocommit;
  expect(fixture.collidingBlocks).to.have.length(2);
  const [a, b] = fixture.collidingBlocks.map((nid) => fixture.blocks.find((x) => x.nid === nid)!);
  expect(contentKey(Buffer.from(a!.entries, 'base64')), 'the fixture\'s two blocks share a content key').to.equal(contentKey(Buffer.from(b!.entries, 'base64')));

  // Every block a snapshot names and every snapshot list, as stored before; the blocks no snapshot names (delta
  // blocks a merge folded into another, which the old write path stored anyway) are gone since version 8.
  const named = new Set(fixture.snapshots.flatMap((x) => JSON.parse(x.blocks) as number[]));
  const kept = fixture.blocks.filter((x) => named.has(x.nid));
  const unnamed = fixture.blocks.filter((x) => !named.has(x.nid));
  expect(kept.length, 'the fixture has named blocks').to.be.greaterThan(0);
  const blocks = await t.stateBlocks.bulkSelectStateBlockEntries(tx, kept.map((x) => x.nid as StateBlockNID));
  expect(blocks.map((x) => [x.stateBlockNID, digest(x.stateEntries)]))
    .to.deep.equal(kept.map((x) => [x.nid, digest(decodeStateBlock(Buffer.from(x.entries, 'base64')))]));
  for (const x of unnamed) {
    expect(await t.stateBlocks.bulkSelectStateBlockEntries(tx, [x.nid as StateBlockNID]).catch((e: Error) => e.constructor.name), `block ${x.nid}`).to.equal('MissingStateError');
  }
  const lists = await t.stateSnapshots.bulkSelectStateBlockNIDs(tx, fixture.snapshots.map((x) => x.nid as StateSnapshotNID));
  expect(lists.map((x) => [x.stateSnapshotNID, x.stateBlockNIDs])).to.deep.equal(fixture.snapshots.map((x) => [x.nid, JSON.parse(x.blocks)]));

  // The state at every event and every snapshot, as the old code read it.
  for (const ev of fixture.events) {
    expect(digest(await storage.roomserver.loadStateAtEvent(ev.event_id as string)), `state at ${ev.event_id}`).to.equal(fixture.stateAtEvent[ev.event_id as string]);
  }
  for (const [nid, expected] of Object.entries(fixture.stateAtSnapshot)) {
    expect(digest(await storage.roomserver.loadStateAtSnapshot(Number(nid) as StateSnapshotNID)), `state at snapshot ${nid}`).to.equal(expected);
  }

  // Content addressing still finds every converted row, the colliding ones included: the same content, the same NID.
  for (const x of kept) {
    expect(await t.stateBlocks.insertStateBlock(tx, decodeStateBlock(Buffer.from(x.entries, 'base64'))), `block ${x.nid}`).to.equal(x.nid);
  }
  expect(await t.stateBlocks.bulkInsertStateBlocks(tx, kept.map((x) => decodeStateBlock(Buffer.from(x.entries, 'base64')))))
    .to.deep.equal(kept.map((x) => x.nid));
  // The deleted blocks' content (the colliding pair among it) stored again: new NIDs, one per block, found again as such.
  const again = await t.stateBlocks.bulkInsertStateBlocks(tx, unnamed.map((x) => decodeStateBlock(Buffer.from(x.entries, 'base64'))));
  expect(new Set(again).size).to.equal(unnamed.length);
  expect(again.filter((nid) => fixture.blocks.some((x) => x.nid === nid))).to.deep.equal([]);
  expect(await t.stateBlocks.bulkInsertStateBlocks(tx, unnamed.map((x) => decodeStateBlock(Buffer.from(x.entries, 'base64'))))).to.deep.equal(again);
  for (const x of fixture.snapshots) {
    expect(await t.stateSnapshots.insertState(tx, x.room as RoomNID, JSON.parse(x.blocks) as StateBlockNID[]), `snapshot ${x.nid}`).to.equal(x.nid);
  }
  const [s1, s2] = fixture.collidingSnapshots.map((nid) => fixture.snapshots.find((x) => x.nid === nid)!);
  expect(contentKey(encodeBlockList(JSON.parse(s1!.blocks))), 'the fixture\'s two lists share a content key').to.equal(contentKey(encodeBlockList(JSON.parse(s2!.blocks))));

  // The counters go on past every converted NID.
  const seq = (name: string) => fixture.sequences.find((s) => s.name === name)!.seq;
  const fresh = [{ eventTypeNID: 77, eventStateKeyNID: 77, eventNID: 77 }] as StateEntry[];
  expect(await t.stateBlocks.insertStateBlock(tx, fresh)).to.be.above(seq('roomserver_state_block'));
  expect(await t.stateSnapshots.insertState(tx, 1 as RoomNID, [1 as StateBlockNID, 1 as StateBlockNID, 2 as StateBlockNID])).to.be.above(seq('roomserver_state_snapshots'));
  // And the write path goes on from the converted state: one more state on the room's current one.
  const room = fixture.rooms[0]!;
  const current = await storage.roomserver.currentState(room.room_id as string);
  expect(digest(current)).to.equal(fixture.stateAtSnapshot[String(room.state_snapshot_nid)]);
  const [list] = await storage.roomserver.stateBlockNIDs([room.state_snapshot_nid as StateSnapshotNID]);
  const next = await storage.roomserver.addState(room.room_nid as RoomNID, list!.stateBlockNIDs, [{ eventTypeNID: 5, eventStateKeyNID: 999, eventNID: 1 }] as StateEntry[]);
  const after = await storage.roomserver.loadStateAtSnapshot(next);
  expect(after).to.have.length(current.length + 1);
  expect(encodeStateBlock(after).bytes.length).to.be.above(0);
}

describe('state layout migration (schema version 4)', () => {
  after(closeAdminPool);

  it('SQLite: a store written by the previous layout reads back the same state at every event and snapshot', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'state-migration-'));
    const file = path.join(dir, 'store.db');
    try {
      const db = new Database(file);
      expect(migrateSqlite(db, undefined, 3)).to.deep.equal([1, 2, 3]);
      const insert = (table: string, columns: string[], rows: unknown[][]) => {
        const stmt = db.prepare(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
        for (const r of rows) stmt.run(...r);
      };
      db.transaction(() => {
        insert('roomserver_state_block', ['state_block_nid', 'state_block_hash', 'entry_count', 'entries'],
          fixture.blocks.map((x) => [x.nid, Buffer.from(x.hash, 'hex'), x.count, Buffer.from(x.entries, 'base64')]));
        insert('roomserver_state_snapshots', ['state_snapshot_nid', 'state_snapshot_hash', 'room_nid', 'state_block_nids'],
          fixture.snapshots.map((x) => [x.nid, Buffer.from(x.hash, 'hex'), x.room, x.blocks]));
        insert('roomserver_events', EVENT_COLUMNS, fixture.events.map((e) => EVENT_COLUMNS.map((c) => e[c])));
        insert('roomserver_rooms', ROOM_COLUMNS, fixture.rooms.map((r) => ROOM_COLUMNS.map((c) => r[c])));
        for (const s of fixture.sequences) db.prepare('UPDATE sqlite_sequence SET seq = ? WHERE name = ?').run(s.seq, s.name);
      })();
      // Through version 7: migration 4 converted both blocks of the colliding pair, each under its own content key.
      migrateSqlite(db, undefined, 7);
      const pair = db.prepare(`SELECT state_block_nid AS nid, content_key AS key, entries FROM roomserver_state_block
        WHERE state_block_nid IN (SELECT value FROM json_each(?)) ORDER BY state_block_nid`).all(JSON.stringify(fixture.collidingBlocks)) as { nid: number; key: number; entries: Buffer }[];
      expectCollidingPair(pair);
      db.close();
      const storage = await createStorage({ backend: 'sqlite', sqlite: { path: file } });
      try {
        // Opening applied migration 4 and every later one.
        expect((await storage.migrate()).version).to.equal(Math.max(...SQLITE_MIGRATIONS.map((m) => m.version)));
        await expectSameState(storage);
      } finally {
        await storage.close();
      }
      // The old columns are gone; the new ones hold a key per row.
      const after = new Database(file, { readonly: true });
      expect((after.prepare('SELECT name FROM pragma_table_info(?)').pluck().all('roomserver_state_snapshots') as string[]).sort())
        .to.deep.equal(['block_list', 'content_key', 'room_nid', 'state_snapshot_nid']);
      after.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('PostgreSQL: a store written by the previous layout reads back the same state at every event and snapshot', async () => {
    const schema = freshSchemaName('layout');
    const pool = new pg.Pool({ connectionString: testDatabaseURL(), max: 1, options: `-c search_path=${schema}` });
    try {
      expect(await migratePostgres(pool, schema, undefined, 3)).to.deep.equal([1, 2, 3]);
      const insert = (table: string, columns: string[], types: string[], rows: unknown[][]) => pool.query(
        `INSERT INTO ${table} (${columns.join(', ')}) SELECT ${columns.map((c, i) => (types[i] === 'bigint[]' ? `${c}::bigint[]` : c)).join(', ')}
          FROM unnest(${types.map((t, i) => `$${i + 1}::${t === 'bigint[]' ? 'text' : t}[]`).join(', ')}) AS t(${columns.join(', ')})`,
        columns.map((_, i) => rows.map((r) => r[i])));
      const nids = (json: unknown) => `{${(JSON.parse(String(json)) as number[]).join(',')}}`;
      await insert('roomserver_state_block', ['state_block_nid', 'state_block_hash', 'entry_count', 'entries'], ['bigint', 'bytea', 'bigint', 'bytea'],
        fixture.blocks.map((x) => [x.nid, Buffer.from(x.hash, 'hex'), x.count, Buffer.from(x.entries, 'base64')]));
      await insert('roomserver_state_snapshots', ['state_snapshot_nid', 'state_snapshot_hash', 'room_nid', 'state_block_nids'], ['bigint', 'bytea', 'bigint', 'bigint[]'],
        fixture.snapshots.map((x) => [x.nid, Buffer.from(x.hash, 'hex'), x.room, nids(x.blocks)]));
      await insert('roomserver_events', EVENT_COLUMNS, ['bigint', 'bigint', 'bigint', 'bigint', 'boolean', 'bigint', 'bigint', 'text', 'bigint[]', 'boolean'],
        fixture.events.map((e) => EVENT_COLUMNS.map((c) => (c === 'auth_event_nids' ? nids(e[c]) : c === 'sent_to_output' || c === 'is_rejected' ? e[c] === 1 : e[c]))));
      await insert('roomserver_rooms', ROOM_COLUMNS, ['bigint', 'text', 'bigint[]', 'bigint', 'bigint', 'text'],
        fixture.rooms.map((r) => ROOM_COLUMNS.map((c) => (c === 'latest_event_nids' ? nids(r[c]) : r[c]))));
      for (const s of fixture.sequences) {
        const column = s.name === 'roomserver_state_block' ? 'state_block_nid' : 'state_snapshot_nid';
        await pool.query(`SELECT setval(pg_get_serial_sequence($1, $2), $3)`, [s.name, column, s.seq]);
      }
      await migratePostgres(pool, schema, undefined, 7);
      expectCollidingPair((await pool.query<{ nid: string; key: number; entries: Buffer }>(`SELECT state_block_nid AS nid, content_key AS key, entries
        FROM roomserver_state_block WHERE state_block_nid = ANY($1::bigint[]) ORDER BY state_block_nid`, [fixture.collidingBlocks])).rows);
      const storage = await createStorage({ backend: 'postgres', postgres: { url: testDatabaseURL(), schema, pool_size: 2 } });
      try {
        await expectSameState(storage);
      } finally {
        await storage.close();
      }
      const columns = (await pool.query<{ name: string }>(`SELECT column_name AS name FROM information_schema.columns
        WHERE table_schema = $1 AND table_name = 'roomserver_state_snapshots' ORDER BY column_name`, [schema])).rows.map((r) => r.name);
      expect(columns).to.deep.equal(['block_list', 'content_key', 'room_nid', 'state_snapshot_nid']);
    } finally {
      await pool.end();
      await dropSchema(schema);
    }
  });
});

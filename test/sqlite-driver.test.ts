import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { createStorage, type Storage } from '../src/index.js';
import { makeEvent, seedRoom } from './conformance/fixtures.js';
import { MIGRATIONS as SQLITE_MIGRATIONS, migrate as migrateSqlite } from '../src/storage/sqlite/migrations.js';

/** A fresh store in a SQLite file of a temporary directory for each case of the calling describe. */
function freshFileStore(): { readonly storage: Storage; readonly dir: string } {
  const current = { storage: undefined as unknown as Storage, dir: '' };
  beforeEach(async () => {
    current.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'matrix-storage-sqlite-'));
    current.storage = await createStorage({ backend: 'sqlite', sqlite: { path: path.join(current.dir, 'store.db') } });
  });
  afterEach(async () => {
    await current.storage.close();
    fs.rmSync(current.dir, { recursive: true, force: true });
  });
  return current;
}

describe('sqlite: statement counting', () => {
  const fresh = freshFileStore();
  let storage: Storage;
  let dir: string;
  beforeEach(() => ({ storage, dir } = fresh));

  it('counts every statement of an append, BEGIN and COMMIT included, under its Database operation', async () => {
    await seedRoom(storage);
    const stats = storage.requestStats!;
    stats.trackDatabaseOperations(true);
    stats.reset();
    await storage.roomserver.appendEvent(makeEvent({ id: '$counted', depth: 7, prev: ['$bob-join!room:example.org'] }));
    const appended = stats.snapshot();
    expect(appended.byOperation).to.include.keys('BEGIN', 'COMMIT', 'roomserver_rooms SELECT', 'roomserver_events INSERT');
    expect(appended.byOperation.BEGIN!.requests).to.equal(1);
    const sum = Object.values(appended.byOperation).reduce((n, o) => n + o.requests, 0);
    expect(sum).to.equal(appended.requests);
    expect(appended.byDatabaseOperation['roomserver.appendEvent']!.requests).to.equal(appended.requests);
    expect(appended.requestCharge).to.equal(0);
  });

  it('loads a state in two statements with cold caches, and in none once its snapshot and blocks are cached', async () => {
    await seedRoom(storage);
    const snapshot = (await storage.roomserver.roomInfo('!room:example.org'))!.stateSnapshotNID;
    const other = await createStorage({ backend: 'sqlite', sqlite: { path: path.join(dir, 'store.db') } });
    try {
      const stats = other.requestStats!;
      stats.reset();
      expect(await other.roomserver.loadStateAtSnapshot(snapshot)).to.have.length(5);
      expect(Object.keys(stats.snapshot().byOperation).sort()).to.deep.equal(['roomserver_state_block SELECT', 'roomserver_state_snapshots SELECT']);
      expect(stats.snapshot().requests).to.equal(2);
      stats.reset();
      expect(await other.roomserver.loadStateAtSnapshot(snapshot)).to.have.length(5);
      expect(stats.snapshot().requests).to.equal(0);
    } finally {
      await other.close();
    }
  });

  it('with the caches off, every load reads the snapshot and its blocks', async () => {
    await seedRoom(storage);
    const snapshot = (await storage.roomserver.roomInfo('!room:example.org'))!.stateSnapshotNID;
    const uncached = await createStorage({ backend: 'sqlite', sqlite: { path: path.join(dir, 'store.db') }, state: { block_cache_bytes: 0 } });
    try {
      for (let i = 0; i < 2; i++) {
        uncached.requestStats!.reset();
        await uncached.roomserver.loadStateAtSnapshot(snapshot);
        expect(uncached.requestStats!.snapshot().requests).to.equal(2);
      }
    } finally {
      await uncached.close();
    }
  });
});

describe('sqlite: group commit', () => {
  const fresh = freshFileStore();
  let storage: Storage;
  beforeEach(() => ({ storage } = fresh));
  const commits = () => storage.requestStats!.snapshot().byOperation.COMMIT?.requests ?? 0;

  it('concurrent appends to different rooms share commits, and each room is as if appended alone', async () => {
    const rooms = Array.from({ length: 16 }, (_, i) => `!group${i}:example.org`);
    storage.requestStats!.reset();
    await Promise.all(rooms.map((room) => seedRoom(storage, room)));
    // 16 rooms of 6 events: 96 transactions, far fewer commits.
    expect(commits()).to.be.greaterThan(0).and.lessThan(96 / 4);
    const alone = await createStorage({ backend: 'sqlite', sqlite: { path: ':memory:' } });
    try {
      await seedRoom(alone, '!group0:example.org');
      const stateOf = async (s: Storage, room: string) => {
        const ids = await s.roomserver.eventIDs((await s.roomserver.currentState(room)).map((e) => e.eventNID));
        return [...ids.values()].sort();
      };
      const expected = (await stateOf(alone, '!group0:example.org')).map((id) => id.replace('!group0:', '!R:'));
      for (const room of rooms) expect((await stateOf(storage, room)).map((id) => id.replace(room, '!R:example.org'))).to.deep.equal(expected);
    } finally {
      await alone.close();
    }
  });

  it('a grouped transaction that fails is undone alone: the others commit, and every caller hears only after the commit', async () => {
    const t = storage.tables.eventTypes;
    const uow = storage.unitOfWork;
    let committedWhenResolved = -1;
    const before = commits();
    const first = uow.transaction(async (tx) => t.insertEventTypeNID(tx, 'org.example.first'));
    const failing = uow.transaction(async (tx) => {
      await t.insertEventTypeNID(tx, 'org.example.failing');
      throw new Error('this caller changed its mind');
    });
    const third = uow.transaction(async (tx) => t.insertEventTypeNID(tx, 'org.example.third')).then((nid) => {
      committedWhenResolved = commits();
      return nid;
    });
    const [a, b, c] = await Promise.allSettled([first, failing, third]);
    expect(a.status).to.equal('fulfilled');
    expect(b.status).to.equal('rejected');
    expect((b as PromiseRejectedResult).reason.message).to.equal('this caller changed its mind');
    expect(c.status).to.equal('fulfilled');
    // One commit for the three, already made when the third caller heard back.
    expect(commits() - before).to.equal(1);
    expect(committedWhenResolved).to.equal(before + 1);
    const known = await storage.roomserver.eventTypeNIDsFor(['org.example.first', 'org.example.failing', 'org.example.third']);
    expect([...known.keys()].sort()).to.deep.equal(['org.example.first', 'org.example.third']);
    // The first of a group failing (it runs without a savepoint) leaves the ones after it whole too.
    const round = await Promise.allSettled([
      uow.transaction(async (tx) => { await t.insertEventTypeNID(tx, 'org.example.gone'); throw new Error('no'); }),
      uow.transaction(async (tx) => t.insertEventTypeNID(tx, 'org.example.kept')),
    ]);
    expect(round.map((r) => r.status)).to.deep.equal(['rejected', 'fulfilled']);
    expect([...(await storage.roomserver.eventTypeNIDsFor(['org.example.gone', 'org.example.kept'])).keys()]).to.deep.equal(['org.example.kept']);
  });
});

describe('sqlite: migration 5', () => {
  it('gives send-to-device messages a storing time: those stored before it count as stored at the migration', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'matrix-storage-migrate-'));
    const file = path.join(dir, 'store.db');
    try {
      const db = new Database(file);
      expect(migrateSqlite(db, undefined, 4)).to.deep.equal([1, 2, 3, 4]);
      db.prepare("INSERT INTO syncapi_send_to_device (user_id, device_id, content) VALUES ('@a:example.org', 'D', '{}')").run();
      db.close();
      const before = Math.floor(Date.now() / 1000) * 1000;
      const storage = await createStorage({ backend: 'sqlite', sqlite: { path: file } });
      try {
        expect((await storage.migrate()).version).to.equal(Math.max(...SQLITE_MIGRATIONS.map((m) => m.version)));
        const [row] = (await storage.dump!.table('send_to_device').read(undefined, 10)).rows;
        expect(row!.sentAt).to.be.within(before, Date.now());
        // Not old enough for a day's retention; a cut after it takes it.
        expect(await storage.sendToDevice.deleteSendToDeviceMessagesSentBefore(before - 86_400_000)).to.equal(0);
        expect(await storage.sendToDevice.deleteSendToDeviceMessagesSentBefore(Date.now() + 1000)).to.equal(1);
      } finally {
        await storage.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sqlite: migration 3', () => {
  it('gives rooms an older build stored without a version the one their create event declares, and indexes events by type', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'matrix-storage-migrate-'));
    const file = path.join(dir, 'store.db');
    try {
      const s = await createStorage({ backend: 'sqlite', sqlite: { path: file } });
      await seedRoom(s, '!old:example.org');
      await s.roomserver.storeEvent(makeEvent({ id: '$orphan', room: '!nocreate:example.org' }));
      await s.close();
      // What the previous build left: version "" (before versions were required), schema version 2, no index.
      const db = new Database(file);
      db.exec(`UPDATE roomserver_rooms SET room_version = ''; DELETE FROM matrix_storage_migrations WHERE version = 3;
        DROP INDEX roomserver_events_type_room`);
      db.close();
      const again = await createStorage({ backend: 'sqlite', sqlite: { path: file } });
      try {
        expect((await again.migrate()).applied).to.deep.equal([3]);
        expect((await again.roomserver.roomInfo('!old:example.org'))!.roomVersion).to.equal('10');
        // No create event stored: nothing to read its version from; it takes the version of what comes next.
        expect((await again.roomserver.roomInfo('!nocreate:example.org'))!.roomVersion).to.equal('');
        expect(await again.roomserver.getRoomsWithEventType('m.room.message')).to.deep.equal(['!nocreate:example.org', '!old:example.org']);
      } finally {
        await again.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

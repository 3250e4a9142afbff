/**
 * What only the PostgreSQL driver has to get right, beyond the conformance suite: its NID numbering, its unit of
 * work, int8 precision, migrations under concurrency and migrate_on_open, schema isolation, and statements that
 * fail inside a transaction.
 */
import { expect } from 'chai';
import { createStorage, type Storage } from '../src/index.js';
import { validateConfig } from '../src/config/schema.js';
import { TransactionClosedError } from '../src/storage/postgres/connection.js';
import pg from 'pg';
import { LATEST_VERSION, MIGRATIONS, migrate as migratePostgres } from '../src/storage/postgres/migrations.js';
import { ConfigError, ConflictError, CorruptionError } from '../src/types/errors.js';
import { asRoomNID } from '../src/types/nids.js';
import { entry, makeEvent, rejects, seedRoom } from './conformance/fixtures.js';
import { adminPool, closeAdminPool, dropSchema, freshSchemaName, openInFreshSchema, testDatabaseURL } from './support/postgres.js';

const settings = { server_name: 'example.org' };

describe('postgres driver', () => {
  let storage: Storage;
  beforeEach(async () => { storage = await openInFreshSchema(settings); });
  afterEach(async () => { await storage.close(); });
  after(closeAdminPool);

  it('new event types and state keys are numbered from 65536; rooms, blocks, snapshots and events from 1', async () => {
    const t = storage.tables;
    const tx = storage.unitOfWork.autocommit;
    expect(await t.eventTypes.insertEventTypeNID(tx, 'm.room.message')).to.equal(65_536);
    expect(await t.eventTypes.insertEventTypeNID(tx, 'org.example.t')).to.equal(65_537);
    expect(await t.eventStateKeys.insertEventStateKeyNID(tx, '@alice:example.org')).to.equal(65_536);
    expect(await t.rooms.insertRoomNID(tx, '!r:example.org', '10')).to.equal(1);
    expect(await t.stateBlocks.insertStateBlock(tx, [entry(1, 1, 1)])).to.equal(1);
    expect(await t.stateSnapshots.insertState(tx, asRoomNID(1), [])).to.equal(1);
    expect(await t.events.reserveEventNID(tx)).to.equal(1);
  });

  it('round trips: a message append takes 2 with warm caches (BEGIN and every read; the writes and COMMIT), a batch of 50 as few', async () => {
    const ev = await seedRoom(storage);
    const stats = storage.requestStats!;
    // Warm: the room, its version, its latest event's ID and the type are known from the seeding.
    let prev = ev.bobJoin.eventID;
    const message = (i: number) => {
      const m = makeEvent({ id: `$rt${i}`, depth: 7 + i, prev: [prev] });
      prev = m.eventID;
      return m;
    };
    await storage.roomserver.appendEvent(message(0));
    stats.reset();
    await storage.roomserver.appendEvent(message(1));
    const single = stats.snapshot();
    expect(single.roundTrips).to.equal(2);
    expect(single.byOperation.BEGIN!.requests).to.equal(1);
    stats.reset();
    const results = await storage.roomserver.appendEvents(Array.from({ length: 50 }, (_, i) => message(2 + i)));
    expect(results.every((r) => r.applied)).to.equal(true);
    expect(stats.snapshot().roundTrips).to.equal(2);
    // A new member: its user's state key is new, so its membership is read once the key is assigned (in the first
    // round trip's pipeline or just after it, as the answers come); then the state block and snapshot the event adds
    // are written before the rows that name them.
    stats.reset();
    await storage.roomserver.appendEvent(makeEvent({ id: '$rt-member', type: 'm.room.member', stateKey: '@new:example.org', sender: '@new:example.org', depth: 60, prev: [prev], content: { membership: 'join' } }));
    expect(stats.snapshot().roundTrips).to.be.within(4, 5);
  });

  it('a Tx used after its transaction ended rejects with TransactionClosedError (committed or rolled back)', async () => {
    const t = storage.tables;
    const committed = await storage.unitOfWork.transaction(async (tx) => tx);
    await rejects(t.rooms.selectRoomIDs(committed), TransactionClosedError, /already ended/);
    await rejects(t.rooms.bulkSelectRoomIDs(committed, []), TransactionClosedError);
    let rolledBack: unknown;
    await rejects(storage.unitOfWork.transaction(async (tx) => { rolledBack = tx; throw new ConflictError('boom'); }), ConflictError);
    await rejects(t.eventTypes.selectEventTypeNID(rolledBack as never, 'm.room.create'), TransactionClosedError);
    // A transaction's Tx still works inside it, and nothing it wrote survives a rollback.
    await rejects(storage.unitOfWork.transaction(async (tx) => {
      await t.rooms.insertRoomNID(tx, '!gone:example.org', '10');
      expect(await t.rooms.selectRoomIDs(tx)).to.deep.equal(['!gone:example.org']);
      throw new Error('roll back');
    }), Error, /roll back/);
    expect(await t.rooms.selectRoomIDs(storage.unitOfWork.autocommit)).to.deep.equal([]);
  });

  it('a statement that a branch of a failed transaction issues late is refused, never run outside the transaction', async () => {
    const t = storage.tables;
    let late: Promise<unknown> | undefined;
    await rejects(storage.unitOfWork.transaction(async (tx) => {
      await t.rooms.insertRoomNID(tx, '!early:example.org', '10');
      late = (async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        await t.rooms.insertRoomNID(tx, '!late:example.org', '10');
      })();
      late.catch(() => {});
      throw new Error('fail');
    }), Error, /fail/);
    await rejects(late!, TransactionClosedError);
    expect(await t.rooms.selectRoomIDs(storage.unitOfWork.autocommit)).to.deep.equal([]);
  });

  it('a ConflictError inside a transaction leaves it usable: duplicates never abort the PostgreSQL transaction', async () => {
    const t = storage.tables;
    await seedRoom(storage);
    const result = await storage.unitOfWork.transaction(async (tx) => {
      const reserved = await t.events.reserveEventNID(tx);
      const attempts = [
        t.eventTypes.insertEventTypeNID(tx, 'm.room.create'),
        t.eventStateKeys.insertEventStateKeyNID(tx, ''),
        t.rooms.insertRoomNID(tx, '!room:example.org', '10'),
        t.events.insertEvent(tx, {
          eventNID: reserved, roomNID: asRoomNID(1), eventTypeNID: entry(1, 1, 1).eventTypeNID, eventStateKeyNID: entry(1, 1, 1).eventStateKeyNID,
          eventID: '$create!room:example.org', authEventNIDs: [], depth: 1, isRejected: false,
        }),
        (async () => {
          await t.roomAliases.insertRoomAlias(tx, '#a:example.org', '!room:example.org', '@alice:example.org');
          await t.roomAliases.insertRoomAlias(tx, '#a:example.org', '!room:example.org', '@alice:example.org');
        })(),
        (async () => {
          const key = { transactionID: 'txn', sessionID: 1, userID: '@alice:example.org' };
          await t.transactions.insertTransaction(tx, key, '$e');
          await t.transactions.insertTransaction(tx, key, '$e');
        })(),
      ];
      for (const a of attempts) await rejects(a, ConflictError);
      // Still usable, and what it wrote before and after the conflicts commits.
      await t.roomAliases.insertRoomAlias(tx, '#b:example.org', '!room:example.org', '@alice:example.org');
      return t.roomAliases.selectAliasesFromRoomID(tx, '!room:example.org');
    });
    expect(result).to.deep.equal(['#a:example.org', '#b:example.org']);
    expect(await t.roomAliases.selectAliasesFromRoomID(storage.unitOfWork.autocommit, '!room:example.org')).to.deep.equal(result);
  });

  it('an int8 at or beyond 2^53 is a CorruptionError, never a rounded number', async () => {
    const t = storage.tables;
    const tx = storage.unitOfWork.autocommit;
    const room = await t.rooms.insertRoomNID(tx, '!r:example.org', '10');
    const schema = storage.config.postgres.schema;
    // 2^53 + 1 would read back as 2^53 through a JS number: it must not read back at all.
    await adminPool().query(`INSERT INTO ${schema}.roomserver_events (event_nid, room_nid, event_type_nid, event_state_key_nid, depth, event_id)
      VALUES (9007199254740993, $1, 1, 1, 1, '$huge')`, [room]);
    await rejects(t.events.bulkSelectEventNID(tx, ['$huge']), CorruptionError, /9007199254740993/);
    await adminPool().query(`UPDATE ${schema}.roomserver_rooms SET latest_event_nids = '{1, 9007199254740992}' WHERE room_nid = $1`, [room]);
    await rejects(t.rooms.selectLatestEventNIDs(tx, room), CorruptionError);
    // The largest exact value is fine.
    await adminPool().query(`UPDATE ${schema}.roomserver_rooms SET latest_event_nids = '{9007199254740991}' WHERE room_nid = $1`, [room]);
    expect((await t.rooms.selectLatestEventNIDs(tx, room)).eventNIDs).to.deep.equal([Number.MAX_SAFE_INTEGER]);
  });

  it('state keys and event types of any length are unique and found (through their hash, not a B-tree on the text)', async () => {
    const k = storage.tables.eventStateKeys;
    const tx = storage.unitOfWork.autocommit;
    const huge = 'k'.repeat(200_000);
    const a = await k.insertEventStateKeyNID(tx, huge);
    const b = await k.insertEventStateKeyNID(tx, `${huge}!`);
    expect(a).to.not.equal(b);
    await rejects(k.insertEventStateKeyNID(tx, huge), ConflictError);
    expect(await k.selectEventStateKeyNID(tx, huge)).to.equal(a);
    expect((await k.bulkSelectEventStateKey(tx, [a])).get(a)).to.equal(huge);
    const type = `org.example.${'t'.repeat(5000)}`;
    const t = await storage.tables.eventTypes.insertEventTypeNID(tx, type);
    expect(await storage.tables.eventTypes.selectEventTypeNID(tx, type)).to.equal(t);
  });

  it('stores in two schemas of one database do not see each other', async () => {
    const other = await openInFreshSchema(settings);
    try {
      await seedRoom(storage, '!mine:example.org');
      expect(await other.roomserver.getKnownRooms()).to.deep.equal([]);
      await seedRoom(other, '!theirs:example.org');
      expect(await storage.roomserver.getKnownRooms()).to.deep.equal(['!mine:example.org']);
      expect(await other.roomserver.getKnownRooms()).to.deep.equal(['!theirs:example.org']);
      // Same numbering in both: sequences are per schema too.
      expect((await storage.roomserver.eventNIDs(['$create!mine:example.org'])).get('$create!mine:example.org')).to.equal(1);
      expect((await other.roomserver.eventNIDs(['$create!theirs:example.org'])).get('$create!theirs:example.org')).to.equal(1);
    } finally {
      await other.close();
    }
  });

  it('startup options in the URL are kept, and postgres.schema still applies', async () => {
    const u = new URL(testDatabaseURL());
    u.searchParams.set('options', '-c statement_timeout=4321 -c search_path=public');
    const schema = freshSchemaName('opt');
    const s = await createStorage({ backend: 'postgres', postgres: { url: u.toString(), schema } });
    try {
      await seedRoom(s);
      const conn = s.unitOfWork as unknown as { query(tx: unknown, text: string): Promise<{ rows: Record<string, string>[] }> };
      const r = await conn.query(s.unitOfWork.autocommit, `SELECT current_setting('statement_timeout') AS t, current_schema() AS s`);
      expect(r.rows[0]).to.deep.equal({ t: '4321ms', s: schema });
      const where = await adminPool().query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1`, [schema]);
      expect(where.rows[0].n).to.be.greaterThan(10);
    } finally {
      await s.close();
      await dropSchema(schema);
    }
  });

  it('statements per call stay few: a message append is 13 with BEGIN and COMMIT; loading a state is 2', async () => {
    await seedRoom(storage);
    const stats = storage.requestStats!;
    stats.reset();
    const prev = '$bob-join!room:example.org';
    await storage.roomserver.appendEvent(makeEvent({ id: '$counted', depth: 7, prev: [prev] }));
    const appended = stats.snapshot();
    expect(appended.byOperation).to.include.keys('BEGIN', 'COMMIT', 'roomserver_rooms SELECT', 'roomserver_events INSERT');
    expect(appended.requests, JSON.stringify(appended.byOperation)).to.be.at.most(13);
    // A store with cold caches (another process) loads a state in two statements: the snapshot, then its blocks.
    const other = await createStorage({ backend: 'postgres', postgres: { url: testDatabaseURL(), schema: storage.config.postgres.schema } });
    try {
      const snapshot = (await other.roomserver.roomInfo('!room:example.org'))!.stateSnapshotNID;
      other.requestStats!.reset();
      expect(await other.roomserver.loadStateAtSnapshot(snapshot)).to.have.length.greaterThan(3);
      expect(other.requestStats!.snapshot().requests).to.equal(2);
    } finally {
      await other.close();
    }
  });

  it('key server hot paths stay few statements: a claim 3 (4 when it falls back), a one-time key upload 4, a device key upload 5', async () => {
    const stats = storage.requestStats!;
    const alice = '@alice:example.org';
    const counted = async (call: () => Promise<unknown>) => {
      stats.reset();
      await call();
      const s = stats.snapshot();
      return Object.fromEntries(Object.entries(s.byOperation).map(([op, cost]) => [op, cost.requests]));
    };
    const keys = new Map(Array.from({ length: 50 }, (_, i) => [`signed_curve25519:K${i}`, `{"i":${i}}`]));
    // The upsert of all 50 keys is one statement; the counts after it another.
    expect(await counted(() => storage.keys.storeOneTimeKeys({ userID: alice, deviceID: 'D', keyJSON: keys }))).to.deep.equal({
      BEGIN: 1, 'keyserver_one_time_keys INSERT': 1, 'keyserver_one_time_keys SELECT': 1, COMMIT: 1,
    });
    // A claim is one DELETE ... RETURNING when it finds a key; one that finds none tries the fallback key with one
    // UPDATE ... RETURNING, whether the device has one or not.
    expect(await counted(() => storage.keys.claimKeys(new Map([[alice, new Map([['D', 'signed_curve25519']])]])))).to.deep.equal({
      BEGIN: 1, 'keyserver_one_time_keys DELETE': 1, COMMIT: 1,
    });
    await storage.keys.storeFallbackKeys({ userID: alice, deviceID: 'FALLBACK', keyJSON: new Map([['signed_curve25519:F', '{}']]) });
    for (const device of ['FALLBACK', 'NO-KEYS']) {
      expect(await counted(() => storage.keys.claimKeys(new Map([[alice, new Map([[device, 'signed_curve25519']])]]))), device).to.deep.equal({
        BEGIN: 1, 'keyserver_one_time_keys DELETE': 1, 'keyserver_fallback_keys UPDATE': 1, COMMIT: 1,
      });
    }
    // A device key upload: the user's lock and max (pipelined), then one upsert for all the devices.
    const devices = [1, 2, 3].map((i) => ({ userID: alice, deviceID: `DEV${i}`, keyJSON: '{}', streamID: 0 }));
    expect(await counted(() => storage.keys.storeLocalDeviceKeys(devices))).to.deep.equal({
      BEGIN: 1, 'pg_advisory_xact_lock SELECT': 1, 'keyserver_device_keys SELECT': 1, 'keyserver_device_keys INSERT': 1, COMMIT: 1,
    });
    expect(devices.map((d) => d.streamID)).to.deep.equal([1, 2, 3]);
  });

  it('store stats count the store and measure its schema on disk', async () => {
    await seedRoom(storage);
    const stats = await storage.stats.collect();
    expect(stats).to.include({ rooms: 1, events: 6 });
    expect(stats.stateBlocks).to.be.greaterThan(0);
    expect(stats.stateTuples).to.be.greaterThan(0);
    expect(stats.stateBytes).to.be.greaterThan(0);
    expect(stats.totalBytes).to.be.a('number').and.greaterThan(100_000);
  });
});

describe('postgres migrations', () => {
  after(closeAdminPool);
  const versions = async (schema: string) =>
    (await adminPool().query<{ version: number }>(`SELECT version FROM ${schema}.matrix_storage_migrations ORDER BY version`)).rows.map((r) => r.version);
  const schemaExists = async (schema: string) =>
    ((await adminPool().query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount ?? 0) > 0;

  it('two processes opening one new schema at once apply each migration exactly once', async () => {
    const schema = freshSchemaName('mig');
    const config = { backend: 'postgres', postgres: { url: testDatabaseURL(), schema } };
    try {
      const opened = await Promise.all([createStorage(config), createStorage(config), createStorage(config)]);
      const reports = await Promise.all(opened.map((s) => s.migrate()));
      await Promise.all(opened.map((s) => s.close()));
      expect(reports.map((r) => r.version)).to.deep.equal([LATEST_VERSION, LATEST_VERSION, LATEST_VERSION]);
      expect(reports.flatMap((r) => r.applied).sort()).to.deep.equal(MIGRATIONS.map((m) => m.version).sort());
      expect(await versions(schema)).to.deep.equal(MIGRATIONS.map((m) => m.version));
      // Seeds were inserted once.
      expect((await adminPool().query(`SELECT count(*)::int AS n FROM ${schema}.roomserver_event_types`)).rows[0].n).to.equal(7);
    } finally {
      await dropSchema(schema);
    }
  });

  it('migration 5 gives send-to-device messages stored before it the time of the migration', async () => {
    const schema = freshSchemaName('mig');
    const pool = new pg.Pool({ connectionString: testDatabaseURL(), max: 1, options: `-c search_path=${schema}` });
    try {
      expect(await migratePostgres(pool, schema, undefined, 4)).to.deep.equal([1, 2, 3, 4]);
      await pool.query("INSERT INTO syncapi_send_to_device (user_id, device_id, content) VALUES ('@a:example.org', 'D', '{}')");
      const before = Date.now();
      const storage = await createStorage({ backend: 'postgres', postgres: { url: testDatabaseURL(), schema, pool_size: 2 } });
      try {
        const [row] = (await storage.dump!.table('send_to_device').read(undefined, 10)).rows;
        expect(row!.sentAt).to.be.within(before - 1000, Date.now());
        expect(await storage.sendToDevice.deleteSendToDeviceMessagesSentBefore(before - 86_400_000)).to.equal(0);
        // New messages state their own time: the column has no default left.
        await storage.sendToDevice.storeNewSendForDeviceMessage('@a:example.org', 'D', { sender: '@b:example.org', type: 't', content: {} });
        expect(await storage.sendToDevice.deleteSendToDeviceMessagesSentBefore(Date.now() + 1000)).to.equal(2);
      } finally {
        await storage.close();
      }
      const defaults = await pool.query(`SELECT column_default FROM information_schema.columns WHERE table_schema = $1
        AND table_name = 'syncapi_send_to_device' AND column_name = 'sent_at'`, [schema]);
      expect(defaults.rows).to.deep.equal([{ column_default: null }]);
    } finally {
      await pool.end();
      await dropSchema(schema);
    }
  });

  it('with migrate_on_open: false, a missing schema is refused (naming `matrix-storage migrate`) and nothing is created', async () => {
    const schema = freshSchemaName('mig');
    const config = { backend: 'postgres', postgres: { url: testDatabaseURL(), schema, migrate_on_open: false } };
    try {
      const err = await rejects(createStorage(config), ConfigError, /matrix-storage migrate/);
      expect(err.message).to.contain(`"${schema}"`).and.contain('version 0').and.contain('migrate_on_open');
      expect(await schemaExists(schema)).to.equal(false);
      // Once migrated, it opens without migrating.
      const migrated = await createStorage({ ...config, postgres: { ...config.postgres, migrate_on_open: true } });
      await migrated.close();
      const s = await createStorage(config);
      expect(await s.migrate()).to.deep.equal({ applied: [], version: LATEST_VERSION });
      await seedRoom(s);
      await s.close();
    } finally {
      await dropSchema(schema);
    }
  });

  it('a schema behind this build is refused with migrate_on_open: false', async () => {
    const schema = freshSchemaName('mig');
    const config = { backend: 'postgres', postgres: { url: testDatabaseURL(), schema, migrate_on_open: false } };
    try {
      await (await createStorage({ ...config, postgres: { ...config.postgres, migrate_on_open: true } })).close();
      await adminPool().query(`DELETE FROM ${schema}.matrix_storage_migrations WHERE version = $1`, [LATEST_VERSION]);
      await rejects(createStorage(config), ConfigError, new RegExp(`version ${LATEST_VERSION - 1}.*needs version ${LATEST_VERSION}`));
    } finally {
      await dropSchema(schema);
    }
  });

  it('postgres.schema must be a plain identifier; the default is public', () => {
    const base = { backend: 'postgres', postgres: { url: 'postgres://u@h/db' } };
    expect(validateConfig(base, ['postgres']).postgres.schema).to.equal('public');
    expect(validateConfig({ ...base, postgres: { ...base.postgres, schema: 'matrix_2' } }, ['postgres']).postgres.schema).to.equal('matrix_2');
    for (const bad of ['Matrix', 'a-b', '1abc', 'pg_mine', 'x; DROP SCHEMA public', '"q"', '', 'a'.repeat(64), 'é']) {
      let err: unknown;
      try { validateConfig({ ...base, postgres: { ...base.postgres, schema: bad } }, ['postgres']); } catch (e) { err = e; }
      expect(err, bad).to.be.instanceOf(ConfigError);
      expect((err as Error).message).to.contain('"postgres.schema"');
    }
  });

  it('an unreachable server fails the open with the server\'s error, and leaks no pool', async () => {
    const u = new URL(testDatabaseURL());
    u.pathname = '/no_such_database_here';
    let err: unknown;
    try { await createStorage({ backend: 'postgres', postgres: { url: u.toString(), schema: 'x' } }); } catch (e) { err = e; }
    expect((err as Error).message).to.match(/no_such_database_here/);
  });
});

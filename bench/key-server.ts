/**
 * Bench 4, key server: one-time-key claims per second (KeyDatabase.claimKeys, one key of a random user's device)
 * and device-key uploads per second (storeLocalDeviceKeys, one new device of a random user) with 8 concurrent
 * clients. The floor runs the same number of plain statements from 8 clients on plain tables of the same engine: a
 * DELETE ... RETURNING of one key (PostgreSQL: its row picked FOR UPDATE SKIP LOCKED) and an INSERT of one device.
 * PostgreSQL: the bench cluster (fsync on, synchronous_commit on), a pool of 8+ connections, every call committed
 * on its own. SQLite: one connection (its single writer); 8 clients interleave their calls on it.
 */
import pg from 'pg';
import type { Storage } from '../src/index.js';
import {
  fixed, freshSqliteFile, openPostgresStore, openSqliteStore, plainSqlite, postgresDatabase, seededRandom, since, times,
  type BenchOptions, type Cell, type Section,
} from './support.js';

const CLIENTS = 8;
const ALGORITHM = 'signed_curve25519';
const DEVICE = 'PHONE';

/** The plain tables and statements of the floor. */
interface PlainKeys {
  load(keys: readonly KeyRow[]): Promise<void>;
  /** Client `client`'s DELETE ... RETURNING of one key of the device; true if there was one. */
  claim(client: number, userID: string): Promise<boolean>;
  upload(client: number, userID: string, deviceID: string, json: string): Promise<void>;
  close(): Promise<void>;
}

type KeyRow = readonly [userID: string, keyID: string, json: string];

const PLAIN_TABLES = [
  `bench_otk (user_id TEXT NOT NULL, device_id TEXT NOT NULL, algorithm TEXT NOT NULL, key_id TEXT NOT NULL, key_json TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id))`,
  'bench_device_keys (user_id TEXT NOT NULL, device_id TEXT NOT NULL, key_json TEXT NOT NULL, PRIMARY KEY (user_id, device_id))',
];

function sqlitePlainKeys(file: string): PlainKeys {
  const db = plainSqlite(file);
  for (const t of PLAIN_TABLES) db.exec(`CREATE TABLE ${t}`);
  const insertKey = db.prepare(`INSERT INTO bench_otk VALUES (?, '${DEVICE}', '${ALGORITHM}', ?, ?)`);
  const claim = db.prepare(`DELETE FROM bench_otk WHERE rowid = (SELECT rowid FROM bench_otk
    WHERE user_id = ? AND device_id = '${DEVICE}' AND algorithm = '${ALGORITHM}' LIMIT 1) RETURNING key_id, key_json`);
  const upload = db.prepare('INSERT INTO bench_device_keys VALUES (?, ?, ?)');
  return {
    load: async (keys) => db.transaction(() => {
      for (const k of keys) insertKey.run(...k);
    })(),
    claim: async (_client, userID) => claim.get(userID) !== undefined,
    upload: async (_client, userID, deviceID, json) => void upload.run(userID, deviceID, json),
    close: async () => void db.close(),
  };
}

async function postgresPlainKeys(url: string, schema: string): Promise<PlainKeys> {
  const clients: pg.Client[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const c = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
    await c.connect();
    clients.push(c);
  }
  const admin = clients[0]!;
  await admin.query(`CREATE SCHEMA IF NOT EXISTS ${schema}; SET search_path = ${schema}`);
  for (const t of PLAIN_TABLES) await admin.query(`CREATE TABLE ${t}`);
  return {
    load: async (keys) => {
      for (let i = 0; i < keys.length; i += 10_000) {
        const chunk = keys.slice(i, i + 10_000);
        await admin.query(`INSERT INTO bench_otk SELECT u, '${DEVICE}', '${ALGORITHM}', k, j FROM unnest($1::text[], $2::text[], $3::text[]) AS t(u, k, j)`,
          [chunk.map((k) => k[0]), chunk.map((k) => k[1]), chunk.map((k) => k[2])]);
      }
      await admin.query('ANALYZE bench_otk');
    },
    claim: async (client, userID) => ((await clients[client]!.query({
      name: 'claim',
      text: `DELETE FROM bench_otk WHERE ctid = (SELECT ctid FROM bench_otk WHERE user_id = $1 AND device_id = '${DEVICE}'
        AND algorithm = '${ALGORITHM}' LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING key_id, key_json`,
      values: [userID],
    })).rowCount ?? 0) > 0,
    upload: async (client, userID, deviceID, json) => void (await clients[client]!.query({
      name: 'upload', text: 'INSERT INTO bench_device_keys VALUES ($1, $2, $3)', values: [userID, deviceID, json],
    })),
    close: async () => {
      for (const c of clients) await c.end();
    },
  };
}

interface Engine {
  readonly name: string;
  open(): Promise<Storage>;
  plain(): Promise<PlainKeys>;
}

/** What one workload measured: calls per second, and statements per call. */
interface Rate {
  readonly perSecond: number;
  readonly statementsPerCall: number;
  readonly succeeded: number;
}

interface Run {
  readonly ms: number;
  readonly calls: number;
  /** Calls that got what they asked for (a claim of a device whose keys ran out gets none). */
  readonly succeeded: number;
}

/** Runs `calls` calls split over CLIENTS concurrent clients; each client draws its users from its own seeded PRNG. */
async function concurrently(calls: number, seed: number, call: (client: number, i: number, random: () => number) => Promise<boolean>): Promise<Run> {
  let succeeded = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async (_, client) => {
    const random = seededRandom(seed + client);
    for (let i = client; i < calls; i += CLIENTS) if (await call(client, i, random)) succeeded++;
  }));
  return { ms: since(t0), calls, succeeded };
}

const deviceKeyJSON = (userID: string, deviceID: string) => JSON.stringify({
  user_id: userID, device_id: deviceID, algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
  keys: { [`curve25519:${deviceID}`]: 'x'.repeat(43), [`ed25519:${deviceID}`]: 'y'.repeat(43) },
  signatures: { [userID]: { [`ed25519:${deviceID}`]: 'z'.repeat(86) } },
});

export async function keyServerBench(o: BenchOptions): Promise<Section> {
  const users = o.quick ? 100 : 400;
  const keysPerUser = o.quick ? 40 : 100;
  const claims = Math.floor(users * keysPerUser * 0.8);
  const uploads = o.quick ? 2_000 : 8_000;
  const userID = (n: number) => `@user${n}:example.org`;
  const keyRows: KeyRow[] = [];
  for (let u = 0; u < users; u++) {
    for (let k = 0; k < keysPerUser; k++) keyRows.push([userID(u), `AAAA${k}`, JSON.stringify({ key: `key-${u}-${k}`.padEnd(43, 'k'), signatures: { [userID(u)]: { [`ed25519:${DEVICE}`]: 's'.repeat(86) } } })]);
  }
  const engines: Engine[] = [{ name: 'SQLite', open: () => openSqliteStore(freshSqliteFile(o, 'keys')), plain: async () => sqlitePlainKeys(freshSqliteFile(o, 'keys-floor')) }];
  const notes: string[] = [];
  if (o.postgresURL) {
    const url = await postgresDatabase(o, 'bench_keys');
    const probe = await openPostgresStore(url, 'keys_probe');
    try {
      await probe.keys.oneTimeKeysCount(userID(0), DEVICE);
      engines.push({ name: 'PostgreSQL', open: () => openPostgresStore(url, 'keys', { postgres: { pool_size: CLIENTS + 2 } }), plain: () => postgresPlainKeys(url, 'keys_floor') });
    } catch (e) {
      notes.push(`PostgreSQL is pending: its key server tables are not there yet (${(e as Error).message.split(':')[0]}).`);
    } finally {
      await probe.close();
    }
  }
  const measured = [];
  for (const engine of engines) {
    const storage = await engine.open();
    const plain = await engine.plain();
    try {
      for (let u = 0; u < users; u++) {
        const mine = keyRows.slice(u * keysPerUser, (u + 1) * keysPerUser);
        await storage.keys.storeOneTimeKeys({ userID: userID(u), deviceID: DEVICE, keyJSON: new Map(mine.map(([, k, j]) => [`${ALGORITHM}:${k}`, j])) });
      }
      await plain.load(keyRows);
      const stats = storage.requestStats!;
      const ours = async (run: () => Promise<Run>): Promise<Rate> => {
        stats.reset();
        const r = await run();
        return { perSecond: (r.calls * 1000) / r.ms, statementsPerCall: stats.snapshot().requests / r.calls, succeeded: r.succeeded };
      };
      const floor = async (run: () => Promise<Run>): Promise<Rate> => {
        const r = await run();
        return { perSecond: (r.calls * 1000) / r.ms, statementsPerCall: 1, succeeded: r.succeeded };
      };
      const pick = (random: () => number) => userID(Math.floor(random() * users));
      const claim = await ours(() => concurrently(claims, o.seed, async (_c, _i, random) =>
        (await storage.keys.claimKeys(new Map([[pick(random), new Map([[DEVICE, ALGORITHM]])]]))).length > 0));
      const claimFloor = await floor(() => concurrently(claims, o.seed, (c, _i, random) => plain.claim(c, pick(random))));
      const upload = await ours(() => concurrently(uploads, o.seed, async (_c, i, random) => {
        const u = pick(random);
        await storage.keys.storeLocalDeviceKeys([{ userID: u, deviceID: `DEV${i}`, keyJSON: deviceKeyJSON(u, `DEV${i}`), streamID: 0 }]);
        return true;
      }));
      const uploadFloor = await floor(() => concurrently(uploads, o.seed, async (c, i, random) => {
        const u = pick(random);
        await plain.upload(c, u, `DEV${i}`, deviceKeyJSON(u, `DEV${i}`));
        return true;
      }));
      o.log(`  key server: ${engine.name}: ${claim.perSecond.toFixed(0)} claims/s (floor ${claimFloor.perSecond.toFixed(0)}), ` +
        `${upload.perSecond.toFixed(0)} uploads/s (floor ${uploadFloor.perSecond.toFixed(0)})`);
      measured.push({ engine: engine.name, operation: 'one-time-key claim', ours: claim, floor: claimFloor });
      measured.push({ engine: engine.name, operation: 'device-key upload', ours: upload, floor: uploadFloor });
    } finally {
      await plain.close();
      await storage.close();
    }
  }
  const rows: Cell[][] = measured.map((m) => [
    m.engine, m.operation, fixed(m.ours.perSecond, 0), fixed(m.floor.perSecond, 0), times(m.ours.perSecond / m.floor.perSecond),
    fixed(m.ours.statementsPerCall, 1), times(m.ours.statementsPerCall / m.floor.statementsPerCall),
  ]);
  return {
    id: 'key-server',
    title: `Key server: ${CLIENTS} concurrent clients`,
    notes: [
      `${users} users with one device and ${keysPerUser} one-time keys each; ${claims.toLocaleString('en-US')} claims of one key of a random user's device, ` +
        `${uploads.toLocaleString('en-US')} uploads of a new device's keys for a random user, split over ${CLIENTS} clients.`,
      'Ours: KeyDatabase.claimKeys and storeLocalDeviceKeys, each call its own transaction. Floor: the same number of plain statements ' +
        'from the same clients on plain tables of the same engine (DELETE ... RETURNING one key; INSERT one device), each committed on its own.',
      'PostgreSQL: fsync on, synchronous_commit on, one connection per client. SQLite: one connection, the calls of the 8 clients interleaved on it. Higher calls/s is better.',
      ...notes,
    ],
    columns: ['engine', 'operation', 'ours calls/s', 'floor calls/s', '× floor', 'statements/call', '× floor (1)'],
    rows,
    data: { clients: CLIENTS, users, keysPerUser, claims, uploads, measured, pending: notes },
  };
}

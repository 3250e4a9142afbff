/**
 * Bench 5, Cosmos DB on the in-process emulator (@vercel/cosmosdb-server, started as the tests start it, driven by
 * the real @azure/cosmos SDK): requests and body bytes per stored event (the import of a small generated room),
 * per state load (the current state, state caches off) and per one-time-key claim, each against a floor measured on
 * the same emulator with the same SDK:
 * - a plain document-per-event store: one create per event;
 * - a state stored as one document: one point read;
 * - a plain document-per-key store: one query for a key of the device, then one delete.
 * The emulator's times are not Azure's and it charges 1 RU for every request, so only requests and bytes are
 * compared. Requests are counted at the emulator (every HTTP request, the SDK's own included) for both sides.
 */
import { CosmosClient, type Container } from '@azure/cosmos';
import https from 'node:https';
import { importPDUFile as importFile } from '../src/io/import.js';
import { createStorage, parseEvent, type Storage } from '../src/index.js';
import { emulatorConfig, startCosmosEmulator, type CosmosEmulator } from '../test/support/cosmos-emulator.js';
import { eventIDOfLine, fileLines, fixed, median, roomFile, times, type BenchOptions, type Cell, type Section } from './support.js';

const DATABASE = 'bench';
const TENANT = 'bench';
const DEVICE = 'PHONE';
const ALGORITHM = 'signed_curve25519';

/** Requests and body bytes (both ways) the emulator saw while `fn` ran. */
interface Traffic {
  readonly requests: number;
  readonly bytes: number;
}

async function traffic<T>(emulator: CosmosEmulator, fn: () => Promise<T>): Promise<{ result: T; traffic: Traffic }> {
  const r0 = emulator.requestCount();
  const b0 = emulator.bodyBytes();
  const result = await fn();
  const b1 = emulator.bodyBytes();
  return { result, traffic: { requests: emulator.requestCount() - r0, bytes: b1.requests - b0.requests + b1.responses - b0.responses } };
}

/** The floors' plain container, through the same SDK with the same settings as the driver's. */
async function plainContainer(emulator: CosmosEmulator): Promise<{ client: CosmosClient; container: Container }> {
  const client = new CosmosClient({
    endpoint: emulator.endpoint, key: Buffer.from('emulator-key').toString('base64'),
    agent: new https.Agent({ rejectUnauthorized: false, keepAlive: true }),
  });
  const { database } = await client.databases.createIfNotExists({ id: DATABASE });
  const { container } = await database.containers.createIfNotExists({ id: 'plain', partitionKey: { paths: ['/pk'], version: 2 } });
  await container.items.upsert({ id: 'warm-up', pk: 'warm-up' }); // the SDK's first request fetches metadata
  return { client, container };
}

interface Measured {
  readonly operation: string;
  readonly count: number;
  readonly ours: Traffic;
  readonly floor: Traffic;
  readonly floorName: string;
  /** The driver's own count of its requests (ours), to cross-check the emulator's, and by table operation. */
  readonly driverRequests: number;
  readonly byOperation: Record<string, number>;
  /** Request units the emulator charged per operation (1 per document operation, a bulk request's each counted). */
  readonly ru?: number;
  /** What Azure would charge, estimated from the same operations: see azureRU. */
  readonly azureRU?: number;
}

/** Table operations that write (the rest read). */
const WRITES = /insert|update|upsert|write|claim|mirror|mark|release|delete|increment|seed|commit/i;

/**
 * Azure's charge estimated from the emulator's per-document charges by table operation: a point read of a small
 * document costs about 1 RU, a write of up to 1 KB with the default indexing about 6 (Microsoft's published
 * figures; the event JSON documents are about 1 KB). An estimate, not a measurement: the emulator charges 1 for each.
 */
function azureRU(storage: Storage, n: number): { ru: number; azureRU: number } {
  const ops = Object.entries(storage.requestStats!.snapshot().byOperation);
  const ru = ops.reduce((sum, [, v]) => sum + v.requestCharge, 0) / n;
  const azure = ops.reduce((sum, [k, v]) => sum + v.requestCharge * (WRITES.test(k) ? 6 : 1), 0) / n;
  return { ru, azureRU: azure };
}

/** The driver's requests per operation, by table operation ("stateBlocks.select": 8). */
const perOperation = (storage: Storage, n: number): Record<string, number> =>
  Object.fromEntries(Object.entries(storage.requestStats!.snapshot().byOperation).map(([k, v]) => [k, v.requests / n]));

const perOp = (t: Traffic, n: number): Traffic => ({ requests: t.requests / n, bytes: t.bytes / n });

async function importRoom(o: BenchOptions, emulator: CosmosEmulator, storage: Storage, plain: Container): Promise<Measured> {
  const members = o.quick ? 60 : 200;
  const room = await roomFile(o, { members, events: members * 10, seed: o.seed });
  storage.requestStats!.reset();
  const ours = await traffic(emulator, () => importFile(storage, room.file));
  const driverRequests = storage.requestStats!.snapshot().requests;
  const byOperation = perOperation(storage, room.events);
  const charged = azureRU(storage, room.events);
  const floor = await traffic(emulator, async () => {
    for await (const line of fileLines(room.file)) {
      const id = eventIDOfLine(line);
      await plain.items.create({ id, pk: `event|${id}`, json: line });
    }
  });
  o.log(`  cosmos: imported ${room.events} events: ${(ours.traffic.requests / room.events).toFixed(1)} requests per event`);
  return {
    operation: `store an event (import of ${room.events.toLocaleString('en-US')} events)`, count: room.events,
    ours: perOp(ours.traffic, room.events), floor: perOp(floor.traffic, room.events),
    floorName: 'a plain store: one create per event', driverRequests: driverRequests / room.events, byOperation, ...charged,
  };
}

/**
 * Single appends after the import, by kind, each its own appendEvent call (as a homeserver's room input makes them):
 * a message, a new user's join, a profile change, an invite, a leave; and a redaction of the message.
 */
async function appendOneByKind(emulator: CosmosEmulator, storage: Storage): Promise<Measured[]> {
  const db = storage.roomserver;
  const [roomID] = await db.getKnownRooms();
  const info = (await db.roomInfo(roomID!))!;
  const sender = '@bench-admin:example.org';
  let n = 0;
  const next = async (fields: Record<string, unknown>) => {
    const latest = await db.latestEventIDs(info.roomNID);
    const pdu = { room_id: roomID, sender, origin_server_ts: 1_700_000_000_000 + n++, depth: latest.depth, prev_events: latest.eventIDs,
      auth_events: [], content: {}, ...fields };
    return parseEvent(JSON.stringify(pdu), { roomVersion: info.roomVersion });
  };
  const kinds: [string, Record<string, unknown>][] = [
    ['a message', { type: 'm.room.message', content: { msgtype: 'm.text', body: 'hello' } }],
    ['a new user\'s join', { type: 'm.room.member', state_key: '@newcomer:example.org', sender: '@newcomer:example.org', content: { membership: 'join' } }],
    ['a profile change (join over join)', { type: 'm.room.member', state_key: '@newcomer:example.org', sender: '@newcomer:example.org', content: { membership: 'join', displayname: 'N' } }],
    ['an invite', { type: 'm.room.member', state_key: '@guest:example.org', content: { membership: 'invite' } }],
    ['a leave', { type: 'm.room.member', state_key: '@newcomer:example.org', sender: '@newcomer:example.org', content: { membership: 'leave' } }],
  ];
  const out: Measured[] = [];
  // Live traffic takes a range of 1,000 event NIDs once per 1,000 events: a first, unmeasured message takes the range
  // the import left nearly used, so that each measured append costs what a steady stream's does.
  await db.appendEvent(await next(kinds[0]![1]));
  let message = '';
  for (const [kind, fields] of kinds) {
    const event = await next(fields);
    if (!message) message = event.eventID;
    storage.requestStats!.reset();
    const { traffic: t } = await traffic(emulator, () => db.appendEvent(event));
    out.push({ operation: `append one event: ${kind}`, count: 1, ours: t, floor: { requests: 1, bytes: 0 }, floorName: 'one create',
      driverRequests: storage.requestStats!.snapshot().requests, byOperation: perOperation(storage, 1), ...azureRU(storage, 1) });
  }
  const redaction = await next({ type: 'm.room.redaction', redacts: message, content: {} });
  storage.requestStats!.reset();
  const { traffic: t } = await traffic(emulator, () => db.appendEvent(redaction));
  out.push({ operation: 'append one event: a redaction of the message', count: 1, ours: t, floor: { requests: 1, bytes: 0 }, floorName: 'one create',
    driverRequests: storage.requestStats!.snapshot().requests, byOperation: perOperation(storage, 1), ...azureRU(storage, 1) });
  return out;
}

/** Every imported event's JSON in one bulk read (events by NID), caches cold: requests against one point read each. */
async function readAllEvents(o: BenchOptions, emulator: CosmosEmulator, container: string): Promise<Measured> {
  const reader = await createStorage({ ...emulatorConfig(emulator, DATABASE, container, TENANT), state: { block_cache_bytes: 0 } });
  try {
    const [roomID] = await reader.roomserver.getKnownRooms();
    const last = (await reader.roomserver.latestEventIDs((await reader.roomserver.roomInfo(roomID!))!.roomNID)).eventIDs;
    const maxNID = Math.max(...(await reader.roomserver.eventNIDs(last)).values());
    const nids = Array.from({ length: maxNID }, (_, i) => i + 1) as never[];
    reader.requestStats!.reset();
    const { result, traffic: t } = await traffic(emulator, () => reader.roomserver.events(nids));
    o.log(`  cosmos: read ${result.length} events in bulk: ${t.requests} requests`);
    return {
      operation: `read ${result.length.toLocaleString('en-US')} events' JSON by NID (${nids.length.toLocaleString('en-US')} NIDs asked)`, count: 1,
      ours: t, floor: { requests: nids.length, bytes: 0 }, floorName: 'one point read per NID asked (this driver before)',
      driverRequests: reader.requestStats!.snapshot().requests, byOperation: perOperation(reader, 1), ...azureRU(reader, 1),
    };
  } finally {
    await reader.close();
  }
}

async function loadCurrentState(o: BenchOptions, emulator: CosmosEmulator, container: string, plain: Container): Promise<Measured> {
  const reader = await createStorage({ ...emulatorConfig(emulator, DATABASE, container, TENANT), state: { block_cache_bytes: 0 } });
  try {
    const [roomID] = await reader.roomserver.getKnownRooms();
    const state = await reader.roomserver.currentState(roomID!); // warms the SDK and the driver's ID caches, not the blocks
    const repeats = 3;
    const samples: Traffic[] = [];
    reader.requestStats!.reset();
    for (let i = 0; i < repeats; i++) samples.push((await traffic(emulator, () => reader.roomserver.currentState(roomID!))).traffic);
    const driverRequests = reader.requestStats!.snapshot().requests;
    const byOperation = perOperation(reader, repeats);
    const charged = azureRU(reader, repeats);
    const doc = { id: 'current-state', pk: `state|${roomID}`, entries: state.map((e) => [e.eventTypeNID, e.eventStateKeyNID, e.eventNID]) };
    await plain.items.upsert(doc);
    const floor = (await traffic(emulator, () => plain.item(doc.id, doc.pk).read())).traffic;
    const blocks = (await reader.roomserver.stateBlockNIDs([(await reader.roomserver.roomInfo(roomID!))!.stateSnapshotNID]))[0]!.stateBlockNIDs.length;
    o.log(`  cosmos: current state of ${state.length} entries in ${blocks} blocks`);
    return {
      operation: `load the current state (${state.length.toLocaleString('en-US')} entries, ${blocks} blocks; caches off)`, count: 1,
      ours: { requests: median(samples.map((s) => s.requests)), bytes: median(samples.map((s) => s.bytes)) }, floor,
      floorName: 'the state as one document: one point read', driverRequests: driverRequests / repeats, byOperation, ...charged,
    };
  } finally {
    await reader.close();
  }
}

async function claimKeys(o: BenchOptions, emulator: CosmosEmulator, storage: Storage, plain: Container): Promise<Measured> {
  const users = o.quick ? 10 : 20;
  const keysPerUser = 20;
  const claims = users * 10;
  const userID = (n: number) => `@keys${n}:example.org`;
  const keyJSON = (u: number, k: number) => JSON.stringify({ key: `key-${u}-${k}`.padEnd(43, 'k'), signatures: { [userID(u)]: { [`ed25519:${DEVICE}`]: 's'.repeat(86) } } });
  for (let u = 0; u < users; u++) {
    await storage.keys.storeOneTimeKeys({ userID: userID(u), deviceID: DEVICE, keyJSON: new Map(Array.from({ length: keysPerUser }, (_, k) => [`${ALGORITHM}:AAAA${k}`, keyJSON(u, k)])) });
    for (let k = 0; k < keysPerUser; k++) {
      await plain.items.create({ id: `${ALGORITHM}:AAAA${k}`, pk: `otk|${userID(u)}|${DEVICE}`, algorithm: ALGORITHM, json: keyJSON(u, k) });
    }
  }
  storage.requestStats!.reset();
  const ours = await traffic(emulator, async () => {
    for (let i = 0; i < claims; i++) await storage.keys.claimKeys(new Map([[userID(i % users), new Map([[DEVICE, ALGORITHM]])]]));
  });
  const driverRequests = storage.requestStats!.snapshot().requests;
  const byOperation = perOperation(storage, claims);
  const charged = azureRU(storage, claims);
  const floor = await traffic(emulator, async () => {
    for (let i = 0; i < claims; i++) {
      const pk = `otk|${userID(i % users)}|${DEVICE}`;
      const { resources } = await plain.items.query<{ id: string; json: string }>({
        query: 'SELECT TOP 1 c.id, c.json FROM c WHERE c.pk = @pk AND c.algorithm = @algorithm',
        parameters: [{ name: '@pk', value: pk }, { name: '@algorithm', value: ALGORITHM }],
      }, { partitionKey: pk }).fetchAll();
      if (resources[0]) await plain.item(resources[0].id, pk).delete();
    }
  });
  return {
    operation: `claim a one-time key (${claims} claims)`, count: claims, ours: perOp(ours.traffic, claims), floor: perOp(floor.traffic, claims),
    floorName: 'a plain store: one query for a key, one delete', driverRequests: driverRequests / claims, byOperation, ...charged,
  };
}

/** The table operations that make up most of an operation's requests, biggest first. */
const mainOperations = (byOperation: Record<string, number>) =>
  Object.entries(byOperation).filter(([, n]) => n >= 0.5).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${+n.toFixed(2)}`).join(', ');

export async function cosmosBench(o: BenchOptions): Promise<Section> {
  const emulator = await startCosmosEmulator();
  const measured: Measured[] = [];
  try {
    const { client, container: plain } = await plainContainer(emulator);
    const storage = await createStorage(emulatorConfig(emulator, DATABASE, 'ours', TENANT));
    try {
      measured.push(await importRoom(o, emulator, storage, plain));
      measured.push(await loadCurrentState(o, emulator, 'ours', plain));
      measured.push(await readAllEvents(o, emulator, 'ours'));
      measured.push(...await appendOneByKind(emulator, storage));
      measured.push(await claimKeys(o, emulator, storage, plain));
    } finally {
      await storage.close();
      client.dispose();
    }
  } finally {
    await emulator.close();
  }
  const rows: Cell[][] = measured.map((m) => [
    m.operation, fixed(m.ours.requests, 1), fixed(m.floor.requests, 1), times(m.ours.requests / m.floor.requests),
    fixed(m.ours.bytes, 0), fixed(m.floor.bytes, 0), times(m.ours.bytes / m.floor.bytes), m.floorName,
    m.ru === undefined ? '-' : fixed(m.ru, 1), m.azureRU === undefined ? '-' : fixed(m.azureRU, 0),
  ]);
  return {
    id: 'cosmos',
    title: 'Cosmos DB (in-process emulator): requests and bytes per operation',
    notes: [
      'The real @azure/cosmos SDK against @vercel/cosmosdb-server in this process, as the tests run it. Its times are not Azure\'s and it charges ' +
        '1 RU per request, so only requests and bytes are compared.',
      'Requests: every HTTP request the emulator saw during the operations (the SDK\'s own included), per operation. ' +
        'Bytes: request and response bodies, both ways, per operation.',
      'Requests are HTTP requests (what latency and the emulator count); Azure bills request units per document operation, ' +
        'so a bulk request of 100 reads costs what 100 point reads cost. RU (emulator): the charge the emulator reported (1 per document ' +
        'operation). RU on Azure (est.): the same operations at about 1 RU per point read and 6 per write of up to 1 KB.',
      'Floors: a plain document-per-event store (one create per event); the state as one document (one point read); ' +
        'a plain document-per-key store (a query for one key of the device, then a delete).',
      `The driver's own count (storage.requestStats, what \`matrix-storage import\` prints) per operation: ` +
        `${measured.map((m) => m.driverRequests.toFixed(1)).join(', ')}; the emulator also sees the SDK's own requests (a query's plan). ` +
        `By table operation: ${measured.map((m) => mainOperations(m.byOperation)).join('; ')} (all of them in results.json).`,
    ],
    columns: ['operation', 'ours requests', 'floor requests', '× floor', 'ours bytes', 'floor bytes', '× floor', 'floor', 'RU (emulator)', 'RU on Azure (est.)'],
    rows,
    data: { measured },
  };
}

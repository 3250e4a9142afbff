import { expect } from 'chai';
import { createStorage, type Storage } from '../src/index.js';
import { encodeKey, partitionKey } from '../src/storage/cosmosdb/ids.js';
import { generateRoom } from '../src/io/generate-room.js';
import { validateGenerateOptions } from '../src/io/generate-options.js';
import { parsePDU } from '../src/types/event.js';
import { MembershipState } from '../src/types/membership.js';

/** A generated line (a room version 10 PDU) as the event it is. */
const parseEvent = (line: string) => parsePDU(line, '10').event;
import { ConfigError, StoreUnavailableError } from '../src/types/errors.js';
import { conformanceSuite } from './conformance/index.js';
import { SUITE_SETTINGS } from './conformance/harness.js';
import { makeEvent, seedRoom } from './conformance/fixtures.js';
import { fillEveryTable, readWholeDump } from './conformance/fill-store.js';
import { checkStore } from '../src/io/check.js';
import { emulatorConfig, faultMix, inContainer, isBulkRequest, isDocumentWrite } from './support/cosmos-emulator.js';
import { importPDUFile } from '../src/io/import.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cosmosEmulatorDriver, sharedEmulator } from './support/drivers-cosmos.js';

const mocha = { describe, it, beforeEach, afterEach };
conformanceSuite(mocha, cosmosEmulatorDriver());

let container = 0;
async function openTenant(tenant: string, extra: Record<string, unknown> = {}, containerName = `extra${++container}`): Promise<Storage> {
  const emulator = await sharedEmulator();
  const base = emulatorConfig(emulator, 'cosmos-tests', containerName, tenant);
  return createStorage({ ...SUITE_SETTINGS, ...base, cosmosdb: { ...(base.cosmosdb as object), ...extra } });
}

describe('cosmosdb: identifiers', () => {
  it('encodes every Matrix identifier injectively and without the characters Cosmos DB forbids', () => {
    const inputs = ['a/b', 'a,b', 'a%2Fb', 'a\\b', 'a?b', 'a#b', 'a|b', 'a%7Cb', '~x', 'plain', '', 'ünï/cødé', 'a\u0001b'];
    const encoded = inputs.map(encodeKey);
    expect(new Set(encoded).size).to.equal(inputs.length);
    for (const e of encoded) expect(e).to.not.match(/[/\\?#\u0000-\u001f]/);
    const long = `$${'x'.repeat(10_000)}`;
    const hashed = encodeKey(long);
    expect(Buffer.byteLength(hashed)).to.be.lessThan(100);
    expect(hashed).to.not.equal(encodeKey(`${long}y`));
    expect(partitionKey('t1', 'eid', 'a|b')).to.not.equal(partitionKey('t1', 'eid|a', 'b'));
  });
});

describe('cosmosdb: failure classification', () => {
  it('reads status, code and retry-after from the error, its cause, or the message items.bulk leaves of a bulk request', async () => {
    const { failureOf } = await import('../src/storage/cosmosdb/failures.js');
    const bulk = (inner: string) => new Error(`Bulk request errored with: ${inner}`);
    expect(failureOf(bulk('injected 429 [cosmos status 429, retry after 250 ms]'))).to.deep.equal({ status: 429, transient: true, retryAfterMs: 250 });
    expect(failureOf(bulk('Service is unavailable [cosmos status 503]'))).to.deep.equal({ status: 503, transient: true, retryAfterMs: undefined });
    expect(failureOf(bulk('Timeout Error! Request took more than 300 ms'))).to.include({ status: 'TimeoutError', transient: true });
    expect(failureOf(bulk('socket hang up'))).to.include({ status: 'ECONNRESET', transient: true });
    expect(failureOf(bulk('forbidden [cosmos status 403]'))).to.include({ status: 403, transient: false });
    expect(failureOf(bulk('Request size is too large [cosmos status 413]'))).to.include({ status: 413, transient: false });
    // Without the plugin's mark nothing says it was a 503: not retried.
    expect(failureOf(bulk('injected 503'))).to.include({ status: undefined, transient: false });
    // Single requests: the SDK's ErrorResponse, a TimeoutError, a network error with a generic code and the socket's in its cause.
    expect(failureOf(Object.assign(new Error('throttled'), { code: 429, retryAfterInMs: 40 }))).to.deep.equal({ status: 429, transient: true, retryAfterMs: 40 });
    expect(failureOf(Object.assign(new Error('late'), { name: 'TimeoutError' }))).to.include({ transient: true });
    expect(failureOf(Object.assign(new Error('send failed'), { code: 'REQUEST_SEND_ERROR', cause: { code: 'ECONNRESET' } }))).to.include({ status: 'REQUEST_SEND_ERROR', transient: true });
    expect(failureOf(Object.assign(new Error('conflict'), { code: 409 }))).to.include({ status: 409, transient: false });
  });
});

describe('cosmosdb: tenants sharing one container', () => {
  it('two tenants see nothing of each other, even with identical room and event IDs', async () => {
    const a = await openTenant('alpha', {}, 'shared-tenants');
    const b = await openTenant('beta', {}, 'shared-tenants');
    try {
      await seedRoom(a);
      await a.roomserver.setRoomAlias('#room:example.org', '!room:example.org', '@alice:example.org');
      await a.roomserver.publishRoom('!room:example.org', true);
      expect(await b.roomserver.roomInfo('!room:example.org')).to.equal(null);
      expect(await b.roomserver.getRoomIDForAlias('#room:example.org')).to.equal(null);
      expect(await b.roomserver.getPublishedRooms()).to.deep.equal([]);
      expect(await b.roomserver.getKnownRooms()).to.deep.equal([]);
      expect((await b.stats.collect()).events).to.equal(0);
      // The same IDs in tenant beta make a different room, with its own NIDs counting from the start.
      await b.roomserver.appendEvent(makeEvent({ id: '$create!room:example.org', type: 'm.room.create', stateKey: '', content: { creator: '@zed:example.org' } }));
      expect(await b.roomserver.currentState('!room:example.org')).to.have.length(1);
      expect(await a.roomserver.currentState('!room:example.org')).to.have.length(5);
      expect((await a.stats.collect()).events).to.equal(6);
      expect((await b.stats.collect()).events).to.equal(1);
      expect((await b.roomserver.getStateEvent('!room:example.org', 'm.room.create', ''))!.event.content).to.deep.equal({ creator: '@zed:example.org' });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('the tenant name is validated and a missing container is a clear ConfigError when not allowed to create it', async () => {
    let err: unknown;
    try { await openTenant('no spaces'); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as Error).message).to.contain('"cosmosdb.tenant"');
    err = undefined;
    try { await openTenant('t', { create_if_missing: false }, 'never-created'); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as Error).message).to.match(/does not exist.*create_if_missing/);
  });
});

describe('cosmosdb: send-to-device retention', () => {
  it('a message document written before sentAt was recorded goes by its _ts', async () => {
    const storage = await openTenant('retention');
    try {
      const conn = (storage.stats as unknown as { conn: import('../src/storage/cosmosdb/connection.js').CosmosConnection }).conn;
      // What an earlier build wrote: no sentAt.
      await conn.requests.create('t', { id: '900', pk: conn.pk('s2d', '@a:example.org', 'D'), k: 's2d', position: 900, userID: '@a:example.org', deviceID: 'D', content: '{}' });
      const written = Date.now();
      const [row] = (await storage.dump!.table('send_to_device').read(undefined, 10)).rows;
      expect(row!.sentAt).to.be.within(written - 60_000, written + 1000);
      expect(await storage.sendToDevice.deleteSendToDeviceMessagesSentBefore(written - 60_000)).to.equal(0);
      expect(await storage.sendToDevice.deleteSendToDeviceMessagesSentBefore(written + 2000)).to.equal(1);
      expect(await storage.sendToDevice.maxStreamPositionForSendToDeviceMessages()).to.equal(0);
    } finally {
      await storage.close();
    }
  });
});

describe('cosmosdb: conditional writes', () => {
  it('set documents and counters decide on the document they change, not on another one with the same id', async () => {
    // The emulator evaluates a patch's `condition` filter against whichever document has the id, in any partition:
    // with two previous-event sets (both id "pe"), a condition on one was answered by the other, and an event
    // named twice as a prev_event was recorded twice. Decisions are made on the document read, then written on its ETag.
    const storage = await openTenant('conditions');
    try {
      const conn = (storage.stats as unknown as { conn: import('../src/storage/cosmosdb/connection.js').CosmosConnection }).conn;
      const r = conn.requests;
      await r.create('t', { id: 'pe', pk: conn.pk('pe', '$a'), k: 'pe', values: [1] });
      await r.create('t', { id: 'pe', pk: conn.pk('pe', '$b'), k: 'pe', values: [2] });
      const { addToSetDocument } = await import('../src/storage/cosmosdb/set-document.js');
      await addToSetDocument(conn, 't', 'pe', '$b', 2);
      await addToSetDocument(conn, 't', 'pe', '$b', 3);
      await addToSetDocument(conn, 't', 'pe', '$a', 1);
      expect((await r.read<{ values: number[] }>('t', 'pe', conn.pk('pe', '$b')))!.values).to.deep.equal([2, 3]);
      expect((await r.read<{ values: number[] }>('t', 'pe', conn.pk('pe', '$a')))!.values).to.deep.equal([1]);
      // A counter is raised only above its own value.
      await r.create('t', { id: 'streams', pk: conn.pk('x', 'low'), k: 'streams', value: 1 });
      await r.create('t', { id: 'streams', pk: conn.pk('x', 'high'), k: 'streams', value: 50 });
      const raise = (key: string, to: number) => r.patchWhen<{ value: number }>('t', 'streams', conn.pk('x', key), (d) => d.value < to, () => [{ op: 'set', path: '/value', value: to }]);
      expect(await raise('high', 10)).to.equal('declined');
      expect(await raise('low', 10)).to.equal('patched');
      expect(await raise('missing', 10)).to.equal('missing');
      expect((await r.read<{ value: number }>('t', 'streams', conn.pk('x', 'high')))!.value).to.equal(50);
      expect((await r.read<{ value: number }>('t', 'streams', conn.pk('x', 'low')))!.value).to.equal(10);
    } finally {
      await storage.close();
    }
  });
});

describe('cosmosdb: document layout', () => {
  type Conn = import('../src/storage/cosmosdb/connection.js').CosmosConnection;
  const connOf = (s: Storage) => (s.stats as unknown as { conn: Conn }).conn;

  it('a new tenant is marked with this build\'s layout; a layout-1 tenant (no layout document) is read as it is and marked', async () => {
    const { LAYOUT_VERSION } = await import('../src/storage/cosmosdb/layout.js');
    const first = await openTenant('layout-old', {}, 'layouts');
    let roomID: string;
    try {
      const conn = connOf(first);
      expect((await conn.requests.read<{ version: number }>('t', 'layout', conn.pk('meta')))!.version).to.equal(LAYOUT_VERSION);
      roomID = (await seedRoom(first, '!layout:example.org')).create.roomID;
      // What a layout-1 build leaves: the same documents, no layout document.
      await conn.requests.delete('t', 'layout', conn.pk('meta'));
    } finally {
      await first.close();
    }
    const again = await openTenant('layout-old', {}, 'layouts');
    try {
      const conn = connOf(again);
      expect((await conn.requests.read<{ version: number }>('t', 'layout', conn.pk('meta')))!.version).to.equal(LAYOUT_VERSION);
      expect((await again.roomserver.currentState(roomID)).length).to.equal(5);
      const report = await again.migrate();
      expect(report.version).to.equal(LAYOUT_VERSION);
    } finally {
      await again.close();
    }
  });

  it('a layout-2 tenant (events found by their locators, references in sets of their own) is migrated in place on open: every table reads back the same, and its rooms take new events', async () => {
    const { LAYOUT_VERSION } = await import('../src/storage/cosmosdb/layout.js');
    const room = '!layout-two:example.org';
    const first = await openTenant('layout-two', {}, 'layouts');
    let ev: Awaited<ReturnType<typeof seedRoom>>;
    let before: Awaited<ReturnType<typeof readWholeDump>>;
    try {
      const conn = connOf(first);
      await fillEveryTable(first);
      ev = await seedRoom(first, room);
      before = await readWholeDump(first.dump!);
      expect(before.events.length).to.be.greaterThan(10);
      expect(before.previous_events.length).to.be.greaterThan(5);
      // What a layout-2 build leaves, made from this one's: no room holds its events (each locator is the commit
      // point, without the state before its event), every reference is in its ID's own set, the layout says 2.
      const r = conn.requests;
      const tenant = conn.tenantPrefix;
      const moveReference = async (prev: string, nids: readonly number[]) => {
        const own = await r.read<{ values: number[] }>('t', 'pe', conn.pk('pe', prev));
        await r.upsert('t', { id: 'pe', pk: conn.pk('pe', prev), k: 'pe', key: prev, values: [...new Set([...(own?.values ?? []), ...nids])] });
      };
      let moved = 0;
      const held = await r.crossPartitionQuery<{ id: string; pk: string; eventID: string; nid: number; room: number; type: number; key: number; rejected: boolean; prev: string[] }>('t', tenant,
        "SELECT * FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'room_event'");
      for (const d of held) {
        await r.upsert('t', { id: 'eid', pk: conn.pk('eid', d.eventID), k: 'event_id', eventID: d.eventID, nid: d.nid, room: d.room, type: d.type, key: d.key, rejected: d.rejected });
        for (const prev of d.prev) await moveReference(prev, [d.nid]);
        moved += d.prev.length;
        await r.delete('t', d.id, d.pk);
      }
      const refs = await r.crossPartitionQuery<{ id: string; pk: string; key: string; values: number[] }>('t', tenant,
        "SELECT * FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'pe' AND IS_DEFINED(c.room)");
      for (const d of refs) {
        await moveReference(d.key, d.values);
        moved += d.values.length;
        await r.delete('t', d.id, d.pk);
      }
      expect(moved, 'references moved to sets of their own').to.be.greaterThan(5);
      await r.upsert('t', { id: 'layout', pk: conn.pk('meta'), k: 'layout', version: 2 });
    } finally {
      await first.close();
    }
    const again = await openTenant('layout-two', {}, 'layouts');
    try {
      const conn = connOf(again);
      expect((await conn.requests.read<{ version: number }>('t', 'layout', conn.pk('meta')))!.version).to.equal(LAYOUT_VERSION);
      expect(await readWholeDump(again.dump!)).to.deep.equal(before);
      expect((await checkStore(again)).violations).to.deep.equal([]);
      // A fork off the message: its state comes from the message, found through its room.
      const fork = makeEvent({ id: '$fork-layout-two', room, depth: 6, prev: [ev.message.eventID] });
      const result = await again.roomserver.appendEvent(fork);
      expect(result.applied).to.equal(true);
      const ids = async (id: string) => (await again.roomserver.loadStateAtEvent(id)).map((e) => e.eventNID).sort();
      expect(await ids(fork.eventID)).to.deep.equal(await ids(ev.bobJoin.eventID)).and.have.length(4);
      expect((await again.roomserver.currentState(room)).length).to.equal(5);
      const info = (await again.roomserver.roomInfo(room))!;
      // The fork names the message, which the last seeded event (Bob's join) names too: both ends are latest.
      expect((await again.roomserver.latestEventIDs(info.roomNID)).eventIDs.sort()).to.deep.equal([ev.bobJoin.eventID, fork.eventID].sort());
    } finally {
      await again.close();
    }
  });

  it('a room\'s partition holds no event body and grows by under 512 bytes per event: a room of 10 million events fits Azure\'s 20 GB logical partition', async () => {
    const storage = await openTenant('room-size', {}, 'layouts');
    try {
      const conn = connOf(storage);
      const lines = [...generateRoom(validateGenerateOptions({ members: 40, events: 600, seed: 21 }))];
      const events = lines.map((line) => parsePDU(line, '10').event);
      for (let i = 0; i < events.length; i += 100) await storage.roomserver.appendEvents(events.slice(i, i + 100));
      const info = (await storage.roomserver.roomInfo(events[0]!.roomID))!;
      const docs = await conn.requests.query<Record<string, unknown>>('t', conn.pk('room', info.roomNID), 'SELECT * FROM c WHERE c.pk = @pk');
      const kinds = new Set(docs.map((d) => d.k));
      expect(kinds.has('room_event') && kinds.has('room'), [...kinds].join(', ')).to.equal(true);
      expect(docs.filter((d) => 'json' in d || 'bytes' in d), 'event JSON or state content in the room\'s partition').to.deep.equal([]);
      const bytes = docs.reduce((sum, { _rid, _self, _etag, _attachments, _ts, ...d }) => sum + Buffer.byteLength(JSON.stringify(d)), 0);
      const perEvent = bytes / events.length;
      expect(perEvent, 'bytes per event in the room\'s partition').to.be.below(512);
      expect(20e9 / perEvent, 'events a 20 GB logical partition holds').to.be.above(10e6 * 3);
    } finally {
      await storage.close();
    }
  });

  it('a tenant written by another layout is refused on open with what to run, and nothing is written', async () => {
    const { LAYOUT_VERSION } = await import('../src/storage/cosmosdb/layout.js');
    const first = await openTenant('layout-new', {}, 'layouts');
    const conn = connOf(first);
    for (const [version, fix] of [[9, /upgrade matrix-storage/], [0, /matrix-storage copy/]] as const) {
      await conn.requests.upsert('t', { id: 'layout', pk: conn.pk('meta'), k: 'layout', version });
      const e = await openTenant('layout-new', {}, 'layouts').then(async (s) => { await s.close(); return undefined; }, (err: unknown) => err);
      expect(e, `layout ${version}`).to.be.instanceOf(StoreUnavailableError);
      expect((e as Error).message).to.match(new RegExp(`layout ${version}; this build reads layout ${LAYOUT_VERSION}`)).and.match(fix).and.match(/tenant layout-new/);
      expect((await conn.requests.read<{ version: number }>('t', 'layout', conn.pk('meta')))!.version, 'left as it was').to.equal(version);
    }
    await first.close();
  });
});

describe('cosmosdb: request accounting', () => {
  it('counts the requests and request charge of every operation', async () => {
    const s = await openTenant('acct');
    try {
      const stats = s.requestStats!;
      // Not labelled until asked: byDatabaseOperation stays empty, the totals are kept all the same.
      await s.roomserver.roomInfo('!room:example.org');
      expect(stats.snapshot().byDatabaseOperation).to.deep.equal({});
      expect(stats.snapshot().requests).to.be.greaterThan(0);
      stats.trackDatabaseOperations(true);
      stats.reset();
      await seedRoom(s);
      const snap = stats.snapshot();
      expect(snap.requests).to.be.greaterThan(6);
      expect(snap.requestCharge).to.be.greaterThan(0);
      expect(Object.keys(snap.byOperation)).to.include('events.insert').and.include('rooms.commit');
      const sum = Object.values(snap.byOperation).reduce((n, o) => n + o.requests, 0 as number);
      expect(sum).to.equal(snap.requests);
      // Every request of seedRoom happened inside appendEvent: the Database operation is charged with all of them.
      expect(Object.keys(snap.byDatabaseOperation)).to.deep.equal(['roomserver.appendEvent']);
      expect(snap.byDatabaseOperation['roomserver.appendEvent']!.requests).to.equal(snap.requests);
      stats.reset();
      await s.roomserver.getStateEvent('!room:example.org', 'm.room.create', '');
      const read = stats.snapshot();
      expect(read.byDatabaseOperation['roomserver.getStateEvent']!.requests).to.equal(read.requests).and.be.greaterThan(0);
      stats.trackDatabaseOperations(false);
      stats.reset();
      await s.roomserver.getStateEvent('!room:example.org', 'm.room.create', '');
      expect(stats.snapshot().byDatabaseOperation).to.deep.equal({});
    } finally {
      await s.close();
    }
  });
});

describe('cosmosdb: what a writer knows without asking', () => {
  it('two writers of one room, each with its own view of the room document: a stale view costs a retry, never a wrong room', async () => {
    const a = await openTenant('twowriters', {}, 'twowriters');
    const b = await openTenant('twowriters', {}, 'twowriters');
    try {
      const room = '!two:example.org';
      const ev = await seedRoom(a, room);
      let prev = ev.bobJoin.eventID;
      // Each writer's next append comes after the other's: every view it keeps is stale by then.
      for (let i = 0; i < 6; i++) {
        const e = makeEvent({ id: `$two-${i}`, room, depth: 7 + i, prev: [prev] });
        const r = await (i % 2 === 0 ? b : a).roomserver.appendEvent(e);
        expect([r.applied, r.duplicate], `event ${i}`).to.deep.equal([true, false]);
        prev = e.eventID;
      }
      const info = (await a.roomserver.roomInfo(room))!;
      for (const s of [a, b]) expect((await s.roomserver.latestEventIDs(info.roomNID)).eventIDs).to.deep.equal([prev]);
      expect((await a.stats.collect()).events).to.equal(12);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a room commit whose answer is lost is still its writer\'s: the event is stored once, at once', async () => {
    const s = await openTenant('lostcommit', { request_timeout_ms: 300, transient_retries: 2 });
    const emulator = await sharedEmulator();
    try {
      const room = '!lost:example.org';
      const ev = await seedRoom(s, room);
      // The next transactional batch of a room (its commit) is applied, but its answer comes after the client gave up:
      // the retry finds the room document changed, reads it back and finds its own token.
      const lost = emulator.inject({
        match: (req) => req.headers['x-ms-cosmos-batch-atomic'] !== undefined && /lostcommit\|room\|/.test(String(req.headers['x-ms-documentdb-partitionkey'] ?? '')),
        times: 1, fault: { kind: 'delayResponse', ms: 450 },
      });
      const message = makeEvent({ id: '$after-lost-commit', room, depth: 7, prev: [ev.bobJoin.eventID] });
      const result = await s.roomserver.appendEvent(message);
      expect(lost.remaining, 'the commit\'s answer was lost').to.equal(0);
      expect([result.applied, result.duplicate]).to.deep.equal([true, false]);
      const info = (await s.roomserver.roomInfo(room))!;
      expect((await s.roomserver.latestEventIDs(info.roomNID)).eventIDs).to.deep.equal([message.eventID]);
      expect((await s.stats.collect()).events).to.equal(Object.keys(ev).length + 1);
    } finally {
      emulator.clearFaults();
      await s.close();
    }
  });

  it('a single-partition query is one request (no query plan from the gateway)', async () => {
    const s = await openTenant('oneplan');
    const emulator = await sharedEmulator();
    try {
      await seedRoom(s, '!plan:example.org');
      const info = (await s.roomserver.roomInfo('!plan:example.org'))!;
      s.requestStats!.reset();
      const before = emulator.requestCount();
      const joined = await s.roomserver.getMembershipEventNIDsForRoom(info.roomNID, true, false);
      const seen = emulator.requestCount() - before;
      expect(joined).to.have.length(2);
      expect(s.requestStats!.snapshot().byOperation).to.have.keys('membership.selectFromRoom');
      expect(seen, 'requests the emulator saw').to.equal(s.requestStats!.snapshot().requests).and.equal(1);
    } finally {
      await s.close();
    }
  });

  it('the state at an event is found through its locator and its room\'s document of it, with no read of its row', async () => {
    const writer = await openTenant('atevent', {}, 'atevent');
    const reader = await openTenant('atevent', {}, 'atevent');
    try {
      const ev = await seedRoom(writer, '!at:example.org');
      reader.requestStats!.reset();
      const state = await reader.roomserver.loadStateAtEvent(ev.bobJoin.eventID);
      expect(state).to.have.length(4);
      const ops = reader.requestStats!.snapshot().byOperation;
      expect(ops['events.readLocator']?.requests, 'the locator').to.equal(1);
      expect(ops['roomEvents.read']?.requests, 'the room\'s document of the event').to.equal(1);
      expect(ops['events.readRow'], 'no row').to.equal(undefined);
      // Asked again, the locator is known (it never changes once its event is stored).
      reader.requestStats!.reset();
      await reader.roomserver.loadStateAtEvent(ev.bobJoin.eventID);
      expect(reader.requestStats!.snapshot().byOperation['events.readLocator'], 'the locator, kept').to.equal(undefined);
    } finally {
      await writer.close();
      await reader.close();
    }
  });
});

describe('cosmosdb: a new user\'s NID, mapped in the request that writes the user\'s first event', () => {
  type Conn = import('../src/storage/cosmosdb/connection.js').CosmosConnection;
  const connOf = (s: Storage) => (s.stats as unknown as { conn: Conn }).conn;
  const member = (id: string, room: string, user: string, membership: string, prev: string, sender = user) =>
    makeEvent({ id, room, type: 'm.room.member', stateKey: user, sender, depth: 7, prev: [prev], content: { membership } });
  const mapping = async (conn: Conn, user: string) => {
    const forward = await conn.requests.read<{ nid: number; paired?: boolean }>('t', 'sk', conn.pk('sk', user));
    const reverse = forward && await conn.requests.read<{ s: string }>('t', 'skn', conn.pk('skn', forward.nid));
    return { nid: forward?.nid, paired: forward?.paired, reversed: reverse?.s };
  };

  it('a new user\'s join is three requests (reads, everything before the commit, the commit), and both sides of the mapping are stored', async () => {
    const s = await openTenant('newuser');
    try {
      const room = '!newuser:example.org';
      const ev = await seedRoom(s, room);
      s.requestStats!.reset();
      const join = member('$carol-join', room, '@carol:elsewhere.net', 'join', ev.bobJoin.eventID);
      expect((await s.roomserver.appendEvent(join)).applied).to.equal(true);
      const stats = s.requestStats!.snapshot();
      expect(stats.requests, JSON.stringify(stats.byOperation)).to.equal(3);
      expect(await mapping(connOf(s), '@carol:elsewhere.net')).to.deep.include({ paired: true, reversed: '@carol:elsewhere.net' });
      // The membership knows whose it is (its server is in the room) though the mapping was written beside it.
      const info = (await s.roomserver.roomInfo(room))!;
      expect(await s.tables.membership.selectServerInRoom(s.unitOfWork.autocommit, info.roomNID, 'elsewhere.net')).to.equal(true);
      expect((await checkStore(s)).violations).to.deep.equal([]);
    } finally {
      await s.close();
    }
  });

  it('a crash between the two sides of a mapping: the next writer to take the NID stores the missing side first', async () => {
    const a = await openTenant('halfmapped', {}, 'halfmapped');
    const user = '@dave:example.org';
    const room = '!half:example.org';
    let ev: Awaited<ReturnType<typeof seedRoom>>;
    let nid: number;
    try {
      ev = await seedRoom(a, room);
      // What a writer that died in the middle of the request leaves: the string side, written with its pair, alone.
      const conn = connOf(a);
      nid = await conn.sequence('stateKey').nextValue();
      await conn.requests.create('t', { id: 'sk', pk: conn.pk('sk', user), k: 'sk', s: user, nid, paired: true });
      expect(await mapping(conn, user)).to.deep.equal({ nid, paired: true, reversed: undefined });
    } finally {
      await a.close();
    }
    const b = await openTenant('halfmapped', {}, 'halfmapped');
    try {
      expect((await b.roomserver.appendEvent(member('$dave-join', room, user, 'join', ev.bobJoin.eventID))).applied).to.equal(true);
      expect(await mapping(connOf(b), user)).to.deep.equal({ nid, paired: true, reversed: user });
      const tx = b.unitOfWork.autocommit;
      expect((await b.tables.eventStateKeys.bulkSelectEventStateKey(tx, [nid as never])).get(nid as never)).to.equal(user);
      expect((await checkStore(b)).violations).to.deep.equal([]);
    } finally {
      await b.close();
    }
  });

  it('two writers mapping the same new user at once: the later one starts again under the earlier one\'s NID, and takes back the invite it wrote under its own', async () => {
    const a = await openTenant('raced', {}, 'raced');
    const b = await openTenant('raced', {}, 'raced');
    const user = '@erin:example.org';
    try {
      const [one, two] = [await seedRoom(a, '!one:example.org'), await seedRoom(b, '!two:example.org')];
      const inviteTwo = member('$erin-invite-two', '!two:example.org', user, 'invite', two.bobJoin.eventID, '@alice:example.org');
      // Writer b invites the user between a's look (the user is unknown) and a's write of the mapping.
      const requests = connOf(a).requests;
      const create = requests.create.bind(requests);
      let raced = false;
      requests.create = async (operation, doc) => {
        if (!raced && doc.id === 'sk' && (doc as { s?: string }).s === user) {
          raced = true;
          expect((await b.roomserver.appendEvent(inviteTwo)).applied).to.equal(true);
        }
        return create(operation, doc);
      };
      const inviteOne = member('$erin-invite-one', '!one:example.org', user, 'invite', one.bobJoin.eventID, '@alice:example.org');
      expect((await a.roomserver.appendEvent(inviteOne)).applied).to.equal(true);
      expect(raced, 'b mapped the user in the middle of a\'s call').to.equal(true);

      const conn = connOf(a);
      const { nid, reversed } = await mapping(conn, user);
      expect(reversed).to.equal(user);
      const tenant = conn.tenantPrefix;
      const reverses = await conn.requests.crossPartitionQuery<{ nid: number }>('t', tenant,
        "SELECT c.nid FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'skn' AND c.s = @user", [{ name: '@user', value: user }]);
      expect(reverses.map((r) => r.nid), 'no NID side left for the NID a lost').to.deep.equal([nid]);
      const lists = await conn.requests.crossPartitionQuery<{ target: number; invites: { id: string }[] }>('t', tenant,
        "SELECT c.target, c.invites FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'invites'");
      expect(lists.filter((l) => l.invites.length > 0).map((l) => [l.target, l.invites.map((i) => i.id)]).sort())
        .to.deep.equal([[nid, ['$erin-invite-one']], [nid, ['$erin-invite-two']]]);
      const tx = a.unitOfWork.autocommit;
      for (const [room, id] of [['!one:example.org', '$erin-invite-one'], ['!two:example.org', '$erin-invite-two']] as const) {
        const info = (await a.roomserver.roomInfo(room))!;
        expect((await a.tables.invites.selectInviteActiveForUserInRoom(tx, nid as never, info.roomNID)).eventIDs, room).to.deep.equal([id]);
      }
      expect(await a.tables.invites.bulkSelectStoredInviteIDs(tx, ['$erin-invite-one', '$erin-invite-two'])).to.deep.equal(new Set(['$erin-invite-one', '$erin-invite-two']));
      expect((await checkStore(a)).violations).to.deep.equal([]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('cosmosdb: the rooms-of-a-user mirror', () => {
  type Conn = import('../src/storage/cosmosdb/connection.js').CosmosConnection;
  const connOf = (s: Storage) => (s.stats as unknown as { conn: Conn }).conn;
  const profile = (id: string, room: string, user: string, prev: string, name: string) =>
    makeEvent({ id, room, type: 'm.room.member', stateKey: user, sender: user, depth: 8, prev: [prev], content: { membership: 'join', displayname: name } });

  it('a change that leaves it as this process wrote it (a profile change) does not write it again; one after another writer\'s change does, and repairs it', async () => {
    const a = await openTenant('mirror', {}, 'mirror');
    const b = await openTenant('mirror', {}, 'mirror');
    const room = '!mirror:example.org';
    const bob = '@bob:remote.net';
    try {
      const ev = await seedRoom(a, room);
      const info = (await a.roomserver.roomInfo(room))!;
      const tx = a.unitOfWork.autocommit;
      const bobNID = await a.tables.eventStateKeys.selectEventStateKeyNID(tx, bob);
      const conn = connOf(a);
      const mirror = async () => (await conn.requests.read<{ membership: number }>('t', `rm|${info.roomNID}`, conn.pk('user', bobNID)))?.membership;
      const joinedRooms = () => a.tables.membership.selectRoomsWithMembership(tx, bobNID, MembershipState.join);
      expect(await mirror()).to.equal(MembershipState.join);

      a.requestStats!.reset();
      const first = profile('$bob-name-1', room, bob, ev.bobJoin.eventID, 'B1');
      expect((await a.roomserver.appendEvent(first)).applied).to.equal(true);
      expect(a.requestStats!.snapshot().byOperation['membership.mirror'], 'no write of the mirror').to.equal(undefined);
      expect(await joinedRooms()).to.deep.equal([info.roomNID]);

      // Another writer changes the membership (its own event), and its mirror is then lost (as a crash between
      // the two writes of an update outside the input path would lose it).
      const second = profile('$bob-name-2', room, bob, first.eventID, 'B2');
      expect((await b.roomserver.appendEvent(second)).applied).to.equal(true);
      await conn.requests.upsert('t', { id: `rm|${info.roomNID}`, pk: conn.pk('user', bobNID), k: 'user_room', room: info.roomNID, target: bobNID, membership: MembershipState.leaveOrBan, forgotten: false });
      expect(await joinedRooms()).to.deep.equal([]);

      // This process's next change finds the document written by another event than its own: it writes the mirror.
      a.requestStats!.reset();
      expect((await a.roomserver.appendEvent(profile('$bob-name-3', room, bob, second.eventID, 'B3'))).applied).to.equal(true);
      expect(a.requestStats!.snapshot().byOperation['membership.mirror'], 'the mirror written').not.to.equal(undefined);
      expect(await mirror()).to.equal(MembershipState.join);
      expect(await joinedRooms()).to.deep.equal([info.roomNID]);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('cosmosdb: one-time-key claims', () => {
  it('a claim is a query and one request, which deletes the device\'s documents claimed before, on their claimed ETags', async () => {
    const s = await openTenant('otkcost', {}, 'otkcost');
    const emulator = await sharedEmulator();
    const conn = (s.stats as unknown as { conn: import('../src/storage/cosmosdb/connection.js').CosmosConnection }).conn;
    const claimedDocuments = async (device: string) => (await conn.requests.query<number>('t', conn.pk('otk', '@dana:example.org', device),
      'SELECT VALUE COUNT(1) FROM c WHERE c.pk = @pk AND IS_DEFINED(c.claim)'))[0];
    const claim = async (device: string) => {
      const [got] = await s.keys.claimKeys(new Map([['@dana:example.org', new Map([[device, 'signed_curve25519']])]]));
      return [...got!.keyJSON.keys()][0]!;
    };
    try {
      for (const device of ['A', 'B']) {
        await s.keys.storeOneTimeKeys({ userID: '@dana:example.org', deviceID: device, keyJSON: new Map(Array.from({ length: 10 }, (_, i) => [`signed_curve25519:K${i}`, `{"key":${i}}`])) });
      }
      // The SDK reads the container's partition key ranges once, before its first bulk request.
      await claim('B');
      s.requestStats!.reset();
      const before = emulator.requestCount();
      let lastOfA = '';
      for (let i = 0; i < 6; i++) {
        const key = await claim(i % 2 === 0 ? 'A' : 'B');
        if (i % 2 === 0) lastOfA = key;
      }
      expect(emulator.requestCount() - before, 'requests the emulator saw').to.equal(12);
      expect(s.requestStats!.snapshot().requests, 'requests the driver counted').to.equal(12);
      // Each claim deleted its device's document claimed before: only the last one of each device waits.
      expect(await claimedDocuments('A')).to.equal(1);
      expect(await claimedDocuments('B')).to.equal(1);
      // The key last claimed on A, uploaded again while its delete waits: the delete (on the claimed ETag) keeps it.
      await s.keys.storeOneTimeKeys({ userID: '@dana:example.org', deviceID: 'A', keyJSON: new Map([[lastOfA, '{"again":true}']]) });
      expect((await s.keys.oneTimeKeysCount('@dana:example.org', 'A')).keyCount.get('signed_curve25519')).to.equal(8);
      await claim('A');
      expect((await s.keys.oneTimeKeysCount('@dana:example.org', 'A')).keyCount.get('signed_curve25519')).to.equal(7);
      expect(await claimedDocuments('A')).to.equal(1);
    } finally {
      await s.close();
    }
  });
});

describe('cosmosdb: priority-based execution', () => {
  it('every document request carries the configured priority; by default none is marked', async () => {
    const emulator = await sharedEmulator();
    const marks: (string | undefined)[] = [];
    // A rule that never applies a fault, only notes each document request's priority header.
    emulator.inject({
      match: (req) => {
        if (/\/docs(\/|$)/.test(req.url ?? '')) marks.push(req.headers['x-ms-cosmos-priority-level'] as string | undefined);
        return false;
      },
      times: 1, fault: { kind: '503' },
    });
    try {
      const seen = async (extra: Record<string, unknown>, tenant: string) => {
        marks.length = 0;
        const s = await openTenant(tenant, extra);
        try {
          await seedRoom(s, '!priority:example.org');
          const info = (await s.roomserver.roomInfo('!priority:example.org'))!;
          await s.roomserver.getMembershipEventNIDsForRoom(info.roomNID, true, false);
        } finally {
          await s.close();
        }
        return { count: marks.length, values: new Set(marks) };
      };
      const low = await seen({ priority_level: 'low' }, 'prio-low');
      expect(low.count).to.be.greaterThan(10);
      expect([...low.values]).to.deep.equal(['Low']);
      const plain = await seen({}, 'prio-default');
      expect(plain.count).to.be.greaterThan(10);
      expect([...plain.values]).to.deep.equal([undefined]);
    } finally {
      emulator.clearFaults();
    }
  });
});

/** Everything a reader can see of an imported room, as plain data to compare between two stores. */
async function observe(storage: Storage, lines: string[]) {
  const db = storage.roomserver;
  const events = lines.map((l) => parseEvent(l));
  const roomID = events[0]!.roomID;
  const ids = async (nids: number[]) => [...(await db.eventIDs(nids as never)).values()].sort();
  const statesBefore: string[][] = [];
  for (const e of events) statesBefore.push(await ids((await db.loadStateAtEvent(e.eventID)).map((s) => s.eventNID)));
  const info = (await db.roomInfo(roomID))!;
  const stored = await db.eventsFromIDs(events.map((e) => e.eventID));
  return {
    current: await ids((await db.currentState(roomID)).map((s) => s.eventNID)),
    statesBefore,
    latest: (await db.latestEventIDs(info.roomNID)).eventIDs,
    joined: await ids(await db.getMembershipEventNIDsForRoom(info.roomNID, true, false)),
    all: await ids(await db.getMembershipEventNIDsForRoom(info.roomNID, false, false)),
    json: stored.map((s) => s.event.json).sort(),
    count: (await storage.stats.collect()).events,
  };
}

/**
 * Four claimers at once claim the device DEV's signed_curve25519 keys until a claim finds none (or hands a claimer
 * the key `stopAt`): the keys handed out, and how many claims failed (each must be a StoreUnavailableError; the
 * claimer then tries again).
 */
async function claimUntilNoneLeft(storage: Storage, user: string, stopAt?: string): Promise<{ handedOut: string[]; failedClaims: number }> {
  const handedOut: string[] = [];
  let failedClaims = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (let tries = 0; tries < 200; tries++) {
      let got;
      try {
        got = await storage.keys.claimKeys(new Map([[user, new Map([['DEV', 'signed_curve25519']])]]));
      } catch (e) {
        expect(e, String(e)).to.be.instanceOf(StoreUnavailableError);
        failedClaims++;
        continue;
      }
      const key = got[0]?.keyJSON;
      if (!key || key.size === 0) return;
      handedOut.push(...key.keys());
      if (stopAt !== undefined && key.has(stopAt)) return;
    }
  }));
  return { handedOut, failedClaims };
}

describe('cosmosdb: faults', function () {
  this.timeout(180_000);

  it('one-time-key claims whose answers are lost hand every key out exactly once, and lose none', async () => {
    const claimer = await openTenant('otkfaults', { request_timeout_ms: 300, transient_retries: 8 }, 'otkfaults');
    const emulator = await sharedEmulator();
    const user = '@alice:example.org';
    const keys = 40;
    try {
      await claimer.keys.storeOneTimeKeys({ userID: user, deviceID: 'DEV', keyJSON: new Map(Array.from({ length: keys }, (_, i) => [`signed_curve25519:K${i}`, `{"key":${i}}`])) });
      // Half of the container's writes (the bulk requests of claims and the deletes they carry) are applied, but
      // their answers come only after the client gave up: every such write is retried blind.
      let n = 0;
      const lost = emulator.inject({
        match: (req) => isDocumentWrite(req) && inContainer('otkfaults')(req) && ++n % 2 === 0,
        times: 1_000_000, fault: { kind: 'delayResponse', ms: 450 },
      });
      const { handedOut: claimed, failedClaims } = await claimUntilNoneLeft(claimer, user);
      emulator.clearFaults();
      expect(failedClaims, 'claims that failed').to.equal(0);
      expect(1_000_000 - lost.remaining, 'responses lost').to.be.greaterThan(keys / 2);
      expect(claimed.length, 'keys handed out').to.equal(keys);
      expect(new Set(claimed).size, 'each key once').to.equal(keys);
      expect((await claimer.keys.oneTimeKeysCount(user, 'DEV')).keyCount.size).to.equal(0);
      console.log(`      ${keys} keys claimed by 4 claimers with ${1_000_000 - lost.remaining} write answers lost: each handed out once, none lost`);
    } finally {
      emulator.clearFaults();
      await claimer.close();
    }
  });

  it('one-time-key claims whose writes go unanswered hand each key out once or leave it claimable: none lost', async () => {
    // One retry and a timeout shorter than the answers' delay: a claim's writes (the claim's replace and the cleanup
    // deletes it carries, in one bulk request) are applied but no try of theirs hears back, so the driver gives up
    // on them with StoreUnavailableErrors.
    const claimer = await openTenant('otklost', { request_timeout_ms: 300, transient_retries: 1 }, 'otklost');
    const emulator = await sharedEmulator();
    const user = '@bob:example.org';
    const stored = 40;
    try {
      await claimer.keys.storeOneTimeKeys({ userID: user, deviceID: 'DEV', keyJSON: new Map(Array.from({ length: stored }, (_, i) => [`signed_curve25519:K${i}`, `{"key":${i}}`])) });
      // Two writes in three go unanswered: applied with the answer lost, or lost on the way (never applied).
      let n = 0;
      const lost = emulator.inject({
        match: (req) => isDocumentWrite(req) && inContainer('otklost')(req),
        times: 1_000_000, fault: () => [undefined, { kind: 'delayResponse', ms: 450 } as const, { kind: 'delayRequest', ms: 450 } as const][++n % 3],
      });
      const { handedOut, failedClaims } = await claimUntilNoneLeft(claimer, user);
      emulator.clearFaults();
      await new Promise((r) => setTimeout(r, 600));
      const left = (await claimer.keys.oneTimeKeysCount(user, 'DEV')).keyCount.get('signed_curve25519') ?? 0;
      const once = new Set(handedOut).size;
      const lostKeys = stored - once - left;
      // Claimed documents whose cleanup delete failed are deleted by the claims that come after, a few each: none
      // stays once the store answers again.
      const conn = (claimer.stats as unknown as { conn: import('../src/storage/cosmosdb/connection.js').CosmosConnection }).conn;
      const claimedDocuments = async () => (await conn.requests.query<number>('t', conn.pk('otk', user, 'DEV'),
        'SELECT VALUE COUNT(1) FROM c WHERE c.pk = @pk AND IS_DEFINED(c.claim)'))[0];
      const leftBehind = await claimedDocuments();
      for (let i = 0; i < 10; i++) await claimer.keys.claimKeys(new Map([[user, new Map([['DEV', 'signed_curve25519']])]]));
      expect(await claimedDocuments(), 'claimed documents after ten more claims').to.equal(0);
      console.log(`      ${stored} keys stored, ${handedOut.length} handed out (${once} distinct), ${left} left, ${lostKeys} lost; ` +
        `${lost.injected.delayResponse} write answers and ${lost.injected.delayRequest} writes lost, ${failedClaims} claims failed (StoreUnavailableError), ` +
        `${leftBehind} claimed documents left when the claims ended`);
      // A claim's writes are one bulk request, which carries the other claimers' writes of that moment too: fewer
      // requests (and lost answers) than claims, each lost answer lost to every claim it carried.
      expect(lost.injected.delayResponse, 'answers lost').to.be.greaterThan(stored / 4);
      expect(failedClaims, 'claims that failed').to.be.greaterThan(0);
      expect(handedOut.length, 'each key handed out once').to.equal(once);
      expect(lostKeys, 'keys lost').to.equal(0);
    } finally {
      emulator.clearFaults();
      await claimer.close();
    }
  });

  it('fallback-key claims whose writes go unanswered: one-time keys once each, none lost, the fallback key handed out only once marked used', async () => {
    const claimer = await openTenant('fbklost', { request_timeout_ms: 300, transient_retries: 1 }, 'fbklost');
    const emulator = await sharedEmulator();
    const user = '@carol:example.org';
    const stored = 20;
    const fallback = 'signed_curve25519:FALLBACK';
    try {
      await claimer.keys.storeOneTimeKeys({ userID: user, deviceID: 'DEV', keyJSON: new Map(Array.from({ length: stored }, (_, i) => [`signed_curve25519:K${i}`, `{"key":${i}}`])) });
      await claimer.keys.storeFallbackKeys({ userID: user, deviceID: 'DEV', keyJSON: new Map([[fallback, '{"fallback":true}']]) });
      // Two writes in three go unanswered (the claims' bulk requests, the fallback key's used mark):
      // applied with the answer lost, or lost on the way.
      let n = 0;
      const lost = emulator.inject({
        match: (req) => isDocumentWrite(req) && inContainer('fbklost')(req), times: 1_000_000,
        fault: () => [undefined, { kind: 'delayResponse', ms: 450 } as const, { kind: 'delayRequest', ms: 450 } as const][++n % 3],
      });
      // Each claimer claims until it is handed the fallback key.
      const { handedOut, failedClaims } = await claimUntilNoneLeft(claimer, user, fallback);
      const fallbacks = handedOut.filter((k) => k === fallback).length;
      // A new fallback key, uploaded under the same faults, is unused until a claim takes it.
      let uploads = 1;
      for (; ; uploads++) {
        try {
          await claimer.keys.storeFallbackKeys({ userID: user, deviceID: 'DEV', keyJSON: new Map([['signed_curve25519:NEXT', '{"fallback":true,"n":2}']]) });
          break;
        } catch (e) {
          expect(e, String(e)).to.be.instanceOf(StoreUnavailableError);
        }
      }
      expect(await claimer.keys.unusedFallbackKeyAlgorithms(user, 'DEV')).to.deep.equal(['signed_curve25519']);
      const next = await claimUntilNoneLeft(claimer, user, 'signed_curve25519:NEXT');
      emulator.clearFaults();
      await new Promise((r) => setTimeout(r, 600));
      const oneTime = handedOut.filter((k) => k !== fallback);
      const left = (await claimer.keys.oneTimeKeysCount(user, 'DEV')).keyCount.get('signed_curve25519') ?? 0;
      const lostKeys = stored - new Set(oneTime).size - left;
      console.log(`      ${stored} one-time keys stored, ${oneTime.length} handed out (${new Set(oneTime).size} distinct), ${left} left, ${lostKeys} lost; ` +
        `fallback key handed out ${fallbacks} times, the next one after ${uploads} upload tries; ` +
        `${lost.injected.delayResponse} write answers and ${lost.injected.delayRequest} writes lost, ${failedClaims + next.failedClaims} claims failed`);
      // A claim's writes are one bulk request, which carries the other claimers' writes of that moment too: fewer
      // requests (and lost answers) than claims, each lost answer lost to every claim it carried.
      expect(lost.injected.delayResponse, 'answers lost').to.be.greaterThan(stored / 4);
      expect(oneTime.length, 'each one-time key handed out once').to.equal(new Set(oneTime).size);
      expect(lostKeys, 'one-time keys lost').to.equal(0);
      expect(fallbacks, 'every claimer ended on the fallback key').to.equal(4);
      expect(next.handedOut.filter((k) => k === 'signed_curve25519:NEXT')).to.have.length(4);
      // Handed out means marked used, whatever answers were lost.
      expect(await claimer.keys.unusedFallbackKeyAlgorithms(user, 'DEV')).to.deep.equal([]);
    } finally {
      emulator.clearFaults();
      await claimer.close();
    }
  });

  it('an outage longer than the retries: retryable StoreUnavailableErrors, then the same calls finish the import exactly', async () => {
    const lines = [...generateRoom(validateGenerateOptions({ members: 10, events: 80, seed: 11 }))];
    const clean = await openTenant('clean-outage');
    const cut = await openTenant('outage', { request_timeout_ms: 400, transient_retries: 2 }, 'outage');
    const emulator = await sharedEmulator();
    try {
      for (const l of lines) await clean.roomserver.appendEvent(parseEvent(l));
      for (const l of lines.slice(0, 40)) await cut.roomserver.appendEvent(parseEvent(l));
      // Every write of this tenant's (bulk requests too) has its connection cut, for longer than the driver retries
      // them. (Reads are retried by the SDK itself, ten times a second apart: an outage of reads surfaces the same
      // way, ten seconds on.)
      const outage = emulator.inject({ match: (req) => isDocumentWrite(req) && inContainer('outage')(req), times: 1_000_000, fault: { kind: 'reset' } });
      // The same event twice, as a homeserver retrying would (the next event names it, so it needs it stored first).
      for (const event of [lines[40]!, lines[40]!]) {
        let error: unknown;
        try { await cut.roomserver.appendEvent(parseEvent(event)); } catch (e) { error = e; }
        expect(error, String(error)).to.be.instanceOf(StoreUnavailableError);
        expect((error as StoreUnavailableError).retryable).to.equal(true);
        expect((error as Error).message).to.match(/^Cosmos DB at https:\/\/127\.0\.0\.1:\d+\/: .* still failed after retries/);
      }
      expect(outage.remaining).to.be.lessThan(1_000_000);
      emulator.clearFaults();
      // The connection is back: the same calls, from the event that failed, finish the job.
      for (const l of lines.slice(40)) await cut.roomserver.appendEvent(parseEvent(l));
      expect(await observe(cut, lines)).to.deep.equal(await observe(clean, lines));
    } finally {
      emulator.clearFaults();
      await clean.close();
      await cut.close();
    }
  });

  // The single-event path makes about fifteen requests an event, the batch path about one: rooms of a size each
  // meets some hundred faults in.
  for (const [route, batchSize, events] of [['single-event', 1, 50], ['batch', 100, 500]] as const) {
    it(`matrix-storage import on the ${route} path under a 20% mix of every fault kind, bulk requests included, ends equal to a clean import`, async () => {
      const lines = [...generateRoom(validateGenerateOptions({ members: 12, events, seed: 5 }))];
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cosmos-faults-'));
      const file = path.join(dir, 'room.jsonl');
      fs.writeFileSync(file, `${lines.join('\n')}\n`);
      const container = `mix-${route}`;
      const clean = await openTenant('clean-mix');
      // A client timeout shorter than the injected delays: delayed requests are given up on, delayed answers cut.
      const faulty = await openTenant('mix', { request_timeout_ms: 300, transient_retries: 8 }, container);
      const emulator = await sharedEmulator();
      try {
        await importPDUFile(clean, file, { batchSize });
        // One request in five of the faulty container's, whatever it is (point read, query, write, bulk request),
        // gets a fault, the five kinds in turn.
        const mix = faultMix(5, [
          { kind: '429', retryAfterMs: 5 }, { kind: '503' }, { kind: 'delayRequest', ms: 450 }, { kind: 'delayResponse', ms: 450 }, { kind: 'reset' },
        ]);
        let bulkFaults = 0;
        const rule = emulator.inject({
          match: inContainer(container), times: 1_000_000,
          fault: (req) => {
            const f = mix(req);
            if (f && isBulkRequest(req)) bulkFaults++;
            return f;
          },
        });
        // What an operator does when the import exits 3 (the store could not be used, retryable): run it again.
        let runs = 0;
        for (;;) {
          runs++;
          try {
            await importPDUFile(faulty, file, { batchSize });
            break;
          } catch (e) {
            expect(e, String(e)).to.be.instanceOf(StoreUnavailableError);
            expect((e as StoreUnavailableError).retryable, String(e)).to.equal(true);
            if (runs >= 5) throw e;
          }
        }
        emulator.clearFaults();
        const kinds = Object.entries(rule.injected);
        expect(kinds.every(([, n]) => n > 0), `every kind of fault was injected: ${JSON.stringify(rule.injected)}`).to.equal(true);
        expect(bulkFaults, 'faults on bulk requests').to.be.greaterThan(0);
        // Writes whose answers were delayed past the timeout land before the stores are compared.
        await new Promise((r) => setTimeout(r, 600));
        const [a, b] = [await observe(clean, lines), await observe(faulty, lines)];
        expect(b).to.deep.equal(a);
        expect(b.count).to.equal(lines.length);
        console.log(`      ${route} path: ${kinds.map(([k, n]) => `${n} ${k}`).join(', ')} (${bulkFaults} on bulk requests); import runs: ${runs}`);
      } finally {
        emulator.clearFaults();
        fs.rmSync(dir, { recursive: true, force: true });
        await clean.close();
        await faulty.close();
      }
    });
  }

  it('an import under 429s, 503s, timeouts before and after writes, and resets stores exactly what a clean import stores', async () => {
    const lines = [...generateRoom(validateGenerateOptions({ members: 12, events: 120, seed: 7 }))];
    const clean = await openTenant('clean');
    const faulty = await openTenant('faulty', { request_timeout_ms: 400, transient_retries: 8 }, 'faulty');
    const emulator = await sharedEmulator();
    try {
      for (const l of lines) await clean.roomserver.appendEvent(parseEvent(l));
      // A fault every few requests, of each kind, for the whole faulty import.
      let n = 0;
      const every = (k: number, writesOnly: boolean) => (req: import('node:http').IncomingMessage) =>
        (!writesOnly || isDocumentWrite(req)) && inContainer('faulty')(req) && ++n % k === 0;
      const rules = [
        emulator.inject({ match: every(7, false), times: 60, fault: { kind: '429', retryAfterMs: 5 } }),
        emulator.inject({ match: every(11, true), times: 30, fault: { kind: '503' } }),
        emulator.inject({ match: every(13, true), times: 12, fault: { kind: 'delayResponse', ms: 700 } }),
        emulator.inject({ match: every(17, true), times: 12, fault: { kind: 'delayRequest', ms: 700 } }),
        emulator.inject({ match: every(19, false), times: 12, fault: { kind: 'reset' } }),
      ];
      let callerRetries = 0;
      for (const l of lines) {
        // What a homeserver does when a call still fails after the driver's retries: call again.
        for (let attempt = 1; ; attempt++) {
          try {
            await faulty.roomserver.appendEvent(parseEvent(l));
            break;
          } catch (e) {
            if (attempt >= 10) throw e;
            callerRetries++;
          }
        }
      }
      emulator.clearFaults();
      const used = rules.map((r, i) => [60, 30, 12, 12, 12][i]! - r.remaining);
      expect(used.every((u) => u > 0), `every kind of fault was injected: ${used}`).to.equal(true);
      // Give writes that were delayed past their timeout time to land before comparing.
      await new Promise((r) => setTimeout(r, 800));
      const [a, b] = [await observe(clean, lines), await observe(faulty, lines)];
      expect(b).to.deep.equal(a);
      expect(b.count).to.equal(lines.length);
      console.log(`      faults injected: ${used.join(' / ')} (429 / 503 / late response / lost request / reset); caller retries: ${callerRetries}`);
    } finally {
      emulator.clearFaults();
      await clean.close();
      await faulty.close();
    }
  });
});

import { expect } from 'chai';
import { encodeKey, partitionKey } from '../src/storage/cosmosdb/ids.js';
import { generateRoom } from '../src/io/generate-room.js';
import { validateGenerateOptions } from '../src/io/generate-options.js';
import { parsePDU } from '../src/types/event.js';
import { ConfigError, StoreUnavailableError } from '../src/types/errors.js';
import { conformanceSuite } from './conformance/index.js';
import { makeEvent, seedRoom } from './conformance/fixtures.js';
import { fillEveryTable, readWholeDump } from './conformance/fill-store.js';
import { checkStore } from '../src/io/check.js';
import { cosmosEmulatorDriver, sharedEmulator } from './support/drivers-cosmos.js';
import { connOf, openTenant } from './support/cosmos-tenants.js';

/*
 * Cosmos DB: the conformance suite on the emulator, then what is the driver's own: identifiers, failure
 * classification, tenants, send-to-device retention, conditional writes, the document layout, request accounting
 * and priority. The input path's Cosmos DB cases are in cosmosdb-input-path.test.ts, faults in cosmosdb-faults.test.ts.
 */

const mocha = { describe, it, beforeEach, afterEach };
conformanceSuite(mocha, cosmosEmulatorDriver());

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
      const conn = connOf(storage);
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
      const conn = connOf(storage);
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

/**
 * PostgreSQL under concurrency: two independent stores (two pools, two sets of caches, as two homeserver processes
 * would have) writing one room and creating the same NIDs at once, the latest-events updater serializing writers
 * of one room, and the key server's contended paths (one-time key claims, device stream IDs) across both pools.
 */
import { expect } from 'chai';
import { createStorage, resolveState, type Storage } from '../src/index.js';
import { LatestEventsUpdater } from '../src/storage/shared/latest-events-updater.js';
import type { UserNIDResolver } from '../src/storage/shared/membership-updater.js';
import type { DeviceMessage } from '../src/storage/tables/index.js';
import type { RoomEvent } from '../src/types/event.js';
import type { RoomNID } from '../src/types/nids.js';
import { StoreUnavailableError } from '../src/types/errors.js';
import { makeEvent, seedRoom } from './conformance/fixtures.js';
import { adminPool, closeAdminPool, freshSchemaName, openInFreshSchema, testDatabaseURL } from './support/postgres.js';

const ROOM = '!shared:example.org';
const settings = { server_name: 'example.org' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Two stores on one schema: `a` drops the schema when closed, so close `b` first. */
async function twoProcesses(): Promise<[Storage, Storage]> {
  const schema = freshSchemaName('conc');
  const a = await openInFreshSchema({ ...settings, postgres: { pool_size: 6 } }, schema);
  const b = await createStorage({ ...settings, backend: 'postgres', postgres: { url: testDatabaseURL(), schema, pool_size: 6 } });
  return [a, b];
}

/**
 * One writer's chain: each event names the previous one; every third is a message, the others are state events
 * whose types and state keys are drawn from small sets that both writers share (so both create the same NIDs, and
 * their tuples overlap), and every fifth is a membership.
 */
function chain(writer: string, length: number, root: string): RoomEvent[] {
  const events: RoomEvent[] = [];
  let prev = root;
  for (let i = 0; i < length; i++) {
    const id = `$${writer}${i}`;
    const base = { id, room: ROOM, prev: [prev], depth: 10 + i, sender: '@alice:example.org' };
    if (i % 5 === 4) {
      events.push(makeEvent({ ...base, type: 'm.room.member', stateKey: `@member${i % 7}:example.org`, content: { membership: i % 2 ? 'join' : 'leave' } }));
    } else if (i % 3 === 0) {
      events.push(makeEvent({ ...base, content: { body: `${writer} says ${i}` } }));
    } else {
      events.push(makeEvent({ ...base, type: `org.example.shared.${i % 4}`, stateKey: `key-${i % 6}`, content: { writer, i } }));
    }
    prev = id;
  }
  return events;
}

describe('postgres concurrency', function () {
  this.timeout(120_000);
  after(closeAdminPool);

  it('two stores appending to one room at once, creating the same NIDs, leave a consistent room', async () => {
    const [a, b] = await twoProcesses();
    try {
      const seed = await seedRoom(a, ROOM);
      const root = seed.bobJoin.eventID;
      const chainA = chain('a', 40, root);
      const chainB = chain('b', 40, root);
      const newUsers = Array.from({ length: 40 }, (_, i) => `@new${i}:example.org`);
      const outliers = (w: string) => Array.from({ length: 10 }, (_, i) =>
        makeEvent({ id: `$out-${w}${i}`, room: ROOM, type: `org.example.outlier.${i % 3}`, stateKey: `outlier-key-${i % 4}` }));
      const roomNID = (await a.roomserver.roomInfo(ROOM))!.roomNID;
      const appendAll = async (s: Storage, events: RoomEvent[]) => { for (const e of events) await s.roomserver.appendEvent(e); };
      await Promise.all([
        appendAll(a, chainA),
        appendAll(b, chainB),
        // The same new state keys, assigned by both stores at once (getMembership creates the user's NID).
        ...newUsers.map((u, i) => (i % 2 ? a : b).roomserver.getMembership(roomNID, u)),
        ...newUsers.map((u, i) => (i % 2 ? b : a).roomserver.getMembership(roomNID, u)),
        // Events stored without the room lock, with new types and keys shared by both stores.
        ...outliers('x').map((e) => a.roomserver.storeEvent(e)),
        ...outliers('x').map((e) => b.roomserver.storeEvent(e)),
      ]);

      const all = [...Object.values(seed), ...chainA, ...chainB, ...outliers('x')];
      // Every event stored once, and both stores agree on every NID.
      const nidsA = await a.roomserver.eventNIDs(all.map((e) => e.eventID));
      const nidsB = await b.roomserver.eventNIDs(all.map((e) => e.eventID));
      expect(nidsA.size).to.equal(all.length);
      expect(nidsB).to.deep.equal(nidsA);
      expect(new Set(nidsA.values()).size).to.equal(all.length);
      expect((await a.stats.collect()).events).to.equal(all.length);
      const schema = a.config.postgres.schema;
      for (const [table, column] of [['roomserver_event_types', 'event_type'], ['roomserver_event_state_keys', 'event_state_key']]) {
        const dup = await adminPool().query(`SELECT ${column} FROM ${schema}.${table} GROUP BY ${column} HAVING count(*) > 1`);
        expect(dup.rows, table).to.deep.equal([]);
      }
      const keys = [...newUsers, ...all.flatMap((e) => (e.stateKey === undefined ? [] : [e.stateKey]))];
      expect(await b.roomserver.eventStateKeyNIDs(keys)).to.deep.equal(await a.roomserver.eventStateKeyNIDs(keys));
      const types = [...new Set(all.map((e) => e.type))];
      const typeNIDs = await a.roomserver.eventTypeNIDsFor(types);
      expect(typeNIDs.size).to.equal(types.length);
      expect(await b.roomserver.eventTypeNIDsFor(types)).to.deep.equal(typeNIDs);

      // The room lock serialized the appends, and event NIDs were reserved under it: NID order is the order in
      // which the appends applied.
      const appended = [...Object.values(seed), ...chainA, ...chainB].sort((x, y) => nidsA.get(x.eventID)! - nidsA.get(y.eventID)!);
      // The two writers really did take turns (otherwise this case would prove nothing about concurrency).
      const writers = appended.map((e) => e.eventID.slice(0, 2)).filter((w) => w === '$a' || w === '$b');
      expect(writers.filter((w, i) => i > 0 && w !== writers[i - 1]).length, writers.join(' ')).to.be.at.least(2);
      // Each event's state comes from its prev events (its own chain, on the seed room's state), whichever writer
      // applied first; the room's current state is the resolution of the two chains' ends, as resolveState gives it.
      const stateIDs = async (s: Storage, entries: { eventNID: number }[]) => {
        const ids = await s.roomserver.eventIDs(entries.map((e) => e.eventNID as never));
        return [...ids.values()].sort();
      };
      const seedState = new Map<string, string>();
      for (const e of Object.values(seed)) if (e.stateKey !== undefined) seedState.set(`${e.type}\u0000${e.stateKey}`, e.eventID);
      const tips: Map<string, string>[] = [];
      for (const [w, events] of [[a, chainA], [b, chainB]] as const) {
        const replay = new Map(seedState);
        for (const e of events) {
          expect(await stateIDs(a, await w.roomserver.loadStateAtEvent(e.eventID)), `state before ${e.eventID}`).to.deep.equal([...replay.values()].sort());
          if (e.stateKey !== undefined) replay.set(`${e.type}\u0000${e.stateKey}`, e.eventID);
        }
        tips.push(replay);
      }
      const byID = new Map(all.map((e) => [e.eventID, e]));
      const resolved = await resolveState('10', tips, async (ids) => new Map(ids.flatMap((id) => (byID.has(id) ? [[id, byID.get(id)!]] : []))));
      for (const s of [a, b]) expect(await stateIDs(s, await s.roomserver.currentState(ROOM))).to.deep.equal([...resolved.values()].sort());

      // Latest events: the two chains' ends (each chain's events replace their predecessor).
      const latest = await b.roomserver.latestEventIDs(roomNID);
      expect(latest.eventIDs.sort()).to.deep.equal([chainA.at(-1)!.eventID, chainB.at(-1)!.eventID].sort());
      expect(latest.depth).to.equal(50);

      // Memberships follow the current state's member events.
      const lastMembership = new Map<string, string>();
      for (const id of resolved.values()) {
        const e = byID.get(id)!;
        if (e.type === 'm.room.member') lastMembership.set(e.stateKey!, e.content.membership as string);
      }
      expect(lastMembership.size).to.be.at.least(4);
      for (const [user, membership] of lastMembership) {
        const m = await a.roomserver.getMembership(roomNID, user);
        expect(m.stillInRoom, user).to.equal(membership === 'join');
      }
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('the latest-events updater serializes writers: a second updater of the room waits for the first to commit', async () => {
    const [a, b] = await twoProcesses();
    try {
      const seed = await seedRoom(a, ROOM);
      const roomNID: RoomNID = (await a.roomserver.roomInfo(ROOM))!.roomNID;
      const nids = await a.roomserver.eventNIDs([seed.message.eventID, seed.create.eventID]);
      const resolve = (s: Storage): UserNIDResolver => (tx, id) => s.tables.eventStateKeys.selectEventStateKeyNID(tx, id);
      const timeline: string[] = [];
      let firstHolds!: () => void;
      const held = new Promise<void>((r) => { firstHolds = r; });

      const first = a.unitOfWork.transaction(async (tx) => {
        const u = await LatestEventsUpdater.open(tx, a.tables, resolve(a), roomNID, '10');
        timeline.push('first opened');
        firstHolds();
        await sleep(400);
        await u.setLatestEvents([nids.get(seed.message.eventID)!], nids.get(seed.create.eventID)!, u.currentStateSnapshotNID);
        timeline.push('first committing');
      });
      await held;
      // The first holds the room for a while: an unserialized second updater would open inside that window.
      const second = b.unitOfWork.transaction(async (tx) => {
        const u = await LatestEventsUpdater.open(tx, b.tables, resolve(b), roomNID, '10');
        timeline.push('second opened');
        return { latest: [...u.latestEventNIDs], lastSent: u.lastEventIDSent };
      });
      await first;
      const seen = await second;
      expect(timeline).to.deep.equal(['first opened', 'first committing', 'second opened']);
      // The second updater read what the first wrote.
      expect(seen.latest).to.deep.equal([nids.get(seed.message.eventID)]);
      expect(seen.lastSent).to.equal(seed.create.eventID);
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('appendEvent from two stores to one room: each new event waits for the room, none is lost', async () => {
    const [a, b] = await twoProcesses();
    try {
      await seedRoom(a, ROOM);
      const root = `$bob-join${ROOM}`;
      // Both stores append the same chain at once, as two importers of one file would: each event applies once.
      const events = chain('s', 30, root);
      const run = async (s: Storage) => {
        let applied = 0;
        for (const e of events) if ((await s.roomserver.appendEvent(e)).applied) applied++;
        return applied;
      };
      const [ra, rb] = await Promise.all([run(a), run(b)]);
      expect(ra + rb).to.equal(events.length);
      const roomNID = (await a.roomserver.roomInfo(ROOM))!.roomNID;
      expect((await a.roomserver.latestEventIDs(roomNID)).eventIDs).to.deep.equal([events.at(-1)!.eventID]);
      const replay = new Map<string, string>();
      for (const e of [...Object.values(await seedEventsOf(a)), ...events]) if (e.stateKey !== undefined) replay.set(`${e.type}\u0000${e.stateKey}`, e.eventID);
      const current = await a.roomserver.currentState(ROOM);
      const ids = await a.roomserver.eventIDs(current.map((e) => e.eventNID));
      expect([...ids.values()].sort()).to.deep.equal([...replay.values()].sort());
    } finally {
      await b.close();
      await a.close();
    }
  });
});

const ALICE = '@alice:example.org';
const BOB = '@bob:example.org';
const OTK = 'signed_curve25519';
const claimOf = (userID: string, deviceID: string) => new Map([[userID, new Map([[deviceID, OTK]])]]);
const dm = (userID: string, deviceID: string): DeviceMessage => ({ userID, deviceID, keyJSON: JSON.stringify({ deviceID }), streamID: 0 });

describe('postgres concurrency: the key server', function () {
  this.timeout(120_000);
  after(closeAdminPool);

  it('one-time key claims on one device from two pools: each key handed out once, as many successes as keys, none lost', async () => {
    const [a, b] = await twoProcesses();
    try {
      const KEYS = 40;
      const CLAIMS = 120;
      const uploaded = new Map(Array.from({ length: KEYS }, (_, i) => [`${OTK}:K${String(i).padStart(2, '0')}`, JSON.stringify({ i })]));
      await a.keys.storeOneTimeKeys({ userID: ALICE, deviceID: 'PHONE', keyJSON: uploaded });
      // Both pools open their connections first, so that neither gets a head start; then both stores claim at once,
      // alternating, so that claims from the two pools really interleave.
      await Promise.all([a, b].flatMap((s) => Array.from({ length: 6 }, () => s.keys.oneTimeKeysCount(ALICE, 'PHONE'))));
      const results = await Promise.all(Array.from({ length: CLAIMS }, (_, i) => (i % 2 ? a : b).keys.claimKeys(claimOf(ALICE, 'PHONE'))));
      const won = results.filter((r) => r.length > 0).map((r) => [...r[0]!.keyJSON][0]!);
      expect(won, 'successes').to.have.length(KEYS);
      expect(new Set(won.map(([name]) => name)).size, 'distinct keys').to.equal(KEYS);
      // None lost: the keys handed out are exactly the keys uploaded, each with its own JSON; none is left.
      expect(new Map(won)).to.deep.equal(uploaded);
      expect((await b.keys.oneTimeKeysCount(ALICE, 'PHONE')).keyCount).to.deep.equal(new Map());
      // Each pool served some of them.
      const byPool = [0, 1].map((p) => results.filter((r, i) => i % 2 === p && r.length > 0).length);
      expect(byPool[0]! + byPool[1]!).to.equal(KEYS);
      expect(Math.min(...byPool), `claims served per pool: ${byPool}`).to.be.greaterThan(0);
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('a claim that finds every key held by another transaction waits for it, and takes the key if it stays', async () => {
    const [a, b] = await twoProcesses();
    try {
      await a.keys.storeOneTimeKeys({ userID: ALICE, deviceID: 'PHONE', keyJSON: new Map([[`${OTK}:ONLY`, '{"v":1}']]) });
      const otk = a.tables.oneTimeKeys;
      const holdAndThen = async (hold: (tx: Parameters<typeof otk.countOneTimeKeys>[0]) => Promise<unknown>, rollBack: boolean) => {
        let holding!: () => void;
        const held = new Promise<void>((r) => { holding = r; });
        const timeline: string[] = [];
        const holder = a.unitOfWork.transaction(async (tx) => {
          await hold(tx);
          holding();
          // Held for a while: a claim that did not wait would finish inside this window.
          await sleep(400);
          timeline.push('holder ends');
          if (rollBack) throw new Error('rolled back on purpose');
        }).catch((e: Error) => { if (e.message !== 'rolled back on purpose') throw e; });
        await held;
        const claimed = await b.keys.claimKeys(claimOf(ALICE, 'PHONE'));
        timeline.push('claim returns');
        await holder;
        return { claimed: claimed.map((k) => [...k.keyJSON]), waited: timeline[0] === 'holder ends' };
      };
      // Another claim took the key, then rolled back: the key is still there, and this claim gets it (SKIP LOCKED
      // alone would have answered "no key" at once).
      const afterRollback = await holdAndThen((tx) => otk.selectAndDeleteOneTimeKey(tx, ALICE, 'PHONE', OTK), true);
      expect(afterRollback.claimed).to.deep.equal([[[`${OTK}:ONLY`, '{"v":1}']]]);
      expect(afterRollback.waited, 'the claim returned before the holder ended').to.equal(true);
      // The device re-uploads the key (its row is locked until that commits): the claim gets the new JSON.
      await a.keys.storeOneTimeKeys({ userID: ALICE, deviceID: 'PHONE', keyJSON: new Map([[`${OTK}:ONLY`, '{"v":2}']]) });
      const duringUpload = await holdAndThen((tx) => otk.insertOneTimeKeys(tx, { userID: ALICE, deviceID: 'PHONE', keyJSON: new Map([[`${OTK}:ONLY`, '{"v":3}']]) }), false);
      expect(duringUpload.claimed).to.deep.equal([[[`${OTK}:ONLY`, '{"v":3}']]]);
      expect(duringUpload.waited, 'the claim returned before the upload ended').to.equal(true);
      // And a claim the holder beat to the last key comes back empty once the holder commits.
      await a.keys.storeOneTimeKeys({ userID: ALICE, deviceID: 'PHONE', keyJSON: new Map([[`${OTK}:ONLY`, '{"v":4}']]) });
      const afterCommit = await holdAndThen((tx) => otk.selectAndDeleteOneTimeKey(tx, ALICE, 'PHONE', OTK), false);
      expect(afterCommit.claimed).to.deep.equal([]);
      expect((await a.keys.oneTimeKeysCount(ALICE, 'PHONE')).keyCount).to.deep.equal(new Map());
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('a claim cut off before its commit leaves every key it had taken claimable (one key, or the fallback key, per device)', async () => {
    const [a, b] = await twoProcesses();
    try {
      await a.keys.storeOneTimeKeys({ userID: ALICE, deviceID: 'PHONE', keyJSON: new Map([[`${OTK}:P1`, '{"p":1}']]) });
      await a.keys.storeOneTimeKeys({ userID: ALICE, deviceID: 'TABLET', keyJSON: new Map([[`${OTK}:T1`, '{"t":1}']]) });
      await a.keys.storeFallbackKeys({ userID: ALICE, deviceID: 'LAPTOP', keyJSON: new Map([[`${OTK}:F`, '{"f":1}']]) });
      // Another transaction holds the tablet's only key, so a claim of the three devices takes the phone's key and the
      // laptop's fallback key (uncommitted), then waits for the tablet's; its connection is cut while it waits.
      let holding!: () => void;
      const held = new Promise<void>((r) => { holding = r; });
      let release!: () => void;
      const released = new Promise<void>((r) => { release = r; });
      const holder = a.unitOfWork.transaction(async (tx) => {
        await a.tables.oneTimeKeys.selectAndDeleteOneTimeKey(tx, ALICE, 'TABLET', OTK);
        holding();
        await released;
        throw new Error('rolled back on purpose');
      }).catch((e: Error) => { if (e.message !== 'rolled back on purpose') throw e; });
      await held;
      const claim = b.keys.claimKeys(new Map([[ALICE, new Map([['PHONE', OTK], ['LAPTOP', OTK], ['TABLET', OTK]])]]))
        .then(() => undefined, (e: unknown) => e);
      let cut = 0;
      for (let tries = 0; cut === 0 && tries < 100; tries++) {
        await sleep(50);
        cut = (await adminPool().query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE wait_event_type = 'Lock' AND query LIKE '%keyserver_one_time_keys%' AND pid <> pg_backend_pid()`)).rowCount ?? 0;
      }
      expect(cut, 'the waiting claim was found and cut off').to.equal(1);
      const error = await claim;
      expect(error, String(error)).to.be.instanceOf(StoreUnavailableError);
      release();
      await holder;
      // Nothing of the cut claim stayed: both keys it had taken are there, the fallback key still unused.
      expect((await a.keys.oneTimeKeysCount(ALICE, 'PHONE')).keyCount).to.deep.equal(new Map([[OTK, 1]]));
      expect(await a.keys.unusedFallbackKeyAlgorithms(ALICE, 'LAPTOP')).to.deep.equal([OTK]);
      const again = await a.keys.claimKeys(new Map([[ALICE, new Map([['PHONE', OTK], ['LAPTOP', OTK], ['TABLET', OTK]])]]));
      expect(again.map((k) => [...k.keyJSON])).to.deep.equal([[[`${OTK}:P1`, '{"p":1}']], [[`${OTK}:F`, '{"f":1}']], [[`${OTK}:T1`, '{"t":1}']]]);
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('device key uploads for one user from two pools get distinct, gapless stream IDs, consecutive within each upload', async () => {
    const [a, b] = await twoProcesses();
    try {
      // 30 uploads of 1 to 4 devices each for ALICE, from both stores at once, with BOB's uploads interleaved.
      const batches = Array.from({ length: 30 }, (_, i) => Array.from({ length: (i % 4) + 1 }, (__, j) => dm(ALICE, `D${i}-${j}`)));
      const bobs = Array.from({ length: 10 }, (_, i) => [dm(BOB, `B${i}`)]);
      await Promise.all([...batches, ...bobs].map((batch, i) => (i % 2 ? a : b).keys.storeLocalDeviceKeys(batch)));
      const ids = batches.flat().map((m) => m.streamID);
      const total = ids.length;
      expect(new Set(ids).size, `stream IDs ${ids}`).to.equal(total);
      expect([...ids].sort((x, y) => x - y)).to.deep.equal(Array.from({ length: total }, (_, i) => i + 1));
      for (const batch of batches) expect(batch.map((m) => m.streamID - batch[0]!.streamID)).to.deep.equal(batch.map((_, j) => j));
      expect(bobs.flat().map((m) => m.streamID).sort((x, y) => x - y)).to.deep.equal(Array.from({ length: 10 }, (_, i) => i + 1));
      // What either store reads back is what was written back to the callers.
      for (const s of [a, b]) {
        const stored = new Map((await s.keys.deviceKeysForUser(ALICE, [])).map((m) => [m.deviceID, m.streamID]));
        expect(stored.size).to.equal(total);
        for (const m of batches.flat()) expect(stored.get(m.deviceID), m.deviceID).to.equal(m.streamID);
      }
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('uploads naming the same users in opposite orders, from two pools, never deadlock on the users\' locks', async () => {
    const [a, b] = await twoProcesses();
    try {
      const users = ['@a:example.org', '@b:example.org', '@c:example.org'];
      const uploads = Array.from({ length: 40 }, (_, i) => (i % 2 ? [...users] : [...users].reverse()).map((u) => dm(u, `D${i}`)));
      const settled = await Promise.allSettled(uploads.map((upload, i) => (i % 2 ? a : b).keys.storeLocalDeviceKeys(upload)));
      const failures = settled.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
      expect(failures, failures[0]).to.deep.equal([]);
      for (const u of users) {
        const ids = uploads.flat().filter((m) => m.userID === u).map((m) => m.streamID).sort((x, y) => x - y);
        expect(ids, u).to.deep.equal(Array.from({ length: 40 }, (_, i) => i + 1));
      }
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('the stream ID lock is per user: an upload waits for another store\'s open reservation for its user only', async () => {
    const [a, b] = await twoProcesses();
    try {
      const timeline: string[] = [];
      let holding!: () => void;
      const held = new Promise<void>((r) => { holding = r; });
      let bobDone!: () => void;
      const bobSignal = new Promise<void>((r) => { bobDone = r; });
      const holder = a.unitOfWork.transaction(async (tx) => {
        const first = await a.tables.deviceKeys.reserveStreamIDs(tx, ALICE, 2);
        holding();
        // Bob's upload must finish while ALICE's reservation is still open: if it waited for this lock, it never
        // would, and the guard below fails the case instead of hanging.
        await Promise.race([bobSignal, sleep(15_000).then(() => { throw new Error("an upload for another user waited for ALICE's lock"); })]);
        timeline.push('ALICE reservation ends');
        await a.tables.deviceKeys.insertDeviceKeys(tx, [{ ...dm(ALICE, 'A1'), streamID: first }, { ...dm(ALICE, 'A2'), streamID: first + 1 }]);
      });
      await held;
      const aliceStored = b.keys.storeLocalDeviceKeys([dm(ALICE, 'A3')]).then(() => { timeline.push('ALICE upload stored'); });
      const bobStored = b.keys.storeLocalDeviceKeys([dm(BOB, 'B1')]).then(() => { timeline.push('BOB upload stored'); bobDone(); });
      await Promise.all([holder, aliceStored, bobStored]);
      expect(timeline).to.deep.equal(['BOB upload stored', 'ALICE reservation ends', 'ALICE upload stored']);
      // The waiting upload read the max its predecessor committed: ALICE has 1, 2 and then 3.
      expect((await a.keys.deviceKeysForUser(ALICE, [])).map((m) => [m.deviceID, m.streamID])).to.deep.equal([['A1', 1], ['A2', 2], ['A3', 3]]);
    } finally {
      await b.close();
      await a.close();
    }
  });
});

/** The seeded room's events as stored (seedRoom's events, read back by ID). */
async function seedEventsOf(s: Storage): Promise<RoomEvent[]> {
  const ids = ['create', 'alice-join', 'power', 'rules', 'msg', 'bob-join'].map((n) => `$${n}${ROOM}`);
  return (await s.roomserver.eventsFromIDs(ids)).map((e) => e.event);
}

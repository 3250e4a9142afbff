import { expect } from 'chai';
import { ConflictError, InvalidInputError, MissingStateError, NotFoundError } from '../../src/types/errors.js';
import type { RoomNID, StateBlockNID, StateSnapshotNID } from '../../src/types/nids.js';
import { deduplicateStateEntries, type StateEntry } from '../../src/types/state.js';
import { StateStorage } from '../../src/storage/shared/state-storage.js';
import type { StatePolicy } from '../../src/storage/shared/state-policy.js';
import type { Storage } from '../../src/index.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { entry, makeEvent, rejects, seedRoom, triples } from './fixtures.js';

/** The state model: state at an event, overrides, tombstones, content addressing, merging. */
export function databaseStateTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Database: state', (test) => {
    test('the state before each event is the state after the previous one', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const ids = async (state: StateEntry[]) => [...(await db.eventIDs(state.map((e) => e.eventNID))).values()].sort();
      expect(await db.loadStateAtEvent(ev.create.eventID)).to.deep.equal([]);
      expect(await ids(await db.loadStateAtEvent(ev.aliceJoin.eventID))).to.deep.equal([ev.create.eventID]);
      expect(await ids(await db.loadStateAtEvent(ev.message.eventID))).to.deep.equal(
        [ev.create.eventID, ev.aliceJoin.eventID, ev.power.eventID, ev.joinRules.eventID].sort());
      // A message changes nothing: the event after it sees the same snapshot.
      const nids = await db.eventNIDs([ev.message.eventID, ev.bobJoin.eventID]);
      const at = new Map((await db.stateAtEventIDs([ev.message.eventID, ev.bobJoin.eventID])).map((a) => [a.eventNID, a]));
      expect(at.get(nids.get(ev.message.eventID)!)!.beforeStateSnapshotNID).to.equal(at.get(nids.get(ev.bobJoin.eventID)!)!.beforeStateSnapshotNID);
      const current = await db.currentState('!room:example.org');
      expect(await ids(current)).to.deep.equal([ev.create.eventID, ev.aliceJoin.eventID, ev.power.eventID, ev.joinRules.eventID, ev.bobJoin.eventID].sort());
    });

    test('a later state event for the same (type, state key) overrides the earlier one', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const newRules = makeEvent({ id: '$rules2', type: 'm.room.join_rules', stateKey: '', depth: 7, prev: [ev.bobJoin.eventID], content: { join_rule: 'invite' } });
      await db.appendEvent(newRules);
      const stateEvent = await db.getStateEvent('!room:example.org', 'm.room.join_rules', '');
      expect(stateEvent?.event.eventID).to.equal('$rules2');
      // The state before the change still has the old rules.
      const before = await db.loadStateAtEvent('$rules2');
      const rulesNIDs = await db.eventNIDs([ev.joinRules.eventID]);
      expect(before.some((e) => e.eventNID === rulesNIDs.get(ev.joinRules.eventID))).to.equal(true);
      expect((await db.currentState('!room:example.org')).length).to.equal(before.length);
    });

    test('loadStateAfterEvent adds the event itself to the state before it', async ({ storage }) => {
      const db = storage.roomserver;
      const ev = await seedRoom(storage);
      const after = await db.loadStateAfterEvent(ev.bobJoin.eventID);
      expect(triples(after)).to.deep.equal(triples(await db.currentState('!room:example.org')));
      const afterMessage = await db.loadStateAfterEvent(ev.message.eventID);
      expect(triples(afterMessage)).to.deep.equal(triples(await db.loadStateAtEvent(ev.message.eventID)));
    });

    test('an event whose state is unknown gives MissingStateError; an unknown event NotFoundError', async ({ storage }) => {
      const db = storage.roomserver;
      await db.storeEvent(makeEvent({ id: '$floating' }));
      await rejects(db.loadStateAtEvent('$floating'), MissingStateError);
      await rejects(db.stateAtEventIDs(['$floating']), MissingStateError);
      await rejects(db.loadStateAtEvent('$never'), NotFoundError);
      // A create event's state is empty by definition, so its StateAtEvent is allowed before state is set.
      await db.storeEvent(makeEvent({ id: '$c', room: '!new:x.org', type: 'm.room.create', stateKey: '', content: {} }));
      const [at] = await db.stateAtEventIDs(['$c']);
      expect(at!.beforeStateSnapshotNID).to.equal(0);
    });

    test('a tombstone (event NID 0) removes a tuple from the state', async ({ storage }) => {
      const db = storage.roomserver;
      const room = 1 as RoomNID;
      const base = await db.addState(room, [], [entry(1, 1, 10), entry(5, 2, 11), entry(5, 3, 12)]);
      const [list] = await db.stateBlockNIDs([base]);
      const removed = await db.addState(room, list!.stateBlockNIDs, [entry(5, 2, 0)]);
      expect(triples(await db.loadStateAtSnapshot(removed))).to.deep.equal([[1, 1, 10], [5, 3, 12]]);
      // And a later block can bring the tuple back.
      const [list2] = await db.stateBlockNIDs([removed]);
      const back = await db.addState(room, list2!.stateBlockNIDs, [entry(5, 2, 13)]);
      expect(triples(await db.loadStateAtSnapshot(back))).to.deep.equal([[1, 1, 10], [5, 2, 13], [5, 3, 12]]);
    });

    test('identical states are stored once: same blocks, same snapshot NID', async ({ storage }) => {
      const db = storage.roomserver;
      const a = await db.addState(1 as RoomNID, [], [entry(1, 1, 10), entry(2, 1, 11)]);
      const b = await db.addState(2 as RoomNID, [], [entry(2, 1, 11), entry(1, 1, 10)]);
      expect(a).to.equal(b);
      const emptyA = await db.addState(1 as RoomNID, [], []);
      const emptyB = await db.addState(2 as RoomNID, [], []);
      expect(emptyA).to.equal(emptyB);
      expect(await db.loadStateAtSnapshot(emptyA)).to.deep.equal([]);
      expect(emptyA).to.not.equal(a);
    });

    test('a delta naming one tuple with two events is refused and writes nothing; an entry repeated counts once', async ({ storage }) => {
      const db = storage.roomserver;
      const before = await storage.stats.fingerprint();
      await rejects(db.addState(1 as RoomNID, [], [entry(1, 1, 10), entry(1, 1, 11)]), InvalidInputError, /one event per tuple; \(1, 1\) is given events 10 and 11/);
      expect(await storage.stats.fingerprint()).to.equal(before);
      const once = await db.addState(1 as RoomNID, [], [entry(1, 1, 10), entry(2, 1, 12)]);
      expect(await db.addState(1 as RoomNID, [], [entry(2, 1, 12), entry(1, 1, 10), entry(1, 1, 10)])).to.equal(once);
    });

    test('stateEntriesForTuples filters each block to the tuples asked for, keeping empty blocks', async ({ storage }) => {
      const db = storage.roomserver;
      const snap = await db.addState(1 as RoomNID, [], [entry(1, 1, 10), entry(5, 2, 11)]);
      const [list] = await db.stateBlockNIDs([snap]);
      const snap2 = await db.addState(1 as RoomNID, list!.stateBlockNIDs, [entry(5, 3, 12)]);
      const [list2] = await db.stateBlockNIDs([snap2]);
      const blocks = list2!.stateBlockNIDs;
      const filtered = await db.stateEntriesForTuples(blocks, [{ eventTypeNID: 5 as never, eventStateKeyNID: 3 as never }]);
      expect(filtered.map((l) => l.stateBlockNID)).to.deep.equal([...blocks]);
      expect(filtered.flatMap((l) => triples(l.stateEntries))).to.deep.equal([[5, 3, 12]]);
      const all = await db.stateEntries(blocks);
      expect(all.flatMap((l) => triples(l.stateEntries))).to.have.length(3);
      await rejects(db.stateEntries([987_654 as StateBlockNID]), MissingStateError);
      await rejects(db.stateBlockNIDs([987_654 as StateSnapshotNID]), MissingStateError);
    });

    test('deduplicateStateEntries keeps the highest event NID per tuple', async () => {
      const out = deduplicateStateEntries([entry(1, 1, 1), entry(1, 1, 2), entry(1, 1, 3), entry(2, 2, 4), entry(2, 3, 5), entry(3, 3, 6)]);
      expect(out.map((e) => e.eventNID)).to.deep.equal([3, 4, 5, 6]);
    });

    test('random state changes with tight merging always load as the model says', async ({ storage }) => {
      // A small fan-in and block cap force merges (including full merges that drop tombstones) every few steps;
      // no cache, so every load reads the driver's tables.
      await randomChangesLoadAsModelled(storage, { fanIn: 2, maxBlocks: 5 });
    });

    test('random state changes merged by the block cap always load as the model says', async ({ storage }) => {
      // A cap below the fan-in: most merges are the cap's, of short trailing runs that keep their tombstones.
      await randomChangesLoadAsModelled(storage, { fanIn: 4, maxBlocks: 3 });
    });

    test('a snapshot of a long-lived room stays within the block limit', async ({ storage }) => {
      const db = storage.roomserver;
      const room = '!big:example.org';
      await db.appendEvent(makeEvent({ id: '$c', room, type: 'm.room.create', stateKey: '', content: { room_version: '10' } }));
      let prev = '$c';
      for (let i = 0; i < 150; i++) {
        const id = `$m${i}`;
        await db.appendEvent(makeEvent({ id, room, type: 'm.room.member', stateKey: `@u${i % 40}:example.org`, sender: `@u${i % 40}:example.org`,
          depth: i + 2, prev: [prev], content: { membership: i % 3 === 2 ? 'leave' : 'join' } }));
        prev = id;
      }
      const info = (await db.roomInfo(room))!;
      const [list] = await db.stateBlockNIDs([info.stateSnapshotNID]);
      expect(list!.stateBlockNIDs.length).to.be.at.most(64).and.at.least(1);
      expect(await db.currentState(room)).to.have.length(41);
    });

    test('what a rolled-back transaction stored is never served from a cache', async ({ storage }) => {
      // SQLite hands a rolled-back insert's NID to the next insert, which may come from another process: a cache
      // filled before commit would then serve the rolled-back state under the other writer's NID.
      const db = storage.roomserver;
      const uow = storage.unitOfWork;
      const otherWriter = new StateStorage(storage.tables, uow, { serverName: 'x', statePolicy: { fanIn: 8, maxBlocks: 40 }, blockCacheEntries: 1000 });
      const failing = uow.transaction(async (tx) => {
        await db.state.addState(tx, 1 as RoomNID, [], [entry(1, 1, 10), entry(5, 2, 11)]);
        throw new Error('rolled back on purpose');
      });
      await rejects(failing, Error, /rolled back on purpose/);
      const kept = await uow.transaction((tx) => otherWriter.addState(tx, 1 as RoomNID, [], [entry(2, 1, 20)]));
      expect(triples(await db.loadStateAtSnapshot(kept))).to.deep.equal([[2, 1, 20]]);
      const [list] = await db.stateBlockNIDs([kept]);
      expect((await db.stateEntries(list!.stateBlockNIDs)).flatMap((l) => triples(l.stateEntries))).to.deep.equal([[2, 1, 20]]);

      // The same for NID mappings: an event type first seen in an event that was refused, then another new type.
      const key = { transactionID: 'txn', sessionID: 1, userID: '@alice:example.org' };
      await db.storeEvent(makeEvent({ id: '$m1' }), { transaction: key });
      await rejects(db.storeEvent(makeEvent({ id: '$a1', type: 'org.example.a', stateKey: '' }), { transaction: key }), ConflictError);
      await db.appendEvent(makeEvent({ id: '$b', type: 'org.example.b', stateKey: '', room: '!r2:example.org' }));
      await db.appendEvent(makeEvent({ id: '$a2', type: 'org.example.a', stateKey: '', room: '!r2:example.org', prev: ['$b'] }));
      expect((await db.getStateEvent('!r2:example.org', 'org.example.a', ''))?.event.eventID).to.equal('$a2');
      expect((await db.getStateEvent('!r2:example.org', 'org.example.b', ''))?.event.eventID).to.equal('$b');
      const typeNIDs = await db.eventTypeNIDsFor(['org.example.a', 'org.example.b']);
      expect(new Set(typeNIDs.values()).size).to.equal(2);
    });
  });
}

/** 120 steps of random deltas (with tombstones) under `policy`; each state loads as a plain map says it should. */
async function randomChangesLoadAsModelled(storage: Storage, policy: StatePolicy): Promise<void> {
  const state = new StateStorage(storage.tables, storage.unitOfWork, { serverName: 'x', statePolicy: policy, blockCacheEntries: 0 });
  const uow = storage.unitOfWork;
  let seed = 42;
  const rand = (n: number) => { seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648; return seed % n; };
  const model = new Map<string, number>();
  let snapshot = await uow.transaction((tx) => state.addState(tx, 1 as RoomNID, [], []));
  let maxBlocksSeen = 0;
  for (let step = 1; step <= 120; step++) {
    const delta: StateEntry[] = [];
    const used = new Set<string>();
    for (let i = 0; i < 1 + rand(3); i++) {
      const type = 1 + rand(3);
      const key = 1 + rand(6);
      const k = `${type}:${key}`;
      if (used.has(k)) continue;
      used.add(k);
      const eventNID = rand(5) === 0 ? 0 : 1000 + step * 10 + i;
      delta.push(entry(type, key, eventNID));
      if (eventNID === 0) model.delete(k); else model.set(k, eventNID);
    }
    const blocks = await uow.transaction((tx) => state.blockNIDs(tx, snapshot));
    snapshot = await uow.transaction((tx) => state.addState(tx, 1 as RoomNID, blocks, delta));
    const loaded = await uow.transaction((tx) => state.loadStateAtSnapshot(tx, snapshot));
    const expected = [...model].map(([k, v]) => [...k.split(':').map(Number), v]).sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
    expect(triples(loaded), `step ${step}`).to.deep.equal(expected);
    maxBlocksSeen = Math.max(maxBlocksSeen, (await uow.transaction((tx) => state.blockNIDs(tx, snapshot))).length);
  }
  expect(maxBlocksSeen).to.be.at.most(policy.maxBlocks);
}

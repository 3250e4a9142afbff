import { expect } from 'chai';
import type { Storage } from '../../src/index.js';
import type { Tx } from '../../src/storage/tables/index.js';
import { ConflictError, InvalidInputError, MissingStateError, NotFoundError } from '../../src/types/errors.js';
import {
  asEventStateKeyNID, asEventTypeNID, asRoomNID, asStateSnapshotNID, type StateBlockNID,
} from '../../src/types/nids.js';
import type { StateEntry } from '../../src/types/state.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { entry, rejects, triples } from './fixtures.js';
import { ascending, HOSTILE, isPositive, long255, rolledBack, shuffled } from './bulk-write-fixtures.js';

/*
 * The batch write path's set-based methods on the tables state is made of: the event type and state key NID maps
 * (assign*), state_block and state_snapshot.
 */

export function bulkWriteStateTableTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Table: event_types and event_state_keys (batch writes)', (test) => {
    /** Both maps, behind one shape, so each case runs against both. */
    const maps = (storage: Storage) => [
      {
        name: 'event types', prefix: 'org.example.', known: [['m.room.create', 1], ['m.room.member', 5]] as const,
        assign: (tx: Tx, v: readonly string[]) => storage.tables.eventTypes.assignEventTypeNIDs(tx, v) as Promise<Map<string, number>>,
        insert: (tx: Tx, v: string) => storage.tables.eventTypes.insertEventTypeNID(tx, v) as Promise<number>,
        select: (tx: Tx, v: string) => storage.tables.eventTypes.selectEventTypeNID(tx, v) as Promise<number>,
        bulkSelect: (tx: Tx, v: readonly string[]) => storage.tables.eventTypes.bulkSelectEventTypeNID(tx, v) as Promise<Map<string, number>>,
        back: (tx: Tx, n: readonly number[]) => storage.tables.eventTypes.bulkSelectEventType(tx, n.map(asEventTypeNID)) as Promise<Map<number, string>>,
      },
      {
        name: 'state keys', prefix: '@', known: [['', 1]] as const,
        assign: (tx: Tx, v: readonly string[]) => storage.tables.eventStateKeys.assignEventStateKeyNIDs(tx, v) as Promise<Map<string, number>>,
        insert: (tx: Tx, v: string) => storage.tables.eventStateKeys.insertEventStateKeyNID(tx, v) as Promise<number>,
        select: (tx: Tx, v: string) => storage.tables.eventStateKeys.selectEventStateKeyNID(tx, v) as Promise<number>,
        bulkSelect: (tx: Tx, v: readonly string[]) => storage.tables.eventStateKeys.bulkSelectEventStateKeyNID(tx, v) as Promise<Map<string, number>>,
        back: (tx: Tx, n: readonly number[]) => storage.tables.eventStateKeys.bulkSelectEventStateKey(tx, n.map(asEventStateKeyNID)) as Promise<Map<number, string>>,
      },
    ];

    test('assign* returns the NIDs of known strings and creates the missing ones, each once, as insert/select see them', async ({ storage }) => {
      const tx = storage.unitOfWork.autocommit;
      for (const map of maps(storage)) {
        expect((await map.assign(tx, [])).size, map.name).to.equal(0);
        expect((await storage.unitOfWork.transaction((t) => map.assign(t, []))).size, map.name).to.equal(0);
        const inserted = await map.insert(tx, `${map.prefix}inserted`);
        const asked = [`${map.prefix}new-b`, ...map.known.map(([s]) => s), `${map.prefix}inserted`, `${map.prefix}new-a`, `${map.prefix}new-b`, `${map.prefix}new-a`];
        const got = await map.assign(tx, asked);
        expect(new Set(got.keys()), `${map.name}: every string asked for, once`).to.deep.equal(new Set(asked));
        for (const [s, nid] of map.known) expect(got.get(s), `${map.name}: ${JSON.stringify(s)} keeps its preassigned NID`).to.equal(nid);
        expect(got.get(`${map.prefix}inserted`), `${map.name}: the NID insert gave`).to.equal(inserted);
        const a = got.get(`${map.prefix}new-a`)!;
        const b = got.get(`${map.prefix}new-b`)!;
        for (const nid of [a, b]) expect(isPositive(nid), `${map.name}: NID ${nid}`).to.equal(true);
        expect(new Set(got.values()).size, `${map.name}: distinct strings, distinct NIDs`).to.equal(got.size);
        // The single-row and bulk selects agree, both ways.
        expect(await map.select(tx, `${map.prefix}new-a`)).to.equal(a);
        expect(await map.select(tx, `${map.prefix}new-b`)).to.equal(b);
        expect(await map.bulkSelect(tx, asked)).to.deep.equal(got);
        expect(await map.back(tx, [a, b])).to.deep.equal(new Map([[a, `${map.prefix}new-a`], [b, `${map.prefix}new-b`]]));
        // Stable: the same call again, and inside a transaction, gives the same NIDs and creates nothing.
        expect(await map.assign(tx, [...asked].reverse()), map.name).to.deep.equal(got);
        expect(await storage.unitOfWork.transaction((t) => map.assign(t, asked)), map.name).to.deep.equal(got);
        // What assign created, insert refuses as existing.
        await rejects(map.insert(tx, `${map.prefix}new-a`), ConflictError);
        expect(await map.select(tx, `${map.prefix}new-a`)).to.equal(a);
      }
    });

    test('assign* with hostile strings: each its own NID, round-tripping exactly; lookalikes are not created', async ({ storage }) => {
      const tx = storage.unitOfWork.autocommit;
      for (const map of maps(storage)) {
        const strings = [...HOSTILE.map((s) => `${map.prefix}${s}`), long255(map.prefix)];
        const got = await map.assign(tx, shuffled(strings, 7));
        expect(got.size, map.name).to.equal(strings.length);
        expect(new Set(got.values()).size, `${map.name}: every string gets its own NID`).to.equal(strings.length);
        const back = await map.back(tx, [...got.values()]);
        for (const s of strings) {
          expect(await map.select(tx, s), `${map.name}: ${JSON.stringify(s.slice(0, 40))}`).to.equal(got.get(s));
          expect(back.get(got.get(s)!) === s, `${map.name}: ${JSON.stringify(s.slice(0, 40))} round-trips`).to.equal(true);
        }
        expect(await map.assign(tx, strings), `${map.name}: assigning again creates nothing`).to.deep.equal(got);
        const lookalikes = [`${map.prefix}1000`, `${map.prefix}underXscore`, `${map.prefix}x`, `${map.prefix}CASE`, long255(map.prefix).slice(0, -1)];
        expect((await map.bulkSelect(tx, lookalikes)).size, `${map.name}: lookalikes`).to.equal(0);
      }
    });

    test('assign* from concurrent callers with overlapping new strings in different orders: one NID per string, all callers agree', async ({ storage }) => {
      const rotated = <T>(values: readonly T[], by: number) => [...values.slice(by), ...values.slice(0, by)];
      for (const map of maps(storage)) {
        // Several rounds, each with strings no one has assigned yet. Whether two writers' inserts meet is a matter
        // of timing, so each round has six callers at once, half in autocommit and half in transactions, each
        // starting in another caller's part of the list (rotations) or walking it backwards; long strings (state
        // keys have no length limit; types stay under Matrix's 255 bytes) make each row's write take longer.
        const pad = map.name === 'state keys' ? 'k'.repeat(4000) : 't'.repeat(200);
        for (let round = 0; round < 6; round++) {
          const strings = Array.from({ length: 60 }, (_, i) => `${map.prefix}concurrent-${round}-${i}-${pad}`);
          const calls = round === 0
            ? [strings, [...strings].reverse(), shuffled(strings, 1), shuffled(strings.slice(10, 50), 2), rotated(strings, 30), strings.slice(0, 5)]
            : Array.from({ length: 6 }, (_, i) => (i === 5 ? [...strings].reverse() : rotated(strings, i * 10)));
          const settled = await Promise.allSettled(calls.map((c, i) => (i % 2 === 0
            ? map.assign(storage.unitOfWork.autocommit, c)
            : storage.unitOfWork.transaction((t) => map.assign(t, c)))));
          const failures = settled.flatMap((r, i) => (r.status === 'rejected' ? [`call ${i}: ${String(r.reason).slice(0, 200)}`] : []));
          expect(failures, `${map.name}, round ${round}: every concurrent call succeeds`).to.deep.equal([]);
          const results = settled.map((r) => (r as PromiseFulfilledResult<Map<string, number>>).value);
          const agreed = new Map<string, number>();
          for (const [i, got] of results.entries()) {
            expect(new Set(got.keys()), `${map.name}, round ${round}: call ${i} answers for its strings`).to.deep.equal(new Set(calls[i]));
            for (const [str, nid] of got) {
              if (!agreed.has(str)) agreed.set(str, nid);
              expect(nid, `${map.name}, round ${round}: ${str.slice(0, 40)} in call ${i}`).to.equal(agreed.get(str));
            }
          }
          expect(agreed.size).to.equal(strings.length);
          expect(new Set(agreed.values()).size, `${map.name}: one NID per string, none shared`).to.equal(strings.length);
          expect(await map.bulkSelect(storage.unitOfWork.autocommit, strings), `${map.name}: what is stored`).to.deep.equal(agreed);
          const back = await map.back(storage.unitOfWork.autocommit, [...agreed.values()]);
          expect(back.size, `${map.name}: every agreed NID maps back`).to.equal(strings.length);
        }
      }
    });

    test('assign* in a transaction: visible inside, kept on commit, gone on rollback (SQL)', async ({ storage }) => {
      const tx = storage.unitOfWork.autocommit;
      for (const map of maps(storage)) {
        const committed = await storage.unitOfWork.transaction(async (t) => {
          const got = await map.assign(t, [`${map.prefix}committed`]);
          expect(await map.select(t, `${map.prefix}committed`)).to.equal(got.get(`${map.prefix}committed`));
          return got;
        });
        expect(await map.bulkSelect(tx, [`${map.prefix}committed`]), map.name).to.deep.equal(committed);
        await rolledBack(storage, async (t) => {
          const got = await map.assign(t, [`${map.prefix}rolled-back`, `${map.prefix}committed`]);
          expect(got.get(`${map.prefix}committed`)).to.equal(committed.get(`${map.prefix}committed`));
          expect((await map.bulkSelect(t, [`${map.prefix}rolled-back`])).size, 'visible inside the transaction').to.equal(1);
        });
        if (storage.unitOfWork.atomicTransactions) {
          expect((await map.bulkSelect(tx, [`${map.prefix}rolled-back`])).size, `${map.name}: rolled back`).to.equal(0);
          await rejects(map.select(tx, `${map.prefix}rolled-back`), NotFoundError);
          // Assigned again afterwards, it gets a NID that works (whatever its number).
          const again = await map.assign(tx, [`${map.prefix}rolled-back`]);
          expect(await map.select(tx, `${map.prefix}rolled-back`)).to.equal(again.get(`${map.prefix}rolled-back`));
        }
        // Else (Cosmos DB, no rollback): a mapping created before the failure stays, which is harmless (mappings
        // never change); nothing to assert about a rollback.
        expect(await map.bulkSelect(tx, [`${map.prefix}committed`]), map.name).to.deep.equal(committed);
      }
    });
  });

  group(fw, driver, 'Table: state_block (batch writes)', (test) => {
    test('bulkInsertStateBlocks: NIDs in input order; the same entries (in any order, repeated in the call) get the same NID', async ({ storage }) => {
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      expect(await blocks.bulkInsertStateBlocks(tx, [])).to.deep.equal([]);
      expect(await storage.unitOfWork.transaction((t) => blocks.bulkInsertStateBlocks(t, []))).to.deep.equal([]);
      const a = [entry(1, 1, 10), entry(5, 2, 11), entry(5, 3, 12)];
      const aShuffled = [entry(5, 3, 12), entry(1, 1, 10), entry(5, 2, 11)];
      const b = [entry(1, 1, 10), entry(5, 2, 13)];
      const c = [entry(7, 1, 0)];
      const nids = await blocks.bulkInsertStateBlocks(tx, [a, b, aShuffled, [], c, b, []]);
      expect(nids).to.have.length(7);
      for (const nid of nids) expect(isPositive(nid), `NID ${nid}`).to.equal(true);
      const [na, nb, na2, empty, nc, nb2, empty2] = nids;
      expect(na2).to.equal(na);
      expect(nb2).to.equal(nb);
      expect(empty2).to.equal(empty);
      expect(new Set([na, nb, empty, nc]).size, 'different entries, different NIDs').to.equal(4);
      const lists = await blocks.bulkSelectStateBlockEntries(tx, [na!, nb!, empty!, nc!]);
      expect(lists.map((l) => l.stateBlockNID)).to.deep.equal(ascending([na!, nb!, empty!, nc!]));
      const byNID = new Map(lists.map((l) => [l.stateBlockNID, triples(l.stateEntries)]));
      expect(byNID.get(na!)).to.deep.equal([[1, 1, 10], [5, 2, 11], [5, 3, 12]]);
      expect(byNID.get(nb!)).to.deep.equal([[1, 1, 10], [5, 2, 13]]);
      expect(byNID.get(empty!)).to.deep.equal([]);
      expect(byNID.get(nc!)).to.deep.equal([[7, 1, 0]]);
      // Again: the same NIDs, in the new call's order.
      expect(await blocks.bulkInsertStateBlocks(tx, [c, aShuffled, b])).to.deep.equal([nc, na, nb]);
    });

    test('bulkInsertStateBlocks and insertStateBlock agree: the same entries get the same NID whichever stored them first', async ({ storage }) => {
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      const big = 2 ** 40 + 7;
      const contents: StateEntry[][] = [
        [entry(1, 1, 10), entry(5, 2, 11)],
        [entry(1, 10, 1), entry(5, 11, 2)],
        [entry(5, 70_000, big), entry(65_536, 2, 9)],
        [entry(1, 1, 10), entry(5, 2, 0)],
        [],
      ];
      // Single first for the first half, bulk first for the rest.
      const single: StateBlockNID[] = [];
      for (const c of contents.slice(0, 2)) single.push(await blocks.insertStateBlock(tx, c));
      const bulk = await blocks.bulkInsertStateBlocks(tx, contents.map((c) => [...c].reverse()));
      for (const c of contents.slice(2)) single.push(await blocks.insertStateBlock(tx, c));
      expect(bulk).to.deep.equal(single);
      expect(new Set(bulk).size).to.equal(contents.length);
      // An entry repeated within a block counts once, as insertStateBlock drops the repeat.
      const repeated = await blocks.bulkInsertStateBlocks(tx, [[entry(5, 2, 11), entry(1, 1, 10), entry(5, 2, 11)]]);
      expect(repeated).to.deep.equal([bulk[0]]);
      const lists = await blocks.bulkSelectStateBlockEntries(tx, bulk);
      for (const l of lists) expect(triples(l.stateEntries)).to.deep.equal(triples(contents[bulk.indexOf(l.stateBlockNID)]!));
    });

    test('bulkInsertStateBlocks refuses a block giving one tuple two events with an InvalidInputError (a rejected promise)', async ({ storage }) => {
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      const good = [entry(1, 1, 10)];
      await rejects(blocks.bulkInsertStateBlocks(tx, [good, [entry(5, 2, 11), entry(5, 2, 12)]]), InvalidInputError);
      await rejects(blocks.bulkInsertStateBlocks(tx, [[entry(5, 2, 0), entry(5, 2, 11)], good]), InvalidInputError);
      await rejects(storage.unitOfWork.transaction((t) => blocks.bulkInsertStateBlocks(t, [[entry(3, 1, 1), entry(3, 1, 2)]])), InvalidInputError);
      // The store is still usable, and the valid block stores as usual.
      const [nid] = await blocks.bulkInsertStateBlocks(tx, [good]);
      expect(await blocks.insertStateBlock(tx, good)).to.equal(nid);
    });

    test('bulkInsertStateBlocks in a transaction: visible inside, kept on commit, gone on rollback (SQL)', async ({ storage }) => {
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      const [kept] = await storage.unitOfWork.transaction(async (t) => {
        const nids = await blocks.bulkInsertStateBlocks(t, [[entry(1, 1, 1)]]);
        expect(await blocks.bulkSelectStateBlockEntries(t, nids)).to.have.length(1);
        return nids;
      });
      expect(triples((await blocks.bulkSelectStateBlockEntries(tx, [kept!]))[0]!.stateEntries)).to.deep.equal([[1, 1, 1]]);
      let gone: StateBlockNID[] = [];
      await rolledBack(storage, async (t) => {
        gone = await blocks.bulkInsertStateBlocks(t, [[entry(2, 1, 2)], [entry(1, 1, 1)], [entry(3, 1, 3)]]);
        expect(gone[1]).to.equal(kept);
        expect(await blocks.bulkSelectStateBlockEntries(t, gone), 'visible inside the transaction').to.have.length(3);
      });
      if (storage.unitOfWork.atomicTransactions) {
        await rejects(blocks.bulkSelectStateBlockEntries(tx, [gone[0]!]), MissingStateError);
        await rejects(blocks.bulkSelectStateBlockEntries(tx, [gone[2]!]), MissingStateError);
        // Stored again afterwards, the blocks read back right (whatever NIDs they get).
        const again = await blocks.bulkInsertStateBlocks(tx, [[entry(2, 1, 2)], [entry(3, 1, 3)]]);
        const lists = await blocks.bulkSelectStateBlockEntries(tx, again);
        expect(lists.map((l) => triples(l.stateEntries)).sort()).to.deep.equal([[[2, 1, 2]], [[3, 1, 3]]]);
      }
      // Else (Cosmos DB, no rollback): the blocks written before the failure stay (content-addressed, so harmless).
      expect(triples((await blocks.bulkSelectStateBlockEntries(tx, [kept!]))[0]!.stateEntries)).to.deep.equal([[1, 1, 1]]);
    });
  });

  group(fw, driver, 'Table: state_snapshot (batch writes)', (test) => {
    const makeBlocks = async (storage: Storage, n: number) =>
      storage.tables.stateBlocks.bulkInsertStateBlocks(storage.unitOfWork.autocommit, Array.from({ length: n }, (_, i) => [entry(1, 1, 1000 + i)]));
    const ROOM_A = asRoomNID(1);
    const ROOM_B = asRoomNID(2);

    test('bulkInsertStates: NIDs in input order; the same ordered list gets the same NID, another order another NID', async ({ storage }) => {
      const snaps = storage.tables.stateSnapshots;
      const tx = storage.unitOfWork.autocommit;
      expect(await snaps.bulkInsertStates(tx, ROOM_A, [])).to.deep.equal([]);
      expect(await storage.unitOfWork.transaction((t) => snaps.bulkInsertStates(t, ROOM_A, []))).to.deep.equal([]);
      const [b1, b2, b3] = await makeBlocks(storage, 3) as [StateBlockNID, StateBlockNID, StateBlockNID];
      const lists = [[b1, b2, b3], [b3, b2, b1], [b1, b2, b3], [], [b1, b1], [b1], [], [b3, b2, b1]];
      const nids = await snaps.bulkInsertStates(tx, ROOM_A, lists);
      expect(nids).to.have.length(lists.length);
      for (const nid of nids) expect(isPositive(nid), `NID ${nid}`).to.equal(true);
      expect(nids[2]).to.equal(nids[0]);
      expect(nids[6]).to.equal(nids[3]);
      expect(nids[7]).to.equal(nids[1]);
      expect(new Set(nids).size, 'five distinct lists').to.equal(5);
      const read = await snaps.bulkSelectStateBlockNIDs(tx, nids);
      expect(read.map((l) => l.stateSnapshotNID)).to.deep.equal(ascending([...new Set(nids)]));
      for (const [i, nid] of nids.entries()) expect(read.find((l) => l.stateSnapshotNID === nid)!.stateBlockNIDs, `list ${i}`).to.deep.equal(lists[i]);
      // The hash ignores the room: another room's call finds the same snapshots.
      expect(await snaps.bulkInsertStates(tx, ROOM_B, [[b1], [b3, b2, b1]])).to.deep.equal([nids[5], nids[1]]);
    });

    test('bulkInsertStates and insertState agree: the same list gets the same NID whichever stored it first', async ({ storage }) => {
      const snaps = storage.tables.stateSnapshots;
      const tx = storage.unitOfWork.autocommit;
      const blocks = await makeBlocks(storage, 64);
      const lists: StateBlockNID[][] = [[blocks[0]!, blocks[1]!], [blocks[1]!, blocks[0]!], blocks.slice(0, 64), [], [blocks[2]!, blocks[2]!, blocks[3]!]];
      const single = [await snaps.insertState(tx, ROOM_A, lists[0]!), await snaps.insertState(tx, ROOM_B, lists[1]!)];
      const bulk = await storage.unitOfWork.transaction((t) => snaps.bulkInsertStates(t, ROOM_A, lists));
      single.push(await snaps.insertState(tx, ROOM_A, lists[2]!), await snaps.insertState(tx, ROOM_B, lists[3]!), await snaps.insertState(tx, ROOM_A, lists[4]!));
      expect(bulk).to.deep.equal(single);
      expect(new Set(bulk).size).to.equal(lists.length);
      const [full] = await snaps.bulkSelectStateBlockNIDs(tx, [bulk[2]!]);
      expect(full!.stateBlockNIDs).to.deep.equal(blocks.slice(0, 64));
    });

    test('bulkInsertStates refuses a list longer than 64 blocks with an InvalidInputError (a rejected promise)', async ({ storage }) => {
      const snaps = storage.tables.stateSnapshots;
      const tx = storage.unitOfWork.autocommit;
      const blocks = await makeBlocks(storage, 65);
      await rejects(snaps.bulkInsertStates(tx, ROOM_A, [[blocks[0]!], blocks]), InvalidInputError);
      await rejects(storage.unitOfWork.transaction((t) => snaps.bulkInsertStates(t, ROOM_A, [[...blocks.slice(0, 64), blocks[0]!]])), InvalidInputError);
      const [ok] = await snaps.bulkInsertStates(tx, ROOM_A, [blocks.slice(0, 64)]);
      expect(await snaps.insertState(tx, ROOM_A, blocks.slice(0, 64))).to.equal(ok);
    });

    test('bulkInsertStates in a transaction: visible inside, kept on commit, gone on rollback (SQL)', async ({ storage }) => {
      const snaps = storage.tables.stateSnapshots;
      const tx = storage.unitOfWork.autocommit;
      const [b1, b2] = await makeBlocks(storage, 2) as [StateBlockNID, StateBlockNID];
      const [kept] = await storage.unitOfWork.transaction((t) => snaps.bulkInsertStates(t, ROOM_A, [[b1]]));
      let gone: number[] = [];
      await rolledBack(storage, async (t) => {
        gone = await snaps.bulkInsertStates(t, ROOM_A, [[b2, b1], [b1]]);
        expect(gone[1]).to.equal(kept);
        expect(await snaps.bulkSelectStateBlockNIDs(t, [asStateSnapshotNID(gone[0]!)]), 'visible inside the transaction').to.have.length(1);
      });
      if (storage.unitOfWork.atomicTransactions) {
        await rejects(snaps.bulkSelectStateBlockNIDs(tx, [asStateSnapshotNID(gone[0]!)]), MissingStateError);
        const [again] = await snaps.bulkInsertStates(tx, ROOM_A, [[b2, b1]]);
        expect((await snaps.bulkSelectStateBlockNIDs(tx, [again!]))[0]!.stateBlockNIDs).to.deep.equal([b2, b1]);
      }
      // Else (Cosmos DB, no rollback): the snapshots written before the failure stay (content-addressed, so harmless).
      expect(await snaps.bulkSelectStateBlockNIDs(tx, [kept!])).to.deep.equal([{ stateSnapshotNID: kept, stateBlockNIDs: [b1] }]);
    });
  });
}

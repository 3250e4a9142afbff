import { expect } from 'chai';
import type { Storage } from '../../src/index.js';
import { InvalidInputError, MissingStateError, NotFoundError } from '../../src/types/errors.js';
import { asRoomNID, asStateBlockNID, asStateSnapshotNID, type StateBlockNID, type StateSnapshotNID } from '../../src/types/nids.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { entry, rejects, triples } from './fixtures.js';
import { contentKey, encodeBlockList, encodeStateBlock } from '../../src/storage/shared/state-codec.js';
import { dumpOf } from '../../src/io/copy.js';
import type { StateEntry } from '../../src/types/state.js';

/** The first pair, by search, of values whose contents' 32-bit content keys collide (about 2^16 tries). */
function firstCollision<T>(make: (i: number) => T, bytes: (t: T) => Uint8Array): [T, T] {
  const seen = new Map<number, T>();
  for (let i = 1; ; i++) {
    const t = make(i);
    const key = contentKey(bytes(t));
    const earlier = seen.get(key);
    if (earlier !== undefined) return [earlier, t];
    seen.set(key, t);
  }
}
let blockPair: [StateEntry, StateEntry] | undefined;
const collidingBlocks = () => (blockPair ??= firstCollision((i) => entry(9, 9, i), (e) => encodeStateBlock([e]).bytes));
let listPair: [StateBlockNID[], StateBlockNID[]] | undefined;
const collidingLists = () => (listPair ??= firstCollision((i) => [asStateBlockNID(1 + (i % 997)), asStateBlockNID(1 + Math.floor(i / 997))], encodeBlockList));

const ROOM_A = asRoomNID(1);
const ROOM_B = asRoomNID(2);
const missingBlock = (...known: number[]) => asStateBlockNID(Math.max(0, ...known) + 1_000_000);
const missingSnapshot = (...known: number[]) => asStateSnapshotNID(Math.max(0, ...known) + 1_000_000);
const isPositive = (nid: number) => Number.isSafeInteger(nid) && nid > 0;

export function stateTableTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Table: state_block', (test) => {
    test('the same entries in any order get the same block NID', async ({ storage }) => {
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      const a = await blocks.insertStateBlock(tx, [entry(1, 1, 10), entry(5, 2, 11), entry(5, 3, 12), entry(2, 1, 13)]);
      const b = await blocks.insertStateBlock(tx, [entry(5, 3, 12), entry(2, 1, 13), entry(1, 1, 10), entry(5, 2, 11)]);
      const c = await storage.unitOfWork.transaction((inTx) => blocks.insertStateBlock(inTx, [entry(5, 2, 11), entry(5, 3, 12), entry(2, 1, 13), entry(1, 1, 10)]));
      expect(isPositive(a), `NID ${a}`).to.equal(true);
      expect(b).to.equal(a);
      expect(c).to.equal(a);
      // Stored once: reading it back gives the entries once.
      const [list] = await blocks.bulkSelectStateBlockEntries(tx, [a]);
      expect(triples(list!.stateEntries)).to.deep.equal([[1, 1, 10], [2, 1, 13], [5, 2, 11], [5, 3, 12]]);
    });

    test('an entry repeated in a block counts once, as Dendrite drops the repeat; a tuple given two events is refused', async ({ storage }) => {
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      const once = await blocks.insertStateBlock(tx, [entry(1, 1, 10), entry(5, 2, 11)]);
      const repeated = await blocks.insertStateBlock(tx, [entry(5, 2, 11), entry(1, 1, 10), entry(5, 2, 11), entry(1, 1, 10)]);
      expect(repeated).to.equal(once);
      const [list] = await blocks.bulkSelectStateBlockEntries(tx, [repeated]);
      expect(triples(list!.stateEntries)).to.deep.equal([[1, 1, 10], [5, 2, 11]]);
      await rejects(blocks.insertStateBlock(tx, [entry(1, 1, 10), entry(5, 2, 11), entry(5, 2, 12)]), InvalidInputError, /\(5, 2\) is given events 11 and 12/);
    });

    test('different entries get different block NIDs (another event, another tuple, a subset, a tombstone)', async ({ storage }) => {
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      const nids = [
        await blocks.insertStateBlock(tx, [entry(1, 1, 10), entry(5, 2, 11)]),
        await blocks.insertStateBlock(tx, [entry(1, 1, 10), entry(5, 2, 12)]),
        await blocks.insertStateBlock(tx, [entry(1, 1, 10), entry(5, 3, 11)]),
        await blocks.insertStateBlock(tx, [entry(1, 1, 10), entry(6, 2, 11)]),
        await blocks.insertStateBlock(tx, [entry(1, 1, 10)]),
        await blocks.insertStateBlock(tx, [entry(1, 1, 10), entry(5, 2, 0)]),
        await blocks.insertStateBlock(tx, [entry(1, 1, 10), entry(5, 2, 11), entry(5, 3, 12)]),
        // Same numbers, moved between fields: an encoding that only collects the numbers would collide here.
        await blocks.insertStateBlock(tx, [entry(1, 10, 1), entry(5, 11, 2)]),
        await blocks.insertStateBlock(tx, [entry(10, 1, 1), entry(11, 5, 2)]),
        await blocks.insertStateBlock(tx, [entry(300, 1, 10)]),
        await blocks.insertStateBlock(tx, [entry(1, 300, 10)]),
      ];
      for (const nid of nids) expect(isPositive(nid), `NID ${nid}`).to.equal(true);
      expect(new Set(nids).size).to.equal(nids.length);
      const lists = await blocks.bulkSelectStateBlockEntries(tx, nids);
      expect(lists).to.have.length(nids.length);
      expect(triples(lists.find((l) => l.stateBlockNID === nids[7])!.stateEntries)).to.deep.equal([[1, 10, 1], [5, 11, 2]]);
      expect(triples(lists.find((l) => l.stateBlockNID === nids[10])!.stateEntries)).to.deep.equal([[1, 300, 10]]);
    });

    test('a block reads back sorted by (type, state key), with large NIDs intact', async ({ storage }) => {
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      const big = 2 ** 40 + 7;
      const nid = await blocks.insertStateBlock(tx, [entry(7, 1, 30), entry(5, 70_000, big), entry(1, 1, 1), entry(5, 3, 20), entry(65_536, 2, 9)]);
      const [list] = await blocks.bulkSelectStateBlockEntries(tx, [nid]);
      expect(list!.stateBlockNID).to.equal(nid);
      expect(triples(list!.stateEntries)).to.deep.equal([[1, 1, 1], [5, 3, 20], [5, 70_000, big], [7, 1, 30], [65_536, 2, 9]]);
    });

    test('a tuple given two events within one block is an InvalidInputError', async ({ storage }) => {
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      // Like every table error, it must reject the returned promise, not throw before returning one.
      await rejects(blocks.insertStateBlock(tx, [entry(1, 1, 10), entry(5, 2, 11), entry(1, 1, 12)]), InvalidInputError);
      await rejects(blocks.insertStateBlock(tx, [entry(5, 2, 0), entry(5, 2, 11)]), InvalidInputError);
      await rejects(storage.unitOfWork.transaction((inTx) => blocks.insertStateBlock(inTx, [entry(3, 1, 1), entry(3, 1, 2)])), InvalidInputError);
    });

    test('tombstones (event NID 0) are stored and returned, and an empty block is a block', async ({ storage }) => {
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      const withTombstone = await blocks.insertStateBlock(tx, [entry(5, 2, 0), entry(1, 1, 10), entry(5, 3, 0)]);
      const empty = await blocks.insertStateBlock(tx, []);
      expect(isPositive(empty), `NID ${empty}`).to.equal(true);
      expect(empty).to.not.equal(withTombstone);
      expect(await blocks.insertStateBlock(tx, [])).to.equal(empty);
      const lists = await blocks.bulkSelectStateBlockEntries(tx, [withTombstone, empty]);
      const byNID = new Map(lists.map((l) => [l.stateBlockNID, triples(l.stateEntries)]));
      expect(byNID.get(withTombstone)).to.deep.equal([[1, 1, 10], [5, 2, 0], [5, 3, 0]]);
      expect(byNID.get(empty)).to.deep.equal([]);
    });

    test('bulkSelectStateBlockEntries is ordered by block NID ascending, not by input order', async ({ storage }) => {
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      const contents = [
        [entry(9, 9, 90)], [entry(1, 1, 10)], [entry(5, 2, 50), entry(5, 3, 51)], [entry(2, 1, 20)],
      ];
      const nids: StateBlockNID[] = [];
      for (const c of contents) nids.push(await blocks.insertStateBlock(tx, c));
      const asked = [nids[2]!, nids[0]!, nids[3]!, nids[1]!];
      const lists = await blocks.bulkSelectStateBlockEntries(tx, asked);
      const ascending = [...nids].sort((a, b) => a - b);
      expect(lists.map((l) => l.stateBlockNID)).to.deep.equal(ascending);
      for (const l of lists) expect(triples(l.stateEntries)).to.deep.equal(triples(contents[nids.indexOf(l.stateBlockNID)]!));
      expect((await blocks.bulkSelectStateBlockEntries(tx, [...nids].reverse())).map((l) => l.stateBlockNID)).to.deep.equal(ascending);
      expect(await blocks.bulkSelectStateBlockEntries(tx, [])).to.deep.equal([]);
    });

    test('bulkSelectEncodedStateBlocks gives each block in the shared encoding, by NID ascending; MissingStateError if any is missing', async ({ storage }) => {
      // Optional in the interface (the state layer falls back to entries); a driver that has it must get it right.
      // A driver without it opts out of this case, with its reason.
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      expect(blocks.bulkSelectEncodedStateBlocks, 'the driver implements bulkSelectEncodedStateBlocks').to.be.a('function');
      const contents = [[entry(9, 9, 2 ** 40 + 1), entry(1, 1, 10)], [entry(5, 2, 0)], []];
      const nids: StateBlockNID[] = [];
      for (const c of contents) nids.push(await blocks.insertStateBlock(tx, c));
      const rows = await blocks.bulkSelectEncodedStateBlocks!(tx, [...nids].reverse());
      expect(rows.map((r) => r.stateBlockNID)).to.deep.equal([...nids].sort((a, b) => a - b));
      for (const r of rows) {
        expect(Buffer.from(r.encoded).equals(encodeStateBlock(contents[nids.indexOf(r.stateBlockNID)]!).bytes), `block ${r.stateBlockNID}`).to.equal(true);
      }
      expect(await blocks.bulkSelectEncodedStateBlocks!(tx, [])).to.deep.equal([]);
      await rejects(blocks.bulkSelectEncodedStateBlocks!(tx, [nids[0]!, missingBlock(...nids)]), MissingStateError);
    });

    test('blocks whose 32-bit content keys collide are stored apart and each found again, one at a time or in one bulk call', async ({ storage }) => {
      // The SQL drivers key blocks by 32 bits of SHA-256 and probe past a collision (content-keys.ts): these two
      // one-tuple blocks share a key. Stored in either order, alone or together, each keeps its own NID.
      const [a, b] = collidingBlocks();
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      const bulk = await blocks.bulkInsertStateBlocks(tx, [[b], [a], [b]]);
      expect(bulk[0]).to.equal(bulk[2]);
      expect(bulk[0]).to.not.equal(bulk[1]);
      // Found again past the collision without reserving a NID.
      const counter = async () => (await dumpOf(storage, 'store').counters()).state_block_nid;
      const before = await counter();
      expect(await blocks.insertStateBlock(tx, [a])).to.equal(bulk[1]);
      expect(await blocks.insertStateBlock(tx, [b])).to.equal(bulk[0]);
      expect(await blocks.bulkInsertStateBlocks(tx, [[a], [b]])).to.deep.equal([bulk[1], bulk[0]]);
      expect(await counter()).to.equal(before);
      const lists = await blocks.bulkSelectStateBlockEntries(tx, [bulk[0]!, bulk[1]!]);
      expect(lists.find((l) => l.stateBlockNID === bulk[1])!.stateEntries).to.deep.equal([a]);
      expect(lists.find((l) => l.stateBlockNID === bulk[0])!.stateEntries).to.deep.equal([b]);
    });

    test('bulkSelectStateBlockEntries is a MissingStateError if any block is missing', async ({ storage }) => {
      const blocks = storage.tables.stateBlocks;
      const tx = storage.unitOfWork.autocommit;
      const a = await blocks.insertStateBlock(tx, [entry(1, 1, 10)]);
      await rejects(blocks.bulkSelectStateBlockEntries(tx, [missingBlock(a)]), MissingStateError);
      await rejects(blocks.bulkSelectStateBlockEntries(tx, [a, missingBlock(a)]), MissingStateError);
      await rejects(blocks.bulkSelectStateBlockEntries(tx, [missingBlock(a), a]), MissingStateError);
    });
  });

  group(fw, driver, 'Table: state_snapshot', (test) => {
    /** Distinct real blocks to build snapshots from. */
    const makeBlocks = async (storage: Storage, n: number) => {
      const out: StateBlockNID[] = [];
      for (let i = 0; i < n; i++) out.push(await storage.tables.stateBlocks.insertStateBlock(storage.unitOfWork.autocommit, [entry(1, 1, 1000 + i)]));
      return out;
    };

    test('the same ordered block list gets the same snapshot NID, even from another room', async ({ storage }) => {
      const snaps = storage.tables.stateSnapshots;
      const tx = storage.unitOfWork.autocommit;
      const [b1, b2, b3] = await makeBlocks(storage, 3);
      const a = await snaps.insertState(tx, ROOM_A, [b1!, b2!, b3!]);
      expect(isPositive(a), `NID ${a}`).to.equal(true);
      expect(await snaps.insertState(tx, ROOM_A, [b1!, b2!, b3!])).to.equal(a);
      expect(await storage.unitOfWork.transaction((inTx) => snaps.insertState(inTx, ROOM_B, [b1!, b2!, b3!]))).to.equal(a);
      expect(await snaps.bulkSelectStateBlockNIDs(tx, [a])).to.deep.equal([{ stateSnapshotNID: a, stateBlockNIDs: [b1, b2, b3] }]);
    });

    test('the same blocks in another order are another snapshot, and each reads back in its own order', async ({ storage }) => {
      const snaps = storage.tables.stateSnapshots;
      const tx = storage.unitOfWork.autocommit;
      const [b1, b2, b3] = await makeBlocks(storage, 3);
      const orders = [[b1!, b2!, b3!], [b3!, b2!, b1!], [b2!, b1!, b3!], [b1!, b2!], [b2!, b1!], [b3!]];
      const nids: StateSnapshotNID[] = [];
      for (const order of orders) nids.push(await snaps.insertState(tx, ROOM_A, order));
      expect(new Set(nids).size).to.equal(orders.length);
      const lists = await snaps.bulkSelectStateBlockNIDs(tx, nids);
      for (const [i, nid] of nids.entries()) {
        expect(lists.find((l) => l.stateSnapshotNID === nid)!.stateBlockNIDs, `order ${i}`).to.deep.equal(orders[i]);
      }
    });

    test('a block may appear more than once in a list, which is kept as given', async ({ storage }) => {
      const snaps = storage.tables.stateSnapshots;
      const tx = storage.unitOfWork.autocommit;
      const [b1, b2] = await makeBlocks(storage, 2);
      const plain = await snaps.insertState(tx, ROOM_A, [b1!, b2!]);
      const repeated = await snaps.insertState(tx, ROOM_A, [b1!, b2!, b1!]);
      const twice = await snaps.insertState(tx, ROOM_A, [b1!, b1!]);
      const once = await snaps.insertState(tx, ROOM_A, [b1!]);
      expect(new Set([plain, repeated, twice, once]).size).to.equal(4);
      expect(await snaps.insertState(tx, ROOM_B, [b1!, b2!, b1!])).to.equal(repeated);
      const lists = await snaps.bulkSelectStateBlockNIDs(tx, [repeated, twice]);
      expect(lists.find((l) => l.stateSnapshotNID === repeated)!.stateBlockNIDs).to.deep.equal([b1, b2, b1]);
      expect(lists.find((l) => l.stateSnapshotNID === twice)!.stateBlockNIDs).to.deep.equal([b1, b1]);
    });

    test('the empty block list is one snapshot, shared by every room', async ({ storage }) => {
      const snaps = storage.tables.stateSnapshots;
      const tx = storage.unitOfWork.autocommit;
      const [b1] = await makeBlocks(storage, 1);
      const a = await snaps.insertState(tx, ROOM_A, []);
      const b = await snaps.insertState(tx, ROOM_B, []);
      const c = await snaps.insertState(tx, asRoomNID(3), []);
      expect(isPositive(a), `NID ${a}`).to.equal(true);
      expect(b).to.equal(a);
      expect(c).to.equal(a);
      expect(await snaps.insertState(tx, ROOM_A, [b1!])).to.not.equal(a);
      expect(await snaps.bulkSelectStateBlockNIDs(tx, [a])).to.deep.equal([{ stateSnapshotNID: a, stateBlockNIDs: [] }]);
    });

    test('up to 64 blocks are accepted; more is an InvalidInputError', async ({ storage }) => {
      const snaps = storage.tables.stateSnapshots;
      const tx = storage.unitOfWork.autocommit;
      const blocks = await makeBlocks(storage, 65);
      const full = await snaps.insertState(tx, ROOM_A, blocks.slice(0, 64));
      expect(isPositive(full), `NID ${full}`).to.equal(true);
      const [list] = await snaps.bulkSelectStateBlockNIDs(tx, [full]);
      expect(list!.stateBlockNIDs).to.deep.equal(blocks.slice(0, 64));
      await rejects(snaps.insertState(tx, ROOM_A, blocks), InvalidInputError);
      await rejects(snaps.insertState(tx, ROOM_A, [...blocks.slice(0, 64), blocks[0]!]), InvalidInputError);
      await rejects(storage.unitOfWork.transaction((inTx) => snaps.insertState(inTx, ROOM_A, blocks)), InvalidInputError);
    });

    test('bulkSelectStateBlockNIDs is ordered by snapshot NID ascending, whatever the input order', async ({ storage }) => {
      const snaps = storage.tables.stateSnapshots;
      const tx = storage.unitOfWork.autocommit;
      const [b1, b2, b3] = await makeBlocks(storage, 3);
      const orders = [[b3!, b1!], [b2!], [b1!, b2!, b3!], []];
      const nids: StateSnapshotNID[] = [];
      for (const order of orders) nids.push(await snaps.insertState(tx, ROOM_A, order));
      const ascending = [...nids].sort((a, b) => a - b);
      const lists = await snaps.bulkSelectStateBlockNIDs(tx, [nids[1]!, nids[3]!, nids[0]!, nids[2]!]);
      expect(lists.map((l) => l.stateSnapshotNID)).to.deep.equal(ascending);
      for (const l of lists) expect(l.stateBlockNIDs).to.deep.equal(orders[nids.indexOf(l.stateSnapshotNID)]);
      expect(await snaps.bulkSelectStateBlockNIDs(tx, [])).to.deep.equal([]);
    });

    test('block lists whose 32-bit content keys collide are stored apart and each found again, one at a time or in one bulk call', async ({ storage }) => {
      const snaps = storage.tables.stateSnapshots;
      const tx = storage.unitOfWork.autocommit;
      const [x, y] = collidingLists();
      const bulk = await snaps.bulkInsertStates(tx, ROOM_A, [y, x, y]);
      expect(bulk[0]).to.equal(bulk[2]);
      expect(bulk[0]).to.not.equal(bulk[1]);
      expect(await snaps.insertState(tx, ROOM_B, x)).to.equal(bulk[1]);
      expect(await snaps.insertState(tx, ROOM_A, y)).to.equal(bulk[0]);
      const lists = await snaps.bulkSelectStateBlockNIDs(tx, [bulk[0]!, bulk[1]!]);
      expect(lists.find((l) => l.stateSnapshotNID === bulk[1])!.stateBlockNIDs).to.deep.equal(x);
      expect(lists.find((l) => l.stateSnapshotNID === bulk[0])!.stateBlockNIDs).to.deep.equal(y);
    });

    test('bulkSelectStateBlockNIDs is a MissingStateError if any snapshot is missing', async ({ storage }) => {
      const snaps = storage.tables.stateSnapshots;
      const tx = storage.unitOfWork.autocommit;
      const [b1] = await makeBlocks(storage, 1);
      const a = await snaps.insertState(tx, ROOM_A, [b1!]);
      await rejects(snaps.bulkSelectStateBlockNIDs(tx, [missingSnapshot(a)]), MissingStateError);
      await rejects(snaps.bulkSelectStateBlockNIDs(tx, [a, missingSnapshot(a)]), MissingStateError);
      await rejects(snaps.bulkSelectStateBlockNIDs(tx, [missingSnapshot(a), a]), MissingStateError);
    });

    test('selectStateBlockNIDsAtEvent and selectCurrentStateBlockNIDs read the snapshot with its ordered blocks', async ({ storage }) => {
      const t = storage.tables;
      const tx = storage.unitOfWork.autocommit;
      const blocks = [await t.stateBlocks.insertStateBlock(tx, [entry(5, 9, 30)]), await t.stateBlocks.insertStateBlock(tx, [entry(1, 1, 10)])];
      const snapshot = await t.stateSnapshots.insertState(tx, ROOM_A, blocks);
      const roomNID = await t.rooms.insertRoomNID(tx, '!snap:example.org', '10');
      const eventNID = await t.events.reserveEventNID(tx);
      await t.events.insertEvent(tx, {
        eventNID, roomNID, eventTypeNID: 5 as never, eventStateKeyNID: 9 as never, eventID: '$snap', authEventNIDs: [], depth: 1, isRejected: false,
      });
      // Before the state is known: snapshot 0, no blocks.
      expect(await t.stateSnapshots.selectStateBlockNIDsAtEvent(tx, '$snap')).to.deep.equal({ stateSnapshotNID: 0, stateBlockNIDs: [] });
      expect(await t.stateSnapshots.selectCurrentStateBlockNIDs(tx, '!snap:example.org')).to.deep.equal({ stateSnapshotNID: 0, stateBlockNIDs: [] });
      await t.events.updateEventState(tx, eventNID, snapshot);
      await storage.unitOfWork.transaction(async (inTx) => {
        const latest = await t.rooms.selectLatestEventsNIDsForUpdate(inTx, roomNID);
        await t.rooms.updateLatestEventNIDs(inTx, roomNID, [eventNID], latest.lastEventSentNID, snapshot, latest.version);
      });
      expect(await t.stateSnapshots.selectStateBlockNIDsAtEvent(tx, '$snap')).to.deep.equal({ stateSnapshotNID: snapshot, stateBlockNIDs: blocks });
      expect(await t.stateSnapshots.selectCurrentStateBlockNIDs(tx, '!snap:example.org')).to.deep.equal({ stateSnapshotNID: snapshot, stateBlockNIDs: blocks });
      await rejects(t.stateSnapshots.selectStateBlockNIDsAtEvent(tx, '$nope'), NotFoundError);
      await rejects(t.stateSnapshots.selectCurrentStateBlockNIDs(tx, '!nope:example.org'), NotFoundError);
    });
  });
}

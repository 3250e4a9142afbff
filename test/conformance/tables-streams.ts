import { expect } from 'chai';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { fulfilled, HOSTILE_IDS, HOSTILE_USERS, parallel } from './keys-fixtures.js';

const ALICE = '@alice:example.org';
/** When the table tests' messages were sent (retention is tested with its own times). */
const SENT = 1_700_000_000_000;
const BOB = '@bob:example.org';

/** Every contract of the send-to-device, partition offsets and federation blacklist tables. */
export function streamTableTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Table: send_to_device', (test) => {
    test('insertSendToDeviceMessage returns increasing positions across users; select returns (from, to] oldest first', async ({ storage }) => {
      const t = storage.tables.sendToDevice;
      const tx = storage.unitOfWork.autocommit;
      const p1 = await t.insertSendToDeviceMessage(tx, ALICE, 'D', '{"n":1}', SENT);
      const p2 = await t.insertSendToDeviceMessage(tx, BOB, 'D', '{"bob":1}', SENT);
      const p3 = await storage.unitOfWork.transaction((inTx) => t.insertSendToDeviceMessage(inTx, ALICE, 'D', '{"n":2}', SENT));
      const p4 = await t.insertSendToDeviceMessage(tx, ALICE, 'E', '{"other device":1}', SENT);
      const p5 = await t.insertSendToDeviceMessage(tx, ALICE, 'D', '{"n":3}', SENT);
      expect(p1).to.be.greaterThan(0);
      for (const [a, b] of [[p1, p2], [p2, p3], [p3, p4], [p4, p5]] as const) expect(b).to.be.greaterThan(a);
      const all = await t.selectSendToDeviceMessages(tx, ALICE, 'D', 0, p5);
      expect(all).to.deep.equal({
        lastPosition: p5,
        events: [
          { id: p1, userID: ALICE, deviceID: 'D', content: '{"n":1}' },
          { id: p3, userID: ALICE, deviceID: 'D', content: '{"n":2}' },
          { id: p5, userID: ALICE, deviceID: 'D', content: '{"n":3}' },
        ],
      });
      // Lower bound exclusive, upper inclusive; lastPosition is the highest returned.
      expect((await t.selectSendToDeviceMessages(tx, ALICE, 'D', p1, p4)).events.map((e) => e.id)).to.deep.equal([p3]);
      expect((await t.selectSendToDeviceMessages(tx, ALICE, 'D', p1, p4)).lastPosition).to.equal(p3);
      expect((await t.selectSendToDeviceMessages(tx, ALICE, 'D', p1 - 1, p1)).events.map((e) => e.id)).to.deep.equal([p1]);
    });

    test('with nothing in range, lastPosition is `to`', async ({ storage }) => {
      const t = storage.tables.sendToDevice;
      const tx = storage.unitOfWork.autocommit;
      expect(await t.selectSendToDeviceMessages(tx, ALICE, 'D', 0, 100)).to.deep.equal({ lastPosition: 100, events: [] });
      const p = await t.insertSendToDeviceMessage(tx, ALICE, 'D', '{}', SENT);
      expect(await t.selectSendToDeviceMessages(tx, ALICE, 'D', p, p + 50)).to.deep.equal({ lastPosition: p + 50, events: [] });
      expect(await t.selectSendToDeviceMessages(tx, BOB, 'D', 0, p + 50)).to.deep.equal({ lastPosition: p + 50, events: [] });
      expect(await t.selectSendToDeviceMessages(tx, ALICE, 'd', 0, p)).to.deep.equal({ lastPosition: p, events: [] });
    });

    test('the table stores content verbatim, without parsing it', async ({ storage }) => {
      const t = storage.tables.sendToDevice;
      const tx = storage.unitOfWork.autocommit;
      const texts = ['not json', '{"a": 1,   "b":[2]}', '', '"\\u0000 escaped"'];
      for (const c of texts) await t.insertSendToDeviceMessage(tx, ALICE, 'D', c, SENT);
      expect((await t.selectSendToDeviceMessages(tx, ALICE, 'D', 0, Number.MAX_SAFE_INTEGER)).events.map((e) => e.content)).to.deep.equal(texts);
    });

    test('deleteSendToDeviceMessages deletes the device\'s messages up to AND including the position', async ({ storage }) => {
      const t = storage.tables.sendToDevice;
      const tx = storage.unitOfWork.autocommit;
      const ids: number[] = [];
      for (let i = 0; i < 4; i++) ids.push(await t.insertSendToDeviceMessage(tx, ALICE, 'D', `{"n":${i}}`, SENT));
      const bobs = await t.insertSendToDeviceMessage(tx, BOB, 'D', '{}', SENT);
      const other = await t.insertSendToDeviceMessage(tx, ALICE, 'E', '{}', SENT);
      await t.deleteSendToDeviceMessages(tx, ALICE, 'D', ids[1]!);
      expect((await t.selectSendToDeviceMessages(tx, ALICE, 'D', 0, other)).events.map((e) => e.id)).to.deep.equal([ids[2], ids[3]]);
      await storage.unitOfWork.transaction((inTx) => t.deleteSendToDeviceMessages(inTx, ALICE, 'D', ids[3]!));
      expect((await t.selectSendToDeviceMessages(tx, ALICE, 'D', 0, other)).events).to.deep.equal([]);
      await t.deleteSendToDeviceMessages(tx, ALICE, 'D', ids[3]!);
      expect((await t.selectSendToDeviceMessages(tx, BOB, 'D', 0, other)).events.map((e) => e.id)).to.deep.equal([bobs]);
      expect((await t.selectSendToDeviceMessages(tx, ALICE, 'E', 0, other)).events.map((e) => e.id)).to.deep.equal([other]);
    });

    test('selectMaxSendToDeviceMessageID is 0 with no messages, else the highest over all users; positions are never reused', async ({ storage }) => {
      const t = storage.tables.sendToDevice;
      const tx = storage.unitOfWork.autocommit;
      expect(await t.selectMaxSendToDeviceMessageID(tx)).to.equal(0);
      await t.insertSendToDeviceMessage(tx, ALICE, 'D', '{}', SENT);
      const last = await t.insertSendToDeviceMessage(tx, BOB, 'D', '{}', SENT);
      expect(await storage.unitOfWork.transaction((inTx) => t.selectMaxSendToDeviceMessageID(inTx))).to.equal(last);
      await t.deleteSendToDeviceMessages(tx, BOB, 'D', last);
      const next = await t.insertSendToDeviceMessage(tx, BOB, 'D', '{}', SENT);
      expect(next).to.be.greaterThan(last);
    });

    test('concurrent inserts get distinct positions; hostile user and device IDs round-trip', async ({ storage }) => {
      const t = storage.tables.sendToDevice;
      const tx = storage.unitOfWork.autocommit;
      const positions = fulfilled(await parallel(30, (i) => t.insertSendToDeviceMessage(tx, ALICE, 'D', `{"i":${i}}`, SENT)));
      expect(new Set(positions).size).to.equal(30);
      const read = (await t.selectSendToDeviceMessages(tx, ALICE, 'D', 0, Math.max(...positions))).events;
      expect(read.map((e) => e.id)).to.deep.equal([...positions].sort((a, b) => a - b));
      for (const [i, u] of HOSTILE_USERS.entries()) await t.insertSendToDeviceMessage(tx, u, HOSTILE_IDS[i % HOSTILE_IDS.length]!, JSON.stringify({ u }), SENT);
      const max = await t.selectMaxSendToDeviceMessageID(tx);
      for (const [i, u] of HOSTILE_USERS.entries()) {
        const events = (await t.selectSendToDeviceMessages(tx, u, HOSTILE_IDS[i % HOSTILE_IDS.length]!, 0, max)).events;
        expect(events.map((e) => e.content), u).to.deep.equal([JSON.stringify({ u })]);
      }
    });
  });

  group(fw, driver, 'Table: partition_offsets', (test) => {
    test('upsertPartitionOffset stores offsets per (topic, partition); select returns the topic\'s, sorted by partition', async ({ storage }) => {
      const t = storage.tables.partitionOffsets;
      const tx = storage.unitOfWork.autocommit;
      expect(await t.selectPartitionOffsets(tx, 'topic')).to.deep.equal([]);
      await t.upsertPartitionOffset(tx, 'topic', 3, 30);
      await t.upsertPartitionOffset(tx, 'topic', 0, 7);
      await storage.unitOfWork.transaction((inTx) => t.upsertPartitionOffset(inTx, 'topic', 1, 2 ** 40));
      await t.upsertPartitionOffset(tx, 'other', 0, 99);
      expect(await t.selectPartitionOffsets(tx, 'topic')).to.deep.equal([{ partition: 0, offset: 7 }, { partition: 1, offset: 2 ** 40 }, { partition: 3, offset: 30 }]);
      expect(await t.selectPartitionOffsets(tx, 'other')).to.deep.equal([{ partition: 0, offset: 99 }]);
      expect(await t.selectPartitionOffsets(tx, 'Topic')).to.deep.equal([]);
    });

    test('an upsert overwrites the offset, with no monotonicity check (it may go backwards)', async ({ storage }) => {
      const t = storage.tables.partitionOffsets;
      const tx = storage.unitOfWork.autocommit;
      await t.upsertPartitionOffset(tx, 'topic', 0, 100);
      await t.upsertPartitionOffset(tx, 'topic', 0, 5);
      expect(await t.selectPartitionOffsets(tx, 'topic')).to.deep.equal([{ partition: 0, offset: 5 }]);
      await t.upsertPartitionOffset(tx, 'topic', 0, 6);
      expect(await t.selectPartitionOffsets(tx, 'topic')).to.deep.equal([{ partition: 0, offset: 6 }]);
    });

    test('hostile topics round-trip and stay distinct', async ({ storage }) => {
      const t = storage.tables.partitionOffsets;
      const tx = storage.unitOfWork.autocommit;
      for (const [i, topic] of HOSTILE_IDS.entries()) await t.upsertPartitionOffset(tx, topic, i, i * 10);
      for (const [i, topic] of HOSTILE_IDS.entries()) expect(await t.selectPartitionOffsets(tx, topic), topic).to.deep.equal([{ partition: i, offset: i * 10 }]);
    });
  });

  group(fw, driver, 'Table: federation_blacklist', (test) => {
    test('insert, select and delete one server; the select is an exact match', async ({ storage }) => {
      const t = storage.tables.federationBlacklist;
      const tx = storage.unitOfWork.autocommit;
      expect(await t.selectBlacklist(tx, 'evil.org')).to.equal(false);
      await t.insertBlacklist(tx, 'evil.org');
      expect(await t.selectBlacklist(tx, 'evil.org')).to.equal(true);
      expect(await storage.unitOfWork.transaction((inTx) => t.selectBlacklist(inTx, 'evil.org'))).to.equal(true);
      for (const other of ['EVIL.org', 'evil.org ', 'evil.or', 'evil.org:8448', '%', 'evil_org']) expect(await t.selectBlacklist(tx, other), other).to.equal(false);
      await t.deleteBlacklist(tx, 'evil.org');
      expect(await t.selectBlacklist(tx, 'evil.org')).to.equal(false);
    });

    test('inserting a listed server again changes nothing (DO NOTHING); deleting an absent one is a no-op', async ({ storage }) => {
      const t = storage.tables.federationBlacklist;
      const tx = storage.unitOfWork.autocommit;
      await t.insertBlacklist(tx, 'evil.org');
      await t.insertBlacklist(tx, 'evil.org');
      await storage.unitOfWork.transaction((inTx) => t.insertBlacklist(inTx, 'evil.org'));
      expect(await t.selectBlacklist(tx, 'evil.org')).to.equal(true);
      await t.deleteBlacklist(tx, 'evil.org');
      expect(await t.selectBlacklist(tx, 'evil.org')).to.equal(false);
      await t.deleteBlacklist(tx, 'evil.org');
      await t.deleteBlacklist(tx, 'never.org');
    });

    test('deleteAllBlacklist removes every server; no-op when empty', async ({ storage }) => {
      const t = storage.tables.federationBlacklist;
      const tx = storage.unitOfWork.autocommit;
      await t.deleteAllBlacklist(tx);
      const servers = ['a.org', 'b.org', ...HOSTILE_IDS];
      for (const s of servers) await t.insertBlacklist(tx, s);
      for (const s of servers) expect(await t.selectBlacklist(tx, s), s).to.equal(true);
      await storage.unitOfWork.transaction((inTx) => t.deleteAllBlacklist(inTx));
      for (const s of servers) expect(await t.selectBlacklist(tx, s), s).to.equal(false);
      await t.insertBlacklist(tx, 'a.org');
      expect(await t.selectBlacklist(tx, 'a.org')).to.equal(true);
    });
  });
}

import { expect } from 'chai';
import { InvalidInputError } from '../../src/index.js';
import { dumpOf } from '../../src/io/copy.js';
import { SEND_TO_DEVICE_PURGE_BATCH, SendToDeviceDatabase } from '../../src/storage/shared/send-to-device-database.js';
import { DEFAULT_STATE_POLICY } from '../../src/storage/shared/state-policy.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { fulfilled, HOSTILE_IDS, HOSTILE_USERS, parallel, rejectsAsync } from './keys-fixtures.js';

const ALICE = '@alice:example.org';
const BOB = '@bob:example.org';
/** When the messages written straight into the table were sent (the retention tests choose their own times). */
const SENT = 1_700_000_000_000;
const DAY = 86_400_000;
const msg = (n: number, sender = BOB) => ({ sender, type: 'm.room_key_request', content: { n, body: "it's 100% _true_" } });

/** Send-to-device messages, the federation blacklist and the PartitionStorer, at the Database level. */
export function databaseStreamTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Database: send-to-device', (test) => {
    test('store returns increasing positions; a sync reads (from, to] oldest first; lastPosition is the highest read', async ({ storage }) => {
      const db = storage.sendToDevice;
      const p1 = await db.storeNewSendForDeviceMessage(ALICE, 'D', msg(1));
      const other = await db.storeNewSendForDeviceMessage(BOB, 'D', msg(99, ALICE));
      const p2 = await db.storeNewSendForDeviceMessage(ALICE, 'D', msg(2));
      const p3 = await db.storeNewSendForDeviceMessage(ALICE, 'D', msg(3));
      expect(other).to.be.greaterThan(p1);
      expect(p2).to.be.greaterThan(other);
      expect(p3).to.be.greaterThan(p2);
      const max = await db.maxStreamPositionForSendToDeviceMessages();
      expect(max).to.equal(p3);
      const all = await db.sendToDeviceUpdatesForSync(ALICE, 'D', 0, max);
      expect(all.lastPosition).to.equal(p3);
      expect(all.events).to.deep.equal([1, 2, 3].map((n, i) => ({ id: [p1, p2, p3][i], userID: ALICE, deviceID: 'D', ...msg(n) })));
      const middle = await db.sendToDeviceUpdatesForSync(ALICE, 'D', p1, p2);
      expect(middle.events.map((e) => e.content.n)).to.deep.equal([2]);
      expect(middle.lastPosition).to.equal(p2);
    });

    test('with no messages in range, a sync returns `to` and nothing', async ({ storage }) => {
      const db = storage.sendToDevice;
      expect(await db.maxStreamPositionForSendToDeviceMessages()).to.equal(0);
      expect(await db.sendToDeviceUpdatesForSync(ALICE, 'D', 0, 10)).to.deep.equal({ lastPosition: 10, events: [] });
      const p = await db.storeNewSendForDeviceMessage(ALICE, 'D', msg(1));
      expect(await db.sendToDeviceUpdatesForSync(ALICE, 'D', p, p + 3)).to.deep.equal({ lastPosition: p + 3, events: [] });
      expect(await db.sendToDeviceUpdatesForSync(ALICE, 'E', 0, p)).to.deep.equal({ lastPosition: p, events: [] });
    });

    test('cleanSendToDeviceUpdates deletes up to AND including the position, for that device only', async ({ storage }) => {
      const db = storage.sendToDevice;
      const ps: number[] = [];
      for (let n = 0; n < 4; n++) ps.push(await db.storeNewSendForDeviceMessage(ALICE, 'D', msg(n)));
      const e = await db.storeNewSendForDeviceMessage(ALICE, 'E', msg(9));
      await db.cleanSendToDeviceUpdates(ALICE, 'D', ps[1]!);
      expect((await db.sendToDeviceUpdatesForSync(ALICE, 'D', 0, e)).events.map((m) => m.id)).to.deep.equal([ps[2], ps[3]]);
      await db.cleanSendToDeviceUpdates(ALICE, 'D', e);
      expect((await db.sendToDeviceUpdatesForSync(ALICE, 'D', 0, e)).events).to.deep.equal([]);
      expect((await db.sendToDeviceUpdatesForSync(ALICE, 'E', 0, e)).events.map((m) => m.id)).to.deep.equal([e]);
      // Positions are never reused after a clean-up.
      await db.cleanSendToDeviceUpdates(ALICE, 'E', e);
      expect(await db.storeNewSendForDeviceMessage(ALICE, 'E', msg(10))).to.be.greaterThan(e);
    });

    test('stored content that is not a { sender, type, content } object is skipped, but still moves lastPosition', async ({ storage }) => {
      const db = storage.sendToDevice;
      const t = storage.tables.sendToDevice;
      const good = await db.storeNewSendForDeviceMessage(ALICE, 'D', msg(1));
      const broken = await t.insertSendToDeviceMessage(storage.unitOfWork.autocommit, ALICE, 'D', '{not json', SENT);
      const wrongShape = await t.insertSendToDeviceMessage(storage.unitOfWork.autocommit, ALICE, 'D', '{"sender":1,"type":"t","content":{}}', SENT);
      const r = await db.sendToDeviceUpdatesForSync(ALICE, 'D', 0, wrongShape + 10);
      expect(r.events.map((m) => m.id)).to.deep.equal([good]);
      expect(r.lastPosition).to.equal(wrongShape);
      expect(broken).to.be.lessThan(wrongShape);
    });

    test('concurrent stores get distinct positions, all readable in order', async ({ storage }) => {
      const db = storage.sendToDevice;
      const ps = fulfilled(await parallel(30, (i) => db.storeNewSendForDeviceMessage(ALICE, 'D', msg(i))));
      expect(new Set(ps).size).to.equal(30);
      const read = await db.sendToDeviceUpdatesForSync(ALICE, 'D', 0, Math.max(...ps));
      expect(read.events.map((m) => m.id)).to.deep.equal([...ps].sort((a, b) => a - b));
      expect(read.events.map((m) => m.content.n).sort((a, b) => (a as number) - (b as number))).to.deep.equal(Array.from({ length: 30 }, (_, i) => i));
    });

    test('hostile user IDs, device IDs, types and content round-trip', async ({ storage }) => {
      const db = storage.sendToDevice;
      for (const [i, u] of HOSTILE_USERS.entries()) {
        const device = HOSTILE_IDS[i % HOSTILE_IDS.length]!;
        await db.storeNewSendForDeviceMessage(u, device, { sender: u, type: `org.example.${device}`, content: { [device]: u } });
      }
      const max = await db.maxStreamPositionForSendToDeviceMessages();
      for (const [i, u] of HOSTILE_USERS.entries()) {
        const device = HOSTILE_IDS[i % HOSTILE_IDS.length]!;
        const [m] = (await db.sendToDeviceUpdatesForSync(u, device, 0, max)).events;
        expect(m, u).to.include({ userID: u, deviceID: device, sender: u, type: `org.example.${device}` });
        expect(m!.content[device], u).to.equal(u);
      }
    });

    test('inputs are checked before anything is written', async ({ storage }) => {
      const db = storage.sendToDevice;
      await rejectsAsync(() => db.storeNewSendForDeviceMessage('alice', 'D', msg(1)), InvalidInputError, /user ID/);
      await rejectsAsync(() => db.storeNewSendForDeviceMessage(ALICE, '', msg(1)), InvalidInputError, /device ID/);
      await rejectsAsync(() => db.storeNewSendForDeviceMessage(ALICE, 'D', { ...msg(1), sender: 'bob' }), InvalidInputError, /sender/);
      await rejectsAsync(() => db.storeNewSendForDeviceMessage(ALICE, 'D', { ...msg(1), type: '' }), InvalidInputError, /type/);
      await rejectsAsync(() => db.storeNewSendForDeviceMessage(ALICE, 'D', { ...msg(1), content: [] as never }), InvalidInputError, /content/);
      await rejectsAsync(() => db.storeNewSendForDeviceMessage(ALICE, 'D', { ...msg(1), content: { big: 'x'.repeat(70_000) } }), InvalidInputError, /bytes/);
      await rejectsAsync(() => db.storeNewSendForDeviceMessage(ALICE, 'D', { ...msg(1), content: { n: 1n } as never }), InvalidInputError, /JSON/);
      await rejectsAsync(() => db.sendToDeviceUpdatesForSync(ALICE, 'D', -1, 5), InvalidInputError, /from position/);
      await rejectsAsync(() => db.cleanSendToDeviceUpdates(ALICE, 'D', 1.5), InvalidInputError, /position/);
      expect(await db.maxStreamPositionForSendToDeviceMessages()).to.equal(0);
    });

    const pause = () => new Promise((resolve) => setTimeout(resolve, 5));

    test('deleteSendToDeviceMessagesSentBefore deletes every device\'s messages stored before the cut, fetched or not, and none after it', async ({ storage }) => {
      const db = storage.sendToDevice;
      const started = Date.now();
      const old = [await db.storeNewSendForDeviceMessage(ALICE, 'D', msg(1)), await db.storeNewSendForDeviceMessage(BOB, 'D', msg(2))];
      await pause();
      const cut = Date.now();
      await pause();
      const kept = [await db.storeNewSendForDeviceMessage(ALICE, 'D', msg(3)), await db.storeNewSendForDeviceMessage(ALICE, 'E', msg(4))];
      // Each message carries the time it was stored.
      const sent = new Map((await dumpOf(storage, 'store').table('send_to_device').read(undefined, 100)).rows.map((r) => [r.id, r.sentAt]));
      for (const id of old) expect(sent.get(id)).to.be.within(started, cut - 1);
      for (const id of kept) expect(sent.get(id)).to.be.within(cut + 1, Date.now());
      expect(await db.deleteSendToDeviceMessagesSentBefore(cut)).to.equal(2);
      const max = Math.max(...kept);
      expect((await db.sendToDeviceUpdatesForSync(ALICE, 'D', 0, max)).events.map((m) => m.id)).to.deep.equal([kept[0]]);
      expect((await db.sendToDeviceUpdatesForSync(BOB, 'D', 0, max)).events).to.deep.equal([]);
      expect((await db.sendToDeviceUpdatesForSync(ALICE, 'E', 0, max)).events.map((m) => m.id)).to.deep.equal([kept[1]]);
      expect(await db.deleteSendToDeviceMessagesSentBefore(cut)).to.equal(0);
      // Positions are never reused.
      expect(await db.storeNewSendForDeviceMessage(BOB, 'D', msg(5))).to.be.greaterThan(max);
    });

    test(`a purge of more than ${SEND_TO_DEVICE_PURGE_BATCH} messages deletes them in writes of ${SEND_TO_DEVICE_PURGE_BATCH}, all of them`, async ({ storage }) => {
      const t = storage.tables.sendToDevice;
      const tx = storage.unitOfWork.autocommit;
      const n = SEND_TO_DEVICE_PURGE_BATCH + 7;
      for (let i = 0; i < n; i += 100) {
        fulfilled(await parallel(Math.min(100, n - i), (j) => t.insertSendToDeviceMessage(tx, `@u${(i + j) % 13}:example.org`, 'D', '{}', SENT + i + j)));
      }
      const keep = await t.insertSendToDeviceMessage(tx, ALICE, 'D', '{}', SENT + DAY);
      const totals: number[] = [];
      expect(await storage.sendToDevice.deleteSendToDeviceMessagesSentBefore(SENT + n, (d) => totals.push(d))).to.equal(n);
      expect(totals).to.deep.equal([SEND_TO_DEVICE_PURGE_BATCH, n]);
      expect(await storage.sendToDevice.maxStreamPositionForSendToDeviceMessages()).to.equal(keep);
      expect((await t.selectSendToDeviceMessages(tx, ALICE, 'D', 0, keep)).events.map((e) => e.id)).to.deep.equal([keep]);
    });

    test('deleteExpiredSendToDeviceMessages goes by send_to_device.max_age_days; 0, the default, keeps every message', async ({ storage }) => {
      const t = storage.tables.sendToDevice;
      const tx = storage.unitOfWork.autocommit;
      const now = SENT + 30 * DAY;
      const ages = [10 * DAY, 2 * DAY + 1, 2 * DAY, DAY];
      const ids: number[] = [];
      for (const age of ages) ids.push(await t.insertSendToDeviceMessage(tx, ALICE, 'D', '{}', now - age));
      const stored = async () => (await t.selectSendToDeviceMessages(tx, ALICE, 'D', 0, ids.at(-1)!)).events.map((e) => e.id);
      expect(await storage.sendToDevice.deleteExpiredSendToDeviceMessages(now)).to.deep.equal({ deleted: 0, before: undefined });
      expect(await stored()).to.deep.equal(ids);
      // The same tables, read by a database configured to keep messages two days.
      const twoDays = new SendToDeviceDatabase(storage.unitOfWork, t, { serverName: 'example.org', statePolicy: DEFAULT_STATE_POLICY, sendToDeviceMaxAgeDays: 2 });
      expect(await twoDays.deleteExpiredSendToDeviceMessages(now)).to.deep.equal({ deleted: 2, before: now - 2 * DAY });
      expect(await stored()).to.deep.equal(ids.slice(2));
      await rejectsAsync(() => twoDays.deleteExpiredSendToDeviceMessages(-1), InvalidInputError, /now/);
      await rejectsAsync(() => storage.sendToDevice.deleteSendToDeviceMessagesSentBefore(Number.NaN), InvalidInputError, /before/);
    });
  });

  group(fw, driver, 'Database: federation blacklist', (test) => {
    test('add, check, remove one, remove all; adding twice and removing an absent server are harmless', async ({ storage }) => {
      const db = storage.federation;
      expect(await db.isServerBlacklisted('evil.org')).to.equal(false);
      await db.addServerToBlacklist('evil.org');
      await db.addServerToBlacklist('evil.org');
      await db.addServerToBlacklist('worse.org:8448');
      expect(await db.isServerBlacklisted('evil.org')).to.equal(true);
      expect(await db.isServerBlacklisted('EVIL.ORG')).to.equal(false);
      expect(await db.isServerBlacklisted('worse.org')).to.equal(false);
      expect(await db.isServerBlacklisted('worse.org:8448')).to.equal(true);
      await db.removeServerFromBlacklist('evil.org');
      await db.removeServerFromBlacklist('evil.org');
      expect(await db.isServerBlacklisted('evil.org')).to.equal(false);
      expect(await db.isServerBlacklisted('worse.org:8448')).to.equal(true);
      await db.removeAllServersFromBlacklist();
      expect(await db.isServerBlacklisted('worse.org:8448')).to.equal(false);
      await db.removeAllServersFromBlacklist();
    });

    test('hostile server names round-trip; bad ones are InvalidInputErrors', async ({ storage }) => {
      const db = storage.federation;
      for (const s of HOSTILE_IDS) await db.addServerToBlacklist(s);
      for (const s of HOSTILE_IDS) expect(await db.isServerBlacklisted(s), s).to.equal(true);
      expect(await db.isServerBlacklisted('x%')).to.equal(false);
      for (const bad of ['', 'a\u0000b', 's'.repeat(256), 7]) {
        await rejectsAsync(() => db.addServerToBlacklist(bad as string), InvalidInputError, /server name/);
        await rejectsAsync(() => db.isServerBlacklisted(bad as string), InvalidInputError, /server name/);
        await rejectsAsync(() => db.removeServerFromBlacklist(bad as string), InvalidInputError, /server name/);
      }
    });
  });

  group(fw, driver, 'Database: PartitionStorer', (test) => {
    test('offsets per topic and partition, sorted by partition; an offset may go backwards', async ({ storage }) => {
      const p = storage.partitionStorer;
      expect(await p.partitionOffsets('output.keys')).to.deep.equal([]);
      await p.setPartitionOffset('output.keys', 2, 200);
      await p.setPartitionOffset('output.keys', 0, 10);
      await p.setPartitionOffset('output.room', 0, 5);
      expect(await p.partitionOffsets('output.keys')).to.deep.equal([{ partition: 0, offset: 10 }, { partition: 2, offset: 200 }]);
      await p.setPartitionOffset('output.keys', 2, 150);
      expect(await p.partitionOffsets('output.keys')).to.deep.equal([{ partition: 0, offset: 10 }, { partition: 2, offset: 150 }]);
      expect(await p.partitionOffsets('output.room')).to.deep.equal([{ partition: 0, offset: 5 }]);
    });

    test('concurrent sets of different partitions all land', async ({ storage }) => {
      const p = storage.partitionStorer;
      fulfilled(await parallel(16, (i) => p.setPartitionOffset('t', i, i * 3)));
      expect(await p.partitionOffsets('t')).to.deep.equal(Array.from({ length: 16 }, (_, i) => ({ partition: i, offset: i * 3 })));
    });

    test('topics, partitions and offsets are checked', async ({ storage }) => {
      const p = storage.partitionStorer;
      await rejectsAsync(() => p.setPartitionOffset('', 0, 1), InvalidInputError, /topic/);
      await rejectsAsync(() => p.partitionOffsets('a\u0000'), InvalidInputError, /topic/);
      for (const partition of [-1, 1.5, 2 ** 31]) await rejectsAsync(() => p.setPartitionOffset('t', partition, 1), InvalidInputError, /partition/);
      for (const offset of [Number.NaN, 2 ** 53, 0.5]) await rejectsAsync(() => p.setPartitionOffset('t', 0, offset), InvalidInputError, /offset/);
      expect(await p.partitionOffsets('t')).to.deep.equal([]);
      await p.setPartitionOffset('t', 2 ** 31 - 1, -2);
      expect(await p.partitionOffsets('t')).to.deep.equal([{ partition: 2 ** 31 - 1, offset: -2 }]);
    });
  });
}

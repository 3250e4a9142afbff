import type { Storage } from '../../src/index.js';
import { CrossSigningKeyPurpose } from '../../src/types/keys.js';
import type { DumpRows, DumpTableName, StoreDump } from '../../src/storage/tables/dump.js';
import { DUMP_TABLES } from '../../src/storage/tables/dump.js';
import { makeEvent, seedRoom } from './fixtures.js';
import { dm } from './keys-fixtures.js';
import { session } from './tables-key-backup.js';

const ALICE = '@alice:example.org';
const BOB = '@bob:remote.net';

/**
 * Puts data in every table a dump carries, through the Database APIs as a homeserver would: two rooms with state,
 * memberships, an invite retired and one active, redactions (one applied, one waiting for its target), a client
 * transaction, aliases and the directory; device keys (local and remote), one-time keys, key changes, cross-signing
 * keys and signatures, a stale device list; key backup versions (one deleted) and sessions; send-to-device
 * messages; the federation blacklist; partition offsets. Hostile strings in the IDs where a table keys on them.
 */
export async function fillEveryTable(storage: Storage): Promise<void> {
  const db = storage.roomserver;
  const ev = await seedRoom(storage, '!fill:example.org');
  await seedRoom(storage, "!it's 100%_/room:example.org");
  const room = '!fill:example.org';
  const inviteCarol = makeEvent({ id: '$invite-carol', room, type: 'm.room.member', stateKey: '@carol:example.org', depth: 7, prev: [ev.bobJoin.eventID], content: { membership: 'invite' } });
  const inviteDave = makeEvent({ id: '$invite-dave', room, type: 'm.room.member', stateKey: '@dave:example.org', depth: 8, prev: [inviteCarol.eventID], content: { membership: 'invite' } });
  const carolJoins = makeEvent({ id: '$carol-joins', room, type: 'm.room.member', stateKey: '@carol:example.org', sender: '@carol:example.org', depth: 9, prev: [inviteDave.eventID], content: { membership: 'join' } });
  const redaction = makeEvent({ id: '$redacts-msg', room, type: 'm.room.redaction', depth: 10, prev: [carolJoins.eventID], redacts: ev.message.eventID, content: {} });
  const early = makeEvent({ id: '$redacts-later', room, type: 'm.room.redaction', depth: 11, prev: [redaction.eventID], redacts: '$not-yet', content: {} });
  await db.appendEvents([inviteCarol, inviteDave, carolJoins, redaction, early]);
  await db.appendEvent(makeEvent({ id: '$sent', room, depth: 12, prev: [early.eventID] }),
    { transaction: { transactionID: "txn'1%", sessionID: 3, userID: ALICE } });
  await db.setRoomAlias('#fill:example.org', room, ALICE);
  await db.setRoomAlias('#it_s 100%:example.org', room, ALICE);
  await db.publishRoom(room, true);

  const keys = storage.keys;
  await keys.storeLocalDeviceKeys([dm(ALICE, 'PHONE', '{"keys":{"ed25519:PHONE":"a"}}', 0, 'Alice’s phone'), dm(ALICE, 'LAPTOP', '{"keys":{}}')]);
  await keys.storeRemoteDeviceKeys([dm(BOB, 'TAB', '{"keys":{"ed25519:TAB":"b"}}', 7)], []);
  await keys.storeOneTimeKeys({ userID: ALICE, deviceID: 'PHONE', keyJSON: new Map([['signed_curve25519:AAAA', '{"key":"1"}'], ['signed_curve25519:AAAB', '{"key":"2"}']]) });
  await keys.storeKeyChange(ALICE);
  await keys.storeKeyChange(BOB);
  await keys.storeCrossSigningKeysForUser(ALICE, new Map([[CrossSigningKeyPurpose.master, 'bWFzdGVy'], [CrossSigningKeyPurpose.selfSigning, 'c2VsZg']]));
  await keys.storeCrossSigningSigsForTarget(ALICE, 'ed25519:SELF', ALICE, 'PHONE', 'c2lnbmF0dXJl');
  await keys.markDeviceListStale(BOB, true);

  const backup = storage.keyBackup;
  const gone = await backup.createKeyBackup(ALICE, 'm.megolm_backup.v1.curve25519-aes-sha2', '{"public_key":"old"}');
  await backup.deleteKeyBackup(ALICE, gone);
  const version = await backup.createKeyBackup(ALICE, 'm.megolm_backup.v1.curve25519-aes-sha2', '{"public_key":"new"}');
  await backup.upsertBackupKeys(ALICE, version, [session(room, 'S1'), session(room, "S'2%", { isVerified: true, firstMessageIndex: 3 })]);

  await storage.sendToDevice.storeNewSendForDeviceMessage(ALICE, 'PHONE', { sender: BOB, type: 'm.room_key_request', content: { n: 1 } });
  await storage.sendToDevice.storeNewSendForDeviceMessage(ALICE, 'PHONE', { sender: BOB, type: 'm.room_key_request', content: { n: 2 } });
  await storage.federation.addServerToBlacklist('evil.example.org');
  await storage.partitionStorer.setPartitionOffset('output_room_event', 0, 42);
  await storage.partitionStorer.setPartitionOffset("topic/with'quote", 3, 7);
}

/** Every row of every table of a dump, read in pages of `pageSize`, each table's rows sorted canonically. */
export async function readWholeDump(dump: StoreDump, pageSize = 1000): Promise<{ [K in DumpTableName]: DumpRows[K][] }> {
  const out = {} as { [K in DumpTableName]: DumpRows[K][] };
  for (const name of DUMP_TABLES) {
    const rows: unknown[] = [];
    let cursor: string | undefined;
    do {
      const page = await dump.table(name).read(cursor, pageSize);
      rows.push(...page.rows);
      cursor = page.next;
    } while (cursor !== undefined);
    (out as Record<string, unknown[]>)[name] = rows.map(stableJSON).sort().map((r) => JSON.parse(r) as unknown);
  }
  return out;
}

/** JSON with object keys sorted at every level: the same text for the same row, whatever the driver's key order. */
export function stableJSON(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : v));
}

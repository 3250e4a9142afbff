import type { Storage } from '../../src/index.js';
import { CrossSigningKeyPurpose } from '../../src/types/keys.js';
import type { DumpRows, DumpTableName, StoreDump } from '../../src/storage/tables/dump.js';
import { DUMP_TABLES } from '../../src/storage/tables/dump.js';
import { stableJSON } from '../../src/io/dump-rows.js';
import { makeEvent, seedRoom } from './fixtures.js';
import { generateRoom } from '../../src/io/generate-room.js';
import { parsePDU, type RoomEvent } from '../../src/types/event.js';
import { dm } from './keys-fixtures.js';
import { session } from './tables-key-backup.js';

const ALICE = '@alice:example.org';
const BOB = '@bob:remote.net';

/**
 * Puts data in every table a dump carries, through the Database APIs as a homeserver would: two rooms with state,
 * memberships, an invite retired and one active, redactions (one applied, one waiting for its target), a client
 * transaction, aliases and the directory (the server's list and a network's), an event report, user room keys; device keys (local and remote), one-time keys, key changes, cross-signing
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
  await db.publishRoom(room, 'as|irc', "net'1%", true);
  await db.insertReportedEvent(room, ev.power.eventID, '@carol:example.org', "it's 100% spam", -100);
  await db.insertUserRoomPrivatePublicKey(ALICE, room, new Uint8Array(64).fill(3));
  await db.insertUserRoomPublicKey(BOB, room, new Uint8Array(32).fill(9));

  const keys = storage.keys;
  await keys.storeLocalDeviceKeys([dm(ALICE, 'PHONE', '{"keys":{"ed25519:PHONE":"a"}}', 0, 'Alice’s phone'), dm(ALICE, 'LAPTOP', '{"keys":{}}')]);
  await keys.storeRemoteDeviceKeys([dm(BOB, 'TAB', '{"keys":{"ed25519:TAB":"b"}}', 7)], []);
  await keys.storeOneTimeKeys({ userID: ALICE, deviceID: 'PHONE', keyJSON: new Map([['signed_curve25519:AAAA', '{"key":"1"}'], ['signed_curve25519:AAAB', '{"key":"2"}']]) });
  // Fallback keys: one used (a claim found no one-time key of its algorithm), two not.
  await keys.storeFallbackKeys({ userID: ALICE, deviceID: 'LAPTOP', keyJSON: new Map([['signed_curve25519:FB1', '{"key":"f1","fallback":true}'], ['curve25519:FB2', '{"key":"f2"}']]) });
  await keys.claimKeys(new Map([[ALICE, new Map([['LAPTOP', 'curve25519']])]]));
  await keys.storeFallbackKeys({ userID: BOB, deviceID: 'TAB', keyJSON: new Map([["signed_curve25519:it's", '{"fallback":true}']]) });
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

/** What a store answers to new writes and reads after `fillEveryTable`: see `behaviourAfterFill`. */
export interface Behaviour {
  /** Answers a copy must give exactly as its source does. */
  readonly same: unknown;
  /** NIDs and stream positions newly handed out: each must be above every one the source had in use. */
  readonly fresh: Record<string, number>;
}

/**
 * New writes and reads on a store that `fillEveryTable` filled (or on a copy of one): an event in an existing room
 * and a new room, a device upload, a key claim, a to-device message, a key change, a backup version, an alias
 * lookup, a user's invites and the room's state. A copy carries every reference and counter exactly when it gives
 * the same answers and hands out only NIDs and positions its source never used (their values may differ between
 * drivers: PostgreSQL starts state keys at 65,536, Cosmos DB reserves NIDs in ranges).
 */
export async function behaviourAfterFill(s: Storage): Promise<Behaviour> {
  const room = (await s.roomserver.roomInfo('!fill:example.org'))!.roomNID;
  const latest = await s.roomserver.latestEventIDs(room);
  await s.roomserver.appendEvent(makeEvent({ id: '$after-copy', room: '!fill:example.org', type: 'm.room.topic', stateKey: '', depth: latest.depth, prev: latest.eventIDs }));
  await s.roomserver.appendEvent(makeEvent({ id: '$new-room-create', room: '!after:example.org', type: 'm.room.create', stateKey: '', content: { room_version: '10' } }));
  await s.keys.storeLocalDeviceKeys([dm(ALICE, 'NEW', '{}')]);
  const nids = await s.roomserver.eventNIDs(['$after-copy', '$new-room-create']);
  const state = await s.roomserver.currentState('!fill:example.org');
  const stateEvents = await s.roomserver.events(state.map((e) => e.eventNID));
  return {
    same: {
      state: stateEvents.map((e) => [e.event.type, e.event.stateKey, e.event.eventID]).sort(),
      devices: (await s.keys.deviceKeysForUser(ALICE, [])).map((d) => [d.deviceID, d.streamID]).sort(),
      // Claimed until none is left: which key a claim takes is the driver's choice (Cosmos DB picks at random
      // among the candidates), the keys handed out in all and then none are not.
      claimed: await claimAll(s, ALICE, 'PHONE'),
      fallback: [
        await s.keys.unusedFallbackKeyAlgorithms(ALICE, 'LAPTOP'),
        (await s.keys.claimKeys(new Map([[ALICE, new Map([['LAPTOP', 'signed_curve25519'], ['PHONE', 'curve25519']])]]))).map((k) => [...k.keyJSON]),
        await s.keys.unusedFallbackKeyAlgorithms(ALICE, 'LAPTOP'),
        await s.keys.unusedFallbackKeyAlgorithms(BOB, 'TAB'),
      ],
      alias: await s.roomserver.getRoomIDForAlias('#it_s 100%:example.org'),
      invites: await s.roomserver.getInvitesForUser(room, (await s.roomserver.eventStateKeyNIDs(['@dave:example.org'])).get('@dave:example.org')!),
      latest: (await s.roomserver.latestEventIDs(room)).eventIDs,
    },
    fresh: {
      event_nid: nids.get('$after-copy')!,
      room_nid: (await s.roomserver.roomInfo('!after:example.org'))!.roomNID,
      send_to_device_id: await s.sendToDevice.storeNewSendForDeviceMessage(ALICE, 'PHONE', { sender: BOB, type: 't', content: {} }),
      key_change_id: await s.keys.storeKeyChange('@carol:example.org'),
      key_backup_version: Number(await s.keyBackup.createKeyBackup(BOB, 'm.megolm_backup.v1.curve25519-aes-sha2', '{}')),
    },
  };
}

/** The highest NID or position of each `Behaviour.fresh` counter in a dump: what a copy must hand out above. */
export function highestInUse(all: { [K in DumpTableName]: DumpRows[K][] }): Record<string, number> {
  const max = (xs: number[]) => Math.max(0, ...xs);
  return {
    event_nid: max(all.events.map((e) => e.nid)),
    room_nid: max(all.rooms.map((r) => r.nid)),
    send_to_device_id: max(all.send_to_device.map((m) => m.id)),
    key_change_id: max(all.key_changes.map((c) => c.changeID)),
    key_backup_version: max(all.key_backup_versions.map((v) => v.version)),
  };
}

/** Claims a device's signed_curve25519 keys one at a time until none is left: the key IDs handed out, sorted. */
async function claimAll(s: Storage, userID: string, deviceID: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) {
    const claimed = await s.keys.claimKeys(new Map([[userID, new Map([[deviceID, 'signed_curve25519']])]]));
    if (claimed.length === 0) return ids.sort();
    ids.push(...claimed.flatMap((k) => [...k.keyJSON.keys()]));
  }
  throw new Error('claims kept handing out keys');
}

/** A generated room of real v10 PDUs appended in batches of 50: its ID and its events in file order. */
export async function fillGeneratedRoom(s: Storage, options: { members: number; events: number; seed: number }): Promise<{ roomID: string; events: RoomEvent[] }> {
  const events = [...generateRoom(options)].map((line) => parsePDU(line, '10').event);
  for (let i = 0; i < events.length; i += 50) await s.roomserver.appendEvents(events.slice(i, i + 50));
  return { roomID: events[0]!.roomID, events };
}

import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Storage } from '../../src/index.js';
import { importPDUFile, ImportStoppedError } from '../../src/io/import.js';
import { contentHash } from '../../src/matrix/event-id.js';
import { requiredPDUFields } from '../../src/matrix/pdu-fields.js';
import { ROOM_VERSIONS, roomVersionRules } from '../../src/matrix/room-versions.js';
import { InvalidInputError } from '../../src/types/errors.js';
import { parseEvent, parsePDU } from '../../src/types/event.js';
import type { FederationBlacklistDatabase } from '../../src/storage/shared/federation-blacklist-database.js';
import type { KeyBackupDatabase } from '../../src/storage/shared/key-backup-database.js';
import type { KeyDatabase } from '../../src/storage/shared/key-database.js';
import type { RoomserverDatabase } from '../../src/storage/shared/roomserver-database.js';
import type { SendToDeviceDatabase } from '../../src/storage/shared/send-to-device-database.js';
import type { PartitionStorer } from '../../src/storage/tables/index.js';
import { group, type DriverUnderTest, type TestFramework } from './harness.js';
import { makeEvent, seedRoom } from './fixtures.js';

/**
 * The hostile-input catalogue: every public method of every Database API, called with each class of bad input in
 * each of its parameters in turn (the others valid), must reject with an InvalidInputError whose message stays
 * short, and leave the store exactly as it was (its fingerprint: every row of every table).
 *
 * The classes: not a string (null, a number, an object, missing), a lone UTF-16 surrogate, a NUL, empty and
 * 10 kB identifiers, bad NIDs and numbers, bad booleans, non-arrays and arrays holding a bad item, and compound
 * arguments (events, device messages, key maps, backup uploads) with a bad value in each field.
 *
 * Each API's catalogue is typed as a record over its public methods: a method added to an API without a line
 * here fails the type check.
 */

type Bad = readonly [label: string, value: unknown];
interface Param { readonly name: string; readonly valid: unknown; readonly bad: readonly Bad[] }

const notString: Bad[] = [['null', null], ['a number', 42], ['an object', { a: 1 }], ['missing', undefined]];
/** Strings the one rule refuses, built around a plausible value. */
const illFormed = (head: string, tail = ''): Bad[] => [
  ['a lone high surrogate', `${head}x\ud800${tail}`], ['a lone low surrogate', `${head}\udc00x${tail}`], ['a NUL', `${head}x\u0000y${tail}`],
];
const identifier = (sigil: string, tail: string): Bad[] => [
  ...notString, ...illFormed(sigil, tail), ['empty', ''], ['10 kB long', `${sigil}${'x'.repeat(10_240)}${tail}`],
];

const P = {
  roomID: (valid = '!room:example.org'): Param => ({ name: 'room ID', valid, bad: [...identifier('!', ':example.org'), ['no sigil', 'room:example.org']] }),
  eventID: (valid = '$msg!room:example.org'): Param => ({ name: 'event ID', valid, bad: [...identifier('$', ''), ['no sigil', 'msg']] }),
  userID: (valid = '@alice:example.org'): Param => ({ name: 'user ID', valid, bad: [...identifier('@', ':example.org'), ['no server', '@alice']] }),
  alias: (valid = '#room:example.org'): Param => ({ name: 'alias', valid, bad: [...identifier('#', ':example.org'), ['no sigil', 'room:example.org']] }),
  name: (what: string, valid: string): Param => ({ name: what, valid, bad: identifier('', '') }),
  text: (what: string, valid: string): Param => ({ name: what, valid, bad: [...notString, ...illFormed('')] }),
  json: (what: string, valid: string): Param => ({ name: what, valid, bad: [...notString, ...illFormed('{"a":"', '"}'), ['65 kB', `"${'x'.repeat(66_000)}"`]] }),
  stateKey: (valid = ''): Param => ({ name: 'state key', valid, bad: [...notString, ...illFormed('')] }),
  nid: (what: string, valid: number): Param => ({
    name: what, valid,
    bad: [['zero', 0], ['negative', -1], ['a fraction', 1.5], ['NaN', Number.NaN], ['a numeric string', '1'], ['2^53', 2 ** 53], ['null', null]],
  }),
  count: (what: string, valid: number): Param => ({ name: what, valid, bad: [['negative', -1], ['a fraction', 0.5], ['a string', '3'], ['null', null]] }),
  integer: (what: string, valid: number): Param => ({ name: what, valid, bad: [['a fraction', 0.5], ['NaN', Number.NaN], ['a string', '3'], ['null', null], ['2^53', 2 ** 53]] }),
  bool: (what: string, valid: boolean): Param => ({ name: what, valid, bad: [['a string', 'true'], ['a number', 1], ['null', null]] }),
  /** A field a caller may leave out: "missing" is not bad for it. */
  optional: (p: Param): Param => ({ ...p, bad: p.bad.filter(([label]) => label !== 'missing') }),
  list: (item: Param, valid: unknown[] = [item.valid]): Param => ({
    name: `${item.name} list`, valid,
    bad: [['not an array', item.valid], ['null', null], ...item.bad.map(([label, v]): Bad => [`an item ${label}`, [item.valid, v]])],
  }),
  fn: (): Param => ({ name: 'callback', valid: async () => undefined, bad: [['null', null], ['an object', {}]] }),
  /** An object argument: each field's bad values in turn, the other fields valid. */
  object: (what: string, fields: Record<string, Param>, extra: Bad[] = []): Param => {
    const valid = Object.fromEntries(Object.entries(fields).map(([k, p]) => [k, p.valid]));
    return {
      name: what, valid,
      bad: [['null', null], ['a string', 'x'], ...extra,
        ...Object.entries(fields).flatMap(([k, p]) => p.bad.map(([label, v]): Bad => [`${k} ${label}`, { ...valid, [k]: v }]))],
    };
  },
};

const event = (): Param => {
  const valid = makeEvent({ id: '$hostile-test', type: 'm.room.member', stateKey: '@carol:example.org', content: { membership: 'join' }, depth: 9 });
  const fields: Record<string, Param> = {
    eventID: P.eventID('$hostile-test'), roomID: P.roomID(), type: P.name('type', 'm.room.member'), stateKey: P.optional(P.stateKey('@carol:example.org')),
    sender: P.userID(), depth: P.count('depth', 9), json: P.json('json', valid.json),
    prevEventIDs: P.list(P.eventID()), authEventIDs: P.list(P.eventID()),
  };
  const base = P.object('event', fields);
  return { ...base, valid, bad: base.bad.map(([label, v]): Bad => [label, v && typeof v === 'object' ? { ...valid, ...v } : v]) };
};

const transactionKey = () => P.object('transaction', {
  transactionID: P.name('transaction ID', 'txn'), sessionID: P.count('session ID', 1), userID: P.userID(),
});
const entry = (tombstoneAllowed: boolean) => P.object('state entry', {
  eventTypeNID: P.nid('event type NID', 5), eventStateKeyNID: P.nid('state key NID', 1),
  eventNID: tombstoneAllowed ? { ...P.nid('event NID', 1), bad: P.nid('', 1).bad.filter(([l]) => l !== 'zero') } : P.nid('event NID', 1),
});
const tuple = () => P.object('tuple', { eventTypeNID: P.nid('event type NID', 5), eventStateKeyNID: P.nid('state key NID', 1) });
const deviceMessage = (withStreamID: boolean) => P.object('device message', {
  userID: P.userID(), deviceID: P.name('device ID', 'DEV'), keyJSON: P.json('key JSON', '{"k":1}'), displayName: P.optional(P.text('display name', 'phone')),
  ...(withStreamID ? { streamID: P.count('stream ID', 1) } : {}),
});
/** A Map argument: bad keys, bad values, and not a Map at all. */
const map = (what: string, key: Param, value: Param): Param => ({
  name: what, valid: new Map([[key.valid, value.valid]]),
  bad: [['not a Map', { [String(key.valid)]: value.valid }], ['null', null],
    ...key.bad.map(([label, k]): Bad => [`a key ${label}`, new Map([[k, value.valid]])]),
    ...value.bad.map(([label, v]): Bad => [`a value ${label}`, new Map([[key.valid, v]])])],
});
const keyName = (): Param => ({ name: 'key name', valid: 'signed_curve25519:AAAA', bad: [...notString, ...illFormed('alg:'), ['no colon', 'signed_curve25519'], ['empty key ID', 'alg:']] });
const backupUpload = () => P.object('backup upload', {
  roomID: P.roomID(), sessionID: P.name('session ID', 'S1'), firstMessageIndex: P.count('first message index', 0),
  forwardedCount: P.count('forwarded count', 0), isVerified: P.bool('is verified', true), sessionData: P.json('session data', '{"d":1}'),
});
/** An ed25519 key of `bytes` bytes, as bytes. */
const roomKey = (what: string, bytes: number): Param => ({
  name: what, valid: new Uint8Array(bytes).fill(7),
  bad: [['null', null], ['a string', 'AAAA'], ['an array of numbers', Array.from({ length: bytes }, () => 7)], [`${bytes - 1} bytes`, new Uint8Array(bytes - 1)]],
});
const version = (valid = '1'): Param => ({ name: 'version', valid, bad: [...notString, ...illFormed('1'), ['not a number', 'v1'], ['empty', ''], ['negative', '-1']] });

interface MethodCase {
  readonly params: readonly Param[];
  readonly call: (storage: Storage, args: readonly unknown[]) => Promise<unknown>;
}
type Catalogue<T> = { readonly [K in { [M in keyof T]: T[M] extends (...a: never[]) => unknown ? M : never }[keyof T]]: MethodCase | 'takes no input' };

/** Calls `api.method(...args)` on the storage's API, as a user would. */
const on = <A extends keyof Storage>(api: A, method: string, ...params: Param[]): MethodCase => ({
  params,
  call: (storage, args) => (storage[api] as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[method]!(...args),
});
const rs = (method: keyof RoomserverDatabase, ...params: Param[]) => on('roomserver', method, ...params);
const ks = (method: keyof KeyDatabase, ...params: Param[]) => on('keys', method, ...params);

const roomserver: Catalogue<RoomserverDatabase> = {
  storeEvent: rs('storeEvent', event(), { ...P.object('options', { transaction: transactionKey(), isRejected: P.bool('isRejected', false) }), valid: {} }),
  appendEvent: rs('appendEvent', event(), {
    ...P.object('options', { authEventNIDs: P.list(P.nid('auth event NID', 1)), isSoftFailed: P.bool('isSoftFailed', false), stateBefore: P.list(P.eventID()) }), valid: {},
  }),
  appendEvents: rs('appendEvents', P.list(event())),
  updateLatestEvents: rs('updateLatestEvents', P.nid('room NID', 1), P.fn()),
  updateMembership: rs('updateMembership', P.roomID(), P.userID(), P.bool('local', true), P.text('room version', '10'), P.fn()),
  addState: rs('addState', P.nid('room NID', 1), P.list(P.nid('block NID', 1)), P.list(entry(true))),
  setState: rs('setState', P.nid('event NID', 1), P.nid('snapshot NID', 1)),
  stateAtEventIDs: rs('stateAtEventIDs', P.list(P.eventID())),
  stateEntriesForEventIDs: rs('stateEntriesForEventIDs', P.list(P.eventID()), P.bool('excludeRejected', false)),
  stateBlockNIDs: rs('stateBlockNIDs', P.list(P.nid('snapshot NID', 1))),
  stateEntries: rs('stateEntries', P.list(P.nid('block NID', 1))),
  stateEntriesForTuples: rs('stateEntriesForTuples', P.list(P.nid('block NID', 1)), P.list(tuple())),
  loadStateAtSnapshot: rs('loadStateAtSnapshot', P.nid('snapshot NID', 1)),
  loadStateAtEvent: rs('loadStateAtEvent', P.eventID()),
  loadStateBeforeEvent: rs('loadStateBeforeEvent', P.eventID()),
  loadStateAfterEvent: rs('loadStateAfterEvent', P.eventID()),
  currentState: rs('currentState', P.roomID()),
  snapshotNIDFromEventID: rs('snapshotNIDFromEventID', P.eventID()),
  roomInfo: rs('roomInfo', P.roomID()),
  eventTypeNIDsFor: rs('eventTypeNIDsFor', P.list(P.name('event type', 'm.room.create'))),
  eventStateKeyNIDs: rs('eventStateKeyNIDs', P.list(P.stateKey())),
  eventStateKeys: rs('eventStateKeys', P.list(P.nid('state key NID', 1))),
  eventNIDs: rs('eventNIDs', P.list(P.eventID())),
  isEventRejected: rs('isEventRejected', P.nid('room NID', 1), P.eventID()),
  redactionOf: rs('redactionOf', P.eventID()),
  backwardExtremities: rs('backwardExtremities', P.roomID()),
  eventIDs: rs('eventIDs', P.list(P.nid('event NID', 1))),
  events: rs('events', P.list(P.nid('event NID', 1))),
  eventsFromIDs: rs('eventsFromIDs', P.list(P.eventID())),
  getTransactionEventID: rs('getTransactionEventID', transactionKey()),
  latestEventIDs: rs('latestEventIDs', P.nid('room NID', 1)),
  getInvitesForUser: rs('getInvitesForUser', P.nid('room NID', 1), P.nid('user NID', 1)),
  setRoomAlias: rs('setRoomAlias', P.alias(), P.roomID(), P.userID()),
  getRoomIDForAlias: rs('getRoomIDForAlias', P.alias()),
  getAliasesForRoomID: rs('getAliasesForRoomID', P.roomID()),
  getCreatorIDForAlias: rs('getCreatorIDForAlias', P.alias()),
  removeRoomAlias: rs('removeRoomAlias', P.alias()),
  publishRoom: rs('publishRoom', P.roomID(), P.text('appservice ID', ''), P.text('network ID', ''), P.bool('published', true)),
  getPublishedRooms: rs('getPublishedRooms', P.optional(P.text('network ID', '')), P.optional(P.bool('includeAllNetworks', false))),
  getPublishedRoom: rs('getPublishedRoom', P.roomID()),
  upgradeRoom: rs('upgradeRoom', P.roomID(), P.roomID('!new:example.org'), P.userID()),
  insertReportedEvent: rs('insertReportedEvent', P.roomID(), P.eventID(), P.userID(), P.text('reason', 'spam'), P.integer('score', -100)),
  queryEventReports: rs('queryEventReports', P.optional(P.object('query', {
    from: P.optional(P.count('from', 0)), limit: P.optional(P.count('limit', 10)), backwards: P.optional(P.bool('backwards', false)),
    userID: P.optional(P.userID()), roomID: P.optional(P.roomID()),
  }))),
  queryEventReport: rs('queryEventReport', P.nid('report ID', 1)),
  deleteEventReport: rs('deleteEventReport', P.nid('report ID', 1)),
  insertUserRoomPrivatePublicKey: rs('insertUserRoomPrivatePublicKey', P.userID(), P.roomID(), roomKey('private key', 64)),
  insertUserRoomPublicKey: rs('insertUserRoomPublicKey', P.userID(), P.roomID(), roomKey('public key', 32)),
  selectUserRoomPrivateKey: rs('selectUserRoomPrivateKey', P.userID(), P.roomID()),
  selectUserRoomPublicKey: rs('selectUserRoomPublicKey', P.userID(), P.roomID()),
  selectUserIDsForPublicKeys: rs('selectUserIDsForPublicKeys', map('public keys', P.roomID(), P.list(roomKey('public key', 32)))),
  getMembership: rs('getMembership', P.nid('room NID', 1), P.userID()),
  getMembershipEventNIDsForRoom: rs('getMembershipEventNIDsForRoom', P.nid('room NID', 1), P.bool('joinOnly', true), P.bool('localOnly', false)),
  getRoomsByMembership: rs('getRoomsByMembership', P.userID(), { ...P.text('membership', 'join'), bad: [...P.text('', '').bad, ['unknown', 'friends']] }),
  joinedUsersSetInRooms: rs('joinedUsersSetInRooms', P.list(P.roomID()), P.optional(P.list(P.userID())), P.optional(P.bool('localOnly', true))),
  getLocalServerInRoom: rs('getLocalServerInRoom', P.nid('room NID', 1)),
  getServerInRoom: rs('getServerInRoom', P.nid('room NID', 1), P.name('server name', 'example.org')),
  getKnownUsers: rs('getKnownUsers', P.userID(), P.text('search', 'al'), P.count('limit', 10)),
  getKnownRooms: 'takes no input',
  getRoomsWithEventType: rs('getRoomsWithEventType', P.name('event type', 'm.room.server_acl')),
  forgetRoom: rs('forgetRoom', P.userID(), P.roomID(), P.bool('forget', true)),
  evictRoom: rs('evictRoom', P.roomID(), P.nid('room NID', 1)),
  purgeRoom: rs('purgeRoom', P.roomID()),
  purgeHistory: rs('purgeHistory', P.roomID(), P.object('history cut', { beforeEventID: P.eventID('$cut') })),
  roomContents: rs('roomContents', P.roomID()),
  getStateEvent: rs('getStateEvent', P.roomID(), P.name('event type', 'm.room.create'), P.stateKey()),
  getBulkStateContent: rs('getBulkStateContent', P.list(P.roomID()),
    P.list(P.object('tuple', { eventType: P.name('event type', 'm.room.name'), stateKey: P.stateKey() })), P.bool('allowWildcards', false)),
  missingAuthPrevEvents: rs('missingAuthPrevEvents', P.object('event', { authEventIDs: P.list(P.eventID()), prevEventIDs: P.list(P.eventID()) })),
  snapshotsForEventIDs: rs('snapshotsForEventIDs', P.list(P.eventID())),
  eventMetadata: rs('eventMetadata', P.list(P.eventID())),
  roomInfoByNID: rs('roomInfoByNID', P.nid('room NID', 1)),
  getStateEventsWithEventType: rs('getStateEventsWithEventType', P.roomID(), P.name('event type', 'm.room.member')),
  historyVisibilityForUser: rs('historyVisibilityForUser', P.userID(), P.list(P.eventID())),
  historyVisibilityForServer: rs('historyVisibilityForServer', P.name('server name', 'example.org'), P.list(P.eventID())),
  getLeftUsers: rs('getLeftUsers', P.list(P.userID())),
  getEmptyRooms: rs('getEmptyRooms', P.optional(P.list(P.roomID()))),
  getBulkStateACLs: rs('getBulkStateACLs', P.list(P.roomID())),
};

const keys: Catalogue<KeyDatabase> = {
  partitionOffsets: ks('partitionOffsets', P.name('topic', 'hostile.topic')),
  setPartitionOffset: ks('setPartitionOffset', P.name('topic', 'hostile.topic'), P.count('partition', 0), P.integer('offset', 5)),
  existingOneTimeKeys: ks('existingOneTimeKeys', P.userID(), P.name('device ID', 'DEV'), P.list(keyName())),
  storeOneTimeKeys: ks('storeOneTimeKeys', P.object('one-time keys', {
    userID: P.userID(), deviceID: P.name('device ID', 'DEV'), keyJSON: map('key JSON', keyName(), P.json('key JSON', '{"k":1}')),
  })),
  oneTimeKeysCount: ks('oneTimeKeysCount', P.userID(), P.name('device ID', 'DEV')),
  storeFallbackKeys: ks('storeFallbackKeys', P.object('fallback keys', {
    userID: P.userID(), deviceID: P.name('device ID', 'DEV'), keyJSON: map('key JSON', keyName(), P.json('key JSON', '{"k":1,"fallback":true}')),
  })),
  unusedFallbackKeyAlgorithms: ks('unusedFallbackKeyAlgorithms', P.userID(), P.name('device ID', 'DEV')),
  claimKeys: ks('claimKeys', map('claim', P.userID(), map('devices', P.name('device ID', 'DEV'), P.name('algorithm', 'signed_curve25519')))),
  deviceKeysJSON: ks('deviceKeysJSON', P.list(P.object('device', { userID: P.userID(), deviceID: P.name('device ID', 'DEV') }))),
  prevIDsExists: ks('prevIDsExists', P.userID(), P.list(P.count('stream ID', 1))),
  storeLocalDeviceKeys: ks('storeLocalDeviceKeys', P.list(deviceMessage(false))),
  storeRemoteDeviceKeys: ks('storeRemoteDeviceKeys', P.list(deviceMessage(true)), P.list(P.userID())),
  deviceKeysForUser: ks('deviceKeysForUser', P.userID(), P.list(P.name('device ID', 'DEV')), P.optional(P.bool('includeEmpty', true))),
  deleteDeviceKeys: ks('deleteDeviceKeys', P.userID(), P.list(P.name('device ID', 'DEV'))),
  storeKeyChange: ks('storeKeyChange', P.userID()),
  keyChanges: ks('keyChanges', P.integer('from offset', 0), P.integer('to offset', 10)),
  staleDeviceLists: ks('staleDeviceLists', P.list(P.name('domain', 'example.org'))),
  markDeviceListStale: ks('markDeviceListStale', P.userID(), P.bool('is stale', true)),
  deleteStaleDeviceLists: ks('deleteStaleDeviceLists', P.list(P.userID())),
  crossSigningKeysForUser: ks('crossSigningKeysForUser', P.userID()),
  crossSigningKeysDataForUser: ks('crossSigningKeysDataForUser', P.userID()),
  crossSigningSigsForTarget: ks('crossSigningSigsForTarget', P.userID('@carol:example.org'), P.userID(), P.name('key ID', 'ed25519:AAAA')),
  storeCrossSigningKeysForUser: ks('storeCrossSigningKeysForUser', P.userID(),
    map('cross-signing keys', { name: 'purpose', valid: 1, bad: [['4', 4], ['a string', '1'], ['null', null]] },
      { name: 'key', valid: 'AAAA', bad: [...notString, ...illFormed(''), ['not base64', 'a b']] })),
  storeCrossSigningSigsForTarget: ks('storeCrossSigningSigsForTarget', P.userID(), P.name('origin key ID', 'ed25519:AAAA'), P.userID('@bob:example.org'),
    P.name('target key ID', 'ed25519:BBBB'), { name: 'signature', valid: 'c2ln', bad: [...notString, ...illFormed(''), ['not base64', '!!']] }),
};

const keyBackup: Catalogue<KeyBackupDatabase> = {
  createKeyBackup: on('keyBackup', 'createKeyBackup', P.userID(), P.name('algorithm', 'm.megolm_backup.v1'), P.json('auth data', '{}')),
  updateKeyBackupAuthData: on('keyBackup', 'updateKeyBackupAuthData', P.userID(), version(), P.json('auth data', '{}')),
  deleteKeyBackup: on('keyBackup', 'deleteKeyBackup', P.userID(), version()),
  getKeyBackup: on('keyBackup', 'getKeyBackup', P.userID(), { ...version(), bad: version().bad.filter(([label]) => label !== 'empty') }),
  getBackupKeys: on('keyBackup', 'getBackupKeys', P.userID(), version(), P.object('filter', { roomID: P.optional(P.roomID()), sessionID: P.optional(P.name('session ID', 'S1')) })),
  countBackupKeys: on('keyBackup', 'countBackupKeys', P.userID(), version()),
  upsertBackupKeys: on('keyBackup', 'upsertBackupKeys', P.userID(), version(), P.list(backupUpload())),
};

const sendToDevice: Catalogue<SendToDeviceDatabase> = {
  storeNewSendForDeviceMessage: on('sendToDevice', 'storeNewSendForDeviceMessage', P.userID(), P.name('device ID', 'DEV'),
    P.object('message', { sender: P.userID(), type: P.name('type', 'm.test'), content: { name: 'content', valid: {}, bad: [['null', null], ['an array', []]] } })),
  sendToDeviceUpdatesForSync: on('sendToDevice', 'sendToDeviceUpdatesForSync', P.userID(), P.name('device ID', 'DEV'), P.count('from', 0), P.count('to', 10)),
  cleanSendToDeviceUpdates: on('sendToDevice', 'cleanSendToDeviceUpdates', P.userID(), P.name('device ID', 'DEV'), P.count('up to', 1)),
  // Valid arguments delete nothing the seed stored: a cut at 1 ms after 1970, retention off.
  deleteSendToDeviceMessagesSentBefore: on('sendToDevice', 'deleteSendToDeviceMessagesSentBefore', P.count('before', 1), P.optional(P.fn())),
  deleteExpiredSendToDeviceMessages: on('sendToDevice', 'deleteExpiredSendToDeviceMessages', P.count('now', 1), P.optional(P.fn())),
  maxStreamPositionForSendToDeviceMessages: 'takes no input',
};

const federation: Catalogue<FederationBlacklistDatabase> = {
  addServerToBlacklist: on('federation', 'addServerToBlacklist', P.name('server name', 'evil.example')),
  removeServerFromBlacklist: on('federation', 'removeServerFromBlacklist', P.name('server name', 'evil.example')),
  removeAllServersFromBlacklist: 'takes no input',
  isServerBlacklisted: on('federation', 'isServerBlacklisted', P.name('server name', 'evil.example')),
};

const partitionStorer: Catalogue<PartitionStorer> = {
  partitionOffsets: on('partitionStorer', 'partitionOffsets', P.name('topic', 'hostile.topic')),
  setPartitionOffset: on('partitionStorer', 'setPartitionOffset', P.name('topic', 'hostile.topic'), P.count('partition', 0), P.integer('offset', 5)),
};

export const HOSTILE_CATALOGUE = { roomserver, keys, keyBackup, sendToDevice, federation, partitionStorer } as const;

/** Every (method, parameter, bad value) call of the catalogue. */
export function hostileCalls(api: keyof typeof HOSTILE_CATALOGUE): { label: string; run: (s: Storage) => Promise<unknown> }[] {
  const out: { label: string; run: (s: Storage) => Promise<unknown> }[] = [];
  for (const [method, c] of Object.entries(HOSTILE_CATALOGUE[api]) as [string, MethodCase | string][]) {
    if (typeof c === 'string') continue;
    c.params.forEach((param, i) => {
      for (const [label, value] of param.bad) {
        const args = c.params.map((p, j) => (j === i ? value : p.valid));
        out.push({ label: `${api}.${method}: ${param.name} (argument ${i + 1}) ${label}`, run: (s) => c.call(s, args) });
      }
    });
  }
  return out;
}

/**
 * A PDU of the room version with every field its schema requires: an m.room.topic (a state event, so that one
 * wrongly accepted would change the room's state) in a room the store does not hold (its version is the one the
 * import is given), or that room's create event. Its content hash is right.
 */
function completePDU(roomVersion: string, create = false): Record<string, unknown> {
  const rules = roomVersionRules(roomVersion);
  const pdu: Record<string, unknown> = create
    ? { type: 'm.room.create', state_key: '', content: { room_version: roomVersion, ...(rules.createContentHasCreator ? { creator: '@alice:example.org' } : {}) } }
    : { type: 'm.room.topic', state_key: '', content: { topic: 'hostile' }, room_id: '!pdu-fields:example.org' };
  if (create && !rules.roomIDFromCreateEvent) pdu.room_id = '!pdu-fields:example.org';
  Object.assign(pdu, { sender: '@alice:example.org', depth: 7, origin_server_ts: 1_700_000_000_000, signatures: { 'example.org': { 'ed25519:k': 'c2ln' } } });
  const ref = (id: string) => (rules.eventReferences === 'pairs' ? [id, { sha256: 'aGFzaA' }] : id);
  pdu.prev_events = create ? [] : [ref('$pdu-fields-create:example.org')];
  pdu.auth_events = create ? [] : [ref('$pdu-fields-create:example.org')];
  if (rules.eventID === 'stated') pdu.event_id = `$pdu-fields-${roomVersion}:example.org`;
  return withContentHash(pdu, roomVersion);
}

const withContentHash = (pdu: Record<string, unknown>, roomVersion: string) => ({ ...pdu, hashes: { sha256: contentHash(pdu, roomVersion) } });

/**
 * The PDU without one required field (its content hash recomputed, so that the missing field is its only fault),
 * for every field the room version's schema requires, hashes.sha256 included.
 */
function pdusMissingAField(roomVersion: string, create = false): { field: string; pdu: Record<string, unknown> }[] {
  const complete = completePDU(roomVersion, create);
  const out = requiredPDUFields(roomVersionRules(roomVersion), complete).map((field) => {
    const { [field]: _, ...rest } = complete;
    return { field, pdu: field === 'hashes' ? rest : withContentHash(rest, roomVersion) };
  });
  return [...out, { field: 'hashes.sha256', pdu: { ...complete, hashes: {} } }];
}

/** A store with a little of everything, so that a bad call has something it could damage. */
async function seedEverything(storage: Storage): Promise<void> {
  await seedRoom(storage);
  await storage.roomserver.setRoomAlias('#room:example.org', '!room:example.org', '@alice:example.org');
  await storage.keys.storeLocalDeviceKeys([{ userID: '@alice:example.org', deviceID: 'DEV', keyJSON: '{"k":1}', streamID: 0 }]);
  await storage.keys.storeOneTimeKeys({ userID: '@alice:example.org', deviceID: 'DEV', keyJSON: new Map([['signed_curve25519:AAAA', '{"k":1}']]) });
  await storage.keyBackup.createKeyBackup('@alice:example.org', 'm.megolm_backup.v1', '{}');
  await storage.sendToDevice.storeNewSendForDeviceMessage('@alice:example.org', 'DEV', { sender: '@bob:example.org', type: 'm.test', content: {} });
  await storage.federation.addServerToBlacklist('evil.example');
  await storage.partitionStorer.setPartitionOffset('hostile.topic', 0, 3);
}

export function hostileInputTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Database: the hostile-input catalogue', (test) => {
    test('the store fingerprint stays put across reads and moves with any write', async ({ storage }) => {
      await seedEverything(storage);
      const first = await storage.stats.fingerprint();
      await storage.roomserver.currentState('!room:example.org');
      await storage.keys.deviceKeysForUser('@alice:example.org', []);
      expect(await storage.stats.fingerprint()).to.equal(first).and.match(/^[0-9a-f]{64}$/);
      await storage.federation.addServerToBlacklist('another.example');
      const second = await storage.stats.fingerprint();
      expect(second).to.not.equal(first);
      await storage.roomserver.publishRoom('!room:example.org', true);
      expect(await storage.stats.fingerprint()).to.not.equal(second);
    });

    test('a PDU without a field its room version requires is refused by parsePDU, parseEvent and import, naming the field; nothing is written', async ({ storage }) => {
      await seedEverything(storage);
      const before = await storage.stats.fingerprint();
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-pdu-fields-'));
      const wrong: string[] = [];
      let cases = 0;
      try {
        for (const version of ROOM_VERSIONS.keys()) {
          // The complete PDUs pass, so that each refusal below is the missing field's.
          for (const create of [false, true]) parsePDU(completePDU(version, create), version);
          for (const create of [false, true]) {
            for (const { field, pdu } of pdusMissingAField(version, create)) {
              cases++;
              const label = `room version ${version}${create ? ' create event' : ''} without ${field}`;
              const missing = new RegExp(`^${field.replace('.', '\\.')} is missing`);
              const refusal = (call: () => unknown): Error | undefined => { try { call(); } catch (e) { return e as Error; } return undefined; };
              const byPDU = refusal(() => parsePDU(JSON.stringify(pdu), version));
              if (!(byPDU instanceof InvalidInputError) || !missing.test(byPDU.message)) wrong.push(`${label}: parsePDU ${byPDU?.message ?? 'accepted it'}`);
              // parseEvent checks no hash or signature, so it needs neither; it needs every other field.
              if (field !== 'hashes' && field !== 'hashes.sha256' && field !== 'signatures') {
                const byEvent = refusal(() => parseEvent(JSON.stringify(pdu), { roomVersion: version }));
                if (!(byEvent instanceof InvalidInputError) || !missing.test(byEvent.message)) wrong.push(`${label}: parseEvent ${byEvent?.message ?? 'accepted it'}`);
              }
              const file = path.join(dir, `v${version}-${create}-${field}.jsonl`);
              // A blank first line: the refusal must name the PDU's line in the file, not its count.
              fs.writeFileSync(file, `\n${JSON.stringify(pdu)}\n`);
              let byImport: unknown;
              try { await importPDUFile(storage, file, { roomVersion: version }); } catch (e) { byImport = e; }
              if (!(byImport instanceof ImportStoppedError) || !(byImport.reason instanceof InvalidInputError)
                || !byImport.message.includes(`line 2: ${field} is missing`)) wrong.push(`${label}: import ${(byImport as Error)?.message ?? 'accepted it'}`);
            }
          }
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      expect(cases).to.be.greaterThan(12 * 2 * 10);
      expect(wrong, wrong.slice(0, 20).join('\n')).to.deep.equal([]);
      expect(await storage.stats.fingerprint(), 'the store changed').to.equal(before);
    });

    test('a PDU whose required field has the wrong JSON type is refused before its content hash is checked', async () => {
      const complete = completePDU('10');
      const cases: [string, unknown, RegExp][] = [
        ['content', 'a topic', /^content must be a JSON object/], ['content', null, /^content must be a JSON object/],
        ['hashes', 'aGFzaA', /^hashes must be a JSON object/], ['signatures', [], /^signatures must be a JSON object/],
        ['prev_events', '$msg', /^prev_events must be an array/], ['auth_events', {}, /^auth_events must be an array/],
        ['depth', 1.5, /^depth must be an integer/], ['origin_server_ts', '1', /^origin_server_ts must be a number/],
        ['sender', 5, /^sender must be a string/], ['type', [], /^type must be a string/], ['room_id', null, /^room_id must be a string/],
      ];
      for (const [field, value, pattern] of cases) {
        // The content hash no longer matches: were the type not checked first, the PDU would be kept redacted.
        let err: unknown;
        try { parsePDU({ ...complete, [field]: value }, '10'); } catch (e) { err = e; }
        expect(err, `${field}: ${JSON.stringify(value)}`).to.be.instanceOf(InvalidInputError);
        expect((err as Error).message, field).to.match(pattern);
      }
      let err: unknown;
      try { parsePDU({ ...complete, hashes: { sha256: 5 } }, '10'); } catch (e) { err = e; }
      expect((err as Error).message).to.match(/^hashes\.sha256 must be a string, got the number 5/);
    });

    for (const api of Object.keys(HOSTILE_CATALOGUE) as (keyof typeof HOSTILE_CATALOGUE)[]) {
      const calls = hostileCalls(api);
      test(`${api}: ${calls.length} calls with bad input are InvalidInputErrors with short messages, and change nothing`, async ({ storage }) => {
        await seedEverything(storage);
        const before = await storage.stats.fingerprint();
        const wrong: string[] = [];
        for (const { label, run } of calls) {
          let error: unknown;
          try {
            const pending = run(storage);
            if (!(pending instanceof Promise)) { wrong.push(`${label}: returned no promise`); continue; }
            await pending;
          } catch (e) {
            error = e;
          }
          if (!(error instanceof InvalidInputError)) wrong.push(`${label}: ${error === undefined ? 'accepted' : `${(error as Error)?.name}: ${String((error as Error)?.message).slice(0, 120)}`}`);
          else if (error.message.length > 300) wrong.push(`${label}: a ${error.message.length}-character message`);
        }
        expect(wrong, wrong.slice(0, 20).join('\n')).to.deep.equal([]);
        expect(await storage.stats.fingerprint(), 'the store changed').to.equal(before);
      });
    }
  });
}

import { inject, injectable } from 'inversify';
import { TOKENS } from '../../di/tokens.js';
import { InvalidInputError } from '../../types/errors.js';
import { checkBoolean, checkCount, checkInteger, checkList, checkMap, checkUserID, preview } from '../../types/input.js';
import {
  checkAlgorithm, checkBase64, checkID, checkServerName, checkText, CROSS_SIGNING_USAGE, ed25519KeyID, isCrossSigningKeyPurpose, OFFSET_NEWEST, splitAlgorithmKeyID, type CrossSigningKey, type CrossSigningKeyPurpose
} from '../../types/keys.js';
import type {
  DeviceMessage, FallbackKeys, KeyserverTables, OneTimeKeys, OneTimeKeysCount, PartitionOffset, PartitionStorer, UnitOfWork,
} from '../tables/index.js';
import { unique } from './contracts.js';

/** user ID -> device ID -> algorithm: which one-time keys a claim asks for. */
export type ClaimRequest = ReadonlyMap<string, ReadonlyMap<string, string>>;

/** A device message's identity and payload; the stream ID too when the caller assigns it (remote keys). */
function checkDeviceMessage(what: string, m: unknown, withStreamID: boolean): DeviceMessage {
  if (typeof m !== 'object' || m === null) throw new InvalidInputError(`${what} must be a device message, got ${preview(m)}`);
  const d = m as DeviceMessage;
  checkUserID(`${what}.userID`, d.userID);
  checkID(`${what}.deviceID`, d.deviceID);
  checkText(`${what}.keyJSON`, d.keyJSON);
  if (d.displayName !== undefined) checkText(`${what}.displayName`, d.displayName);
  if (withStreamID) checkCount(`${what}.streamID`, d.streamID);
  return d;
}

/**
 * The key server's Database (Dendrite's keyserver storage), written once over the key server tables. It embeds
 * the PartitionStorer it receives through DI (TOKENS.PartitionStorer), whichever implementation the driver chose.
 *
 * Every input is checked (InvalidInputError naming the field) before anything is written. Multi-write
 * operations run in one transaction and are also ordered to be safe without one (README, "Architecture"): every
 * write below is an idempotent upsert or delete, and where order matters it is noted.
 */
@injectable()
export class KeyDatabase implements PartitionStorer {
  constructor(
    @inject(TOKENS.UnitOfWork) readonly uow: UnitOfWork,
    @inject(TOKENS.KeyserverTables) readonly tables: KeyserverTables,
    @inject(TOKENS.PartitionStorer) readonly partitionStorer: PartitionStorer,
  ) {}

  private get auto() {
    return this.uow.autocommit;
  }

  // ---- PartitionStorer (delegated) ----

  partitionOffsets(topic: string): Promise<PartitionOffset[]> {
    return this.partitionStorer.partitionOffsets(topic);
  }

  setPartitionOffset(topic: string, partition: number, offset: number): Promise<void> {
    return this.partitionStorer.setPartitionOffset(topic, partition, offset);
  }

  // ---- One-time keys ----

  /** The named keys ("algorithm:keyID") that exist, with their JSON; missing ones are absent. */
  async existingOneTimeKeys(userID: string, deviceID: string, keyIDsWithAlgorithms: readonly string[]): Promise<Map<string, string>> {
    checkUserID('user ID', userID);
    checkID('device ID', deviceID);
    checkList<string>('key IDs', keyIDsWithAlgorithms).forEach((k, i) => splitAlgorithmKeyID(`key IDs[${i}]`, k));
    return this.tables.oneTimeKeys.selectOneTimeKeys(this.auto, userID, deviceID, keyIDsWithAlgorithms);
  }

  /** Stores (or replaces) the device's one-time keys and returns its counts per algorithm afterwards. */
  async storeOneTimeKeys(keys: OneTimeKeys): Promise<OneTimeKeysCount> {
    if (typeof keys !== 'object' || keys === null) throw new InvalidInputError(`one-time keys must be an object, got ${preview(keys)}`);
    checkUserID('userID', keys.userID);
    checkID('deviceID', keys.deviceID);
    for (const [name, json] of checkMap<string, string>('keyJSON', keys.keyJSON)) {
      splitAlgorithmKeyID(`keyJSON key ${preview(name)}`, name);
      checkText(`keyJSON[${preview(name)}]`, json);
    }
    return this.uow.transaction((tx) => this.tables.oneTimeKeys.insertOneTimeKeys(tx, keys));
  }

  async oneTimeKeysCount(userID: string, deviceID: string): Promise<OneTimeKeysCount> {
    checkUserID('user ID', userID);
    checkID('device ID', deviceID);
    return this.tables.oneTimeKeys.countOneTimeKeys(this.auto, userID, deviceID);
  }

  /**
   * Claims one key per (user, device, algorithm) asked for, deleting it: each key is handed out once, however many
   * claims run at the same time. A device with no one-time key of that algorithm left hands out its fallback key of
   * the algorithm instead, marked used and kept (later such claims get it again until a new one is uploaded);
   * devices with neither are skipped. The result lists one OneTimeKeys (with one key) per successful claim, in
   * request order.
   *
   * A key a claim has taken (its commit point) is handed out, and a claim that fails before that leaves its key
   * claimable: no key is ever lost between the two. With transactions, a failing claim rolls the call back and it
   * throws, every key left. Without (Cosmos DB), each claim commits on its own, so a claim that fails after others
   * took theirs cannot undo them: the call hands out the keys taken and leaves the failed device out, as one with
   * no key (its key stays claimable); it throws only if no claim took a key.
   */
  async claimKeys(request: ClaimRequest): Promise<OneTimeKeys[]> {
    const claims: [string, string, string][] = [];
    for (const [userID, devices] of checkMap<string, ReadonlyMap<string, string>>('claim request', request)) {
      checkUserID('claim request user ID', userID);
      for (const [deviceID, algorithm] of checkMap<string, string>(`claim request for ${preview(userID)}`, devices)) {
        checkID(`claim request device ID of ${preview(userID)}`, deviceID);
        checkAlgorithm(`claim request algorithm for ${preview(userID)} ${preview(deviceID)}`, algorithm);
        claims.push([userID, deviceID, algorithm]);
      }
    }
    if (claims.length === 0) return [];
    return this.uow.transaction(async (tx) => {
      const out: OneTimeKeys[] = [];
      let failure: unknown;
      for (const [userID, deviceID, algorithm] of claims) {
        let key: readonly [string, string] | null;
        try {
          key = await this.tables.oneTimeKeys.selectAndDeleteOneTimeKey(tx, userID, deviceID, algorithm)
            ?? await this.tables.fallbackKeys.claimFallbackKey(tx, userID, deviceID, algorithm);
        } catch (e) {
          if (this.uow.atomicTransactions) throw e;
          failure ??= e;
          continue;
        }
        if (key) out.push({ userID, deviceID, keyJSON: new Map([key]) });
      }
      if (failure !== undefined && out.length === 0) throw failure;
      return out;
    });
  }

  // ---- Fallback keys ----

  /**
   * Stores the device's fallback keys ("algorithm:keyID" -> key JSON, one per algorithm at most; InvalidInputError,
   * before anything is written, for two of one algorithm). Each replaces the algorithm's previous key and is unused
   * until a claim hands it out; uploading the key that is stored again changes nothing (it stays used if it was).
   * The device's keys of other algorithms are kept.
   */
  async storeFallbackKeys(keys: FallbackKeys): Promise<void> {
    if (typeof keys !== 'object' || keys === null) throw new InvalidInputError(`fallback keys must be an object, got ${preview(keys)}`);
    checkUserID('userID', keys.userID);
    checkID('deviceID', keys.deviceID);
    const rows: [string, string, string][] = [];
    const seen = new Set<string>();
    for (const [name, json] of checkMap<string, string>('keyJSON', keys.keyJSON)) {
      const { algorithm, keyID } = splitAlgorithmKeyID(`keyJSON key ${preview(name)}`, name);
      checkText(`keyJSON[${preview(name)}]`, json);
      if (seen.has(algorithm)) throw new InvalidInputError(`keyJSON holds two fallback keys of algorithm ${preview(algorithm)}; a device has one per algorithm`);
      seen.add(algorithm);
      rows.push([algorithm, keyID, json]);
    }
    if (rows.length === 0) return;
    await this.uow.transaction((tx) => this.tables.fallbackKeys.upsertFallbackKeys(tx, keys.userID, keys.deviceID, rows));
  }

  /** The algorithms of the device's fallback keys no claim has used yet, sorted (/sync's device_unused_fallback_key_types). */
  async unusedFallbackKeyAlgorithms(userID: string, deviceID: string): Promise<string[]> {
    checkUserID('user ID', userID);
    checkID('device ID', deviceID);
    return this.tables.fallbackKeys.selectUnusedFallbackKeyAlgorithms(this.auto, userID, deviceID);
  }

  // ---- Device keys ----

  /**
   * Fills each message in place with the stored key JSON, stream ID and display name; an unknown device gets
   * keyJSON "" and stream ID 0, with no error.
   */
  async deviceKeysJSON(messages: DeviceMessage[]): Promise<void> {
    checkList<DeviceMessage>('messages', messages).forEach((m, i) => {
      checkUserID(`messages[${i}].userID`, m?.userID);
      checkID(`messages[${i}].deviceID`, m.deviceID);
    });
    await this.tables.deviceKeys.selectDeviceKeysJSON(this.auto, messages);
  }

  /** True if the user has a device at every one of these stream IDs (repeats count once); true for none. */
  async prevIDsExists(userID: string, prevIDs: readonly number[]): Promise<boolean> {
    checkUserID('user ID', userID);
    checkList<number>('previous stream IDs', prevIDs).forEach((id, i) => checkCount(`previous stream IDs[${i}]`, id));
    const wanted = unique(prevIDs);
    if (wanted.length === 0) return true;
    return (await this.tables.deviceKeys.countStreamIDsForUser(this.auto, userID, wanted)) === wanted.length;
  }

  /**
   * Stores this server's users' device keys, giving each message the user's next stream ID, in input order
   * (max + 1 upward per user, 1 for a new user), and writes the IDs back to the caller's messages once the
   * transaction has committed (never IDs that were rolled back).
   *
   * The IDs are distinct and gapless per user even when uploads for one user run concurrently, because
   * `reserveStreamIDs` hands out a range no concurrent reservation can overlap. On SQL it is max + 1 read under
   * the transaction's write lock (SQLite's single writer; a per-user transaction lock on PostgreSQL), and the rows
   * are written before that lock is released. A lock-free driver (Cosmos DB) cannot lean on this transaction: it
   * must implement `reserveStreamIDs` as one atomic increment of a per-user counter document by the batch size,
   * so that the reservation itself is the commit point for the IDs; the device upserts after it are idempotent,
   * and a crash between them leaves at most a gap, never a duplicate ID.
   */
  async storeLocalDeviceKeys(messages: DeviceMessage[]): Promise<void> {
    checkList<DeviceMessage>('messages', messages).forEach((m, i) => checkDeviceMessage(`messages[${i}]`, m, false));
    if (messages.length === 0) return;
    const perUser = new Map<string, number[]>();
    messages.forEach((m, i) => {
      const indexes = perUser.get(m.userID) ?? [];
      indexes.push(i);
      perUser.set(m.userID, indexes);
    });
    const assigned = await this.uow.transaction(async (tx) => {
      const ids = new Array<number>(messages.length);
      // Users in one order (sorted by ID), whatever the input order: a reservation may hold a lock on its user until
      // the transaction ends (PostgreSQL), and two uploads that took two users' locks in opposite orders would
      // deadlock. IDs are per user, so the order across users changes none of them.
      for (const [userID, indexes] of [...perUser].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) {
        const first = await this.tables.deviceKeys.reserveStreamIDs(tx, userID, indexes.length);
        indexes.forEach((messageIndex, n) => (ids[messageIndex] = first + n));
      }
      const rows = messages.map((m, i): DeviceMessage => ({
        userID: m.userID, deviceID: m.deviceID, keyJSON: m.keyJSON, streamID: ids[i]!,
        ...(m.displayName !== undefined ? { displayName: m.displayName } : {}),
      }));
      await this.tables.deviceKeys.insertDeviceKeys(tx, rows);
      return ids;
    });
    messages.forEach((m, i) => (m.streamID = assigned[i]!));
  }

  /**
   * Stores other servers' users' device keys with the stream IDs they were given. The devices of each user in
   * `clearUserIDs` that this call does not mention are deleted: the user's list becomes exactly what was sent.
   * Order (safe without a transaction): the new rows first, then the deletions of what they replace, so a crash
   * never leaves a cleared user with fewer devices than either the old or the new list.
   */
  async storeRemoteDeviceKeys(messages: readonly DeviceMessage[], clearUserIDs: readonly string[]): Promise<void> {
    checkList<DeviceMessage>('messages', messages).forEach((m, i) => checkDeviceMessage(`messages[${i}]`, m, true));
    checkList<string>('users to clear', clearUserIDs).forEach((u, i) => checkUserID(`users to clear[${i}]`, u));
    await this.uow.transaction(async (tx) => {
      if (messages.length > 0) await this.tables.deviceKeys.insertDeviceKeys(tx, messages);
      for (const userID of unique(clearUserIDs)) {
        const keep = messages.filter((m) => m.userID === userID).map((m) => m.deviceID);
        await this.tables.deviceKeys.deleteAllDeviceKeys(tx, userID, keep);
      }
    });
  }

  /** The user's devices with keys, limited to `deviceIDs` unless it is empty; sorted by device ID. */
  async deviceKeysForUser(userID: string, deviceIDs: readonly string[], includeEmpty = false): Promise<DeviceMessage[]> {
    checkUserID('user ID', userID);
    checkList<string>('device IDs', deviceIDs).forEach((d, i) => checkID(`device IDs[${i}]`, d));
    checkBoolean('includeEmpty', includeEmpty);
    return this.tables.deviceKeys.selectBatchDeviceKeys(this.auto, userID, deviceIDs, includeEmpty);
  }

  /**
   * Deletes the devices' keys. For each device, the cross-signing signatures of it and its fallback keys go first
   * and its row last, so a crash never leaves signatures or fallback keys of a device that is gone; a retry
   * finishes the job. No-op for unknown devices.
   */
  async deleteDeviceKeys(userID: string, deviceIDs: readonly string[]): Promise<void> {
    checkUserID('user ID', userID);
    checkList<string>('device IDs', deviceIDs).forEach((d, i) => checkID(`device IDs[${i}]`, d));
    if (deviceIDs.length === 0) return;
    await this.uow.transaction(async (tx) => {
      for (const deviceID of unique(deviceIDs)) {
        await this.tables.crossSigningSigs.deleteCrossSigningSigsForTarget(tx, userID, deviceID);
        await this.tables.fallbackKeys.deleteFallbackKeys(tx, userID, deviceID);
        await this.tables.deviceKeys.deleteDeviceKeys(tx, userID, deviceID);
      }
    });
  }

  // ---- Key changes ----

  /** Records that the user's keys changed and returns the change's position (greater than any before). */
  async storeKeyChange(userID: string): Promise<number> {
    checkUserID('user ID', userID);
    return this.uow.transaction((tx) => this.tables.keyChanges.insertKeyChange(tx, userID));
  }

  /**
   * Users whose latest change is in (fromOffset, toOffset] (toOffset OFFSET_NEWEST: no upper bound), each once,
   * sorted, and the latest position among them (fromOffset if none).
   */
  async keyChanges(fromOffset: number, toOffset: number): Promise<{ userIDs: string[]; latestOffset: number }> {
    checkInteger('from offset', fromOffset);
    if (toOffset !== OFFSET_NEWEST) checkInteger('to offset', toOffset);
    return this.tables.keyChanges.selectKeyChanges(this.auto, fromOffset, toOffset);
  }

  // ---- Stale device lists ----

  /** Users whose device lists are stale, on any of the domains (all domains if the list is empty); sorted. */
  async staleDeviceLists(domains: readonly string[]): Promise<string[]> {
    checkList<string>('domains', domains).forEach((d, i) => checkServerName(`domains[${i}]`, d));
    return this.tables.staleDeviceLists.selectUserIDsWithStaleDeviceLists(this.auto, domains);
  }

  async markDeviceListStale(userID: string, isStale: boolean): Promise<void> {
    checkUserID('user ID', userID);
    checkBoolean('is stale', isStale);
    await this.uow.transaction((tx) => this.tables.staleDeviceLists.insertStaleDeviceList(tx, userID, isStale));
  }

  /** Forgets the users' stale flags (no-op for users not listed). */
  async deleteStaleDeviceLists(userIDs: readonly string[]): Promise<void> {
    checkList<string>('user IDs', userIDs).forEach((u, i) => checkUserID(`user IDs[${i}]`, u));
    if (userIDs.length === 0) return;
    await this.uow.transaction((tx) => this.tables.staleDeviceLists.deleteStaleDeviceLists(tx, userIDs));
  }

  // ---- Cross-signing ----

  /**
   * The user's cross-signing keys by purpose, each with key ID `ed25519:<unpadded base64>`, its usage, and only
   * the signatures the user made (signatures by other users are left out). An empty map if none.
   */
  async crossSigningKeysForUser(userID: string): Promise<Map<CrossSigningKeyPurpose, CrossSigningKey>> {
    checkUserID('user ID', userID);
    const data = await this.tables.crossSigningKeys.selectCrossSigningKeysForUser(this.auto, userID);
    const out = new Map<CrossSigningKeyPurpose, CrossSigningKey>();
    for (const [purpose, keyData] of data) {
      const keyID = ed25519KeyID(keyData);
      const sigs = await this.tables.crossSigningSigs.selectCrossSigningSigsForTarget(this.auto, userID, keyID);
      const own = sigs.get(userID);
      out.set(purpose, {
        userID,
        usage: [CROSS_SIGNING_USAGE[purpose]],
        keys: new Map([[keyID, keyData.replace(/=+$/, '')]]),
        signatures: own ? new Map([[userID, own]]) : new Map(),
      });
    }
    return out;
  }

  /** purpose -> key data as stored; an empty map if none. */
  async crossSigningKeysDataForUser(userID: string): Promise<Map<CrossSigningKeyPurpose, string>> {
    checkUserID('user ID', userID);
    return this.tables.crossSigningKeys.selectCrossSigningKeysForUser(this.auto, userID);
  }

  /**
   * origin user -> (origin key ID -> signature) for the target key; an empty map if none. Given an origin user
   * first (Dendrite's CrossSigningSigsForTarget(originUserID, targetUserID, targetKeyID)), only the signatures that
   * user and the target user made: what a requester may see of another user's keys.
   */
  crossSigningSigsForTarget(targetUserID: string, targetKeyID: string): Promise<Map<string, Map<string, string>>>;
  crossSigningSigsForTarget(originUserID: string, targetUserID: string, targetKeyID: string): Promise<Map<string, Map<string, string>>>;
  async crossSigningSigsForTarget(...args: unknown[]): Promise<Map<string, Map<string, string>>> {
    const withOrigin = args.length >= 3;
    const [originUserID, targetUserID, targetKeyID] = withOrigin ? args : [undefined, ...args];
    if (withOrigin) checkUserID('origin user ID', originUserID);
    checkUserID('target user ID', targetUserID);
    checkID('target key ID', targetKeyID);
    const sigs = await this.tables.crossSigningSigs.selectCrossSigningSigsForTarget(this.auto, targetUserID as string, targetKeyID as string);
    if (!withOrigin) return sigs;
    return new Map([...sigs].filter(([origin]) => origin === originUserID || origin === targetUserID));
  }

  /** Upserts each of the user's keys (purpose -> base64 key data); the others are kept. Each upsert is idempotent. */
  async storeCrossSigningKeysForUser(userID: string, keys: ReadonlyMap<CrossSigningKeyPurpose, string>): Promise<void> {
    checkUserID('user ID', userID);
    for (const [purpose, keyData] of checkMap<CrossSigningKeyPurpose, string>('cross-signing keys', keys)) {
      if (!isCrossSigningKeyPurpose(purpose)) {
        throw new InvalidInputError(`cross-signing key purpose must be 1 (master), 2 (self-signing) or 3 (user-signing), got ${preview(purpose)}`);
      }
      checkBase64(`cross-signing key data (${CROSS_SIGNING_USAGE[purpose]})`, keyData);
    }
    if (keys.size === 0) return;
    await this.uow.transaction(async (tx) => {
      for (const [purpose, keyData] of keys) await this.tables.crossSigningKeys.upsertCrossSigningKeysForUser(tx, userID, purpose, keyData);
    });
  }

  /** Upserts one signature: an origin user keeps one signature per target key (a new one replaces the old). */
  async storeCrossSigningSigsForTarget(
    originUserID: string, originKeyID: string, targetUserID: string, targetKeyID: string, signature: string,
  ): Promise<void> {
    checkUserID('origin user ID', originUserID);
    checkID('origin key ID', originKeyID);
    checkUserID('target user ID', targetUserID);
    checkID('target key ID', targetKeyID);
    checkBase64('signature', signature);
    await this.uow.transaction((tx) =>
      this.tables.crossSigningSigs.upsertCrossSigningSigsForTarget(tx, originUserID, originKeyID, targetUserID, targetKeyID, signature));
  }
}

import { InvalidInputError } from '../../types/errors.js';
import { isCrossSigningKeyPurpose } from '../../types/keys.js';
import { unique } from '../shared/contracts.js';
import type { DumpRows } from '../tables/dump.js';
import { mapLimit, READ_CONCURRENCY } from './bulk.js';
import type { CosmosConnection } from './connection.js';
import type { CosmosDeviceKeysTable } from './device-keys.js';
import type { DumpDocuments, Stored, TableSpecs } from './dump-documents.js';
import { docId } from './ids.js';

/**
 * The tables of a dump outside the room server, in the order of DUMP_TABLES: the federation blacklist, the key
 * server's (device, one-time, fallback and cross-signing keys, key changes, stale device lists), key backups,
 * send-to-device messages and the consumers' partition offsets.
 */
export type OtherTableName =
  | 'federation_blacklist' | 'device_keys' | 'one_time_keys' | 'fallback_keys' | 'key_changes' | 'cross_signing_keys'
  | 'cross_signing_sigs' | 'stale_device_lists' | 'key_backup_versions' | 'key_backups' | 'send_to_device' | 'partition_offsets';

/**
 * How the tables outside the room server are read, written and deleted on Cosmos DB (see CosmosStoreDump for the
 * approach). `deviceKeysTable`: the table whose cache of stream counters a delete must keep true.
 */
export function otherTableSpecs(
  documents: DumpDocuments,
  deviceKeysTable: Partial<Pick<CosmosDeviceKeysTable, 'forgetStreams'>>,
): Pick<TableSpecs, OtherTableName> {
  const conn = documents.conn;
  const pk = (kind: string, ...parts: (string | number)[]) => conn.pk(kind, ...parts);

  return {
    federation_blacklist: documents.documentPerRowTable<DumpRows['federation_blacklist']>({
      kind: 'blacklist',
      rowsOf: (docs) => docs.map((d) => [{ server: String(d.serverName) }]),
      toDoc: (x) => ({ id: docId(x.server), pk: pk('blacklist'), k: 'blacklist', serverName: x.server }),
    }),

    // Device keys in the user's key partition, beside the user's stream counter: one a live writer created is
    // raised past the copied stream IDs; where none exists the driver seeds it from the devices on first use.
    device_keys: documents.documentPerRowTable<DumpRows['device_keys']>({
      kind: 'device_key',
      rowsOf: (docs) => docs.map((d) => [{
        userID: String(d.userID), deviceID: String(d.deviceID), tsAdded: d.tsAdded as number, keyJSON: String(d.keyJSON),
        streamID: d.streamID as number, displayName: typeof d.displayName === 'string' ? d.displayName : null,
      }]),
      toDoc: (x) => ({
        id: docId('dk', x.deviceID), pk: pk('keys', x.userID), k: 'device_key',
        userID: x.userID, deviceID: x.deviceID, keyJSON: x.keyJSON, streamID: x.streamID, displayName: x.displayName, tsAdded: x.tsAdded,
      }),
      after: (rows) => raiseStreamCounters(conn, rows),
      afterDelete: (rows) => removeStreamCountersOfDeviceless(documents, deviceKeysTable, rows.map((x) => x.userID)),
    }),
    // Claimed keys are handed out already (their deletion is only cleanup): not part of the store's content. The
    // driver keeps no upload time: the document's last write stands in for it where a dump did not write one.
    one_time_keys: documents.documentPerRowTable<DumpRows['one_time_keys']>({
      kind: 'otk',
      filter: 'AND NOT IS_DEFINED(c.claim)',
      rowsOf: async (docs) => {
        const users = await documents.userIDsOf(docs, 'userID', 'otk', 2, 0);
        return docs.map((d, i) => [{
          userID: users[i]!, deviceID: typeof d.deviceID === 'string' ? d.deviceID : documents.partPresent(d, documents.partitionParts(d, 'otk', 2)[1]),
          algorithm: String(d.algorithm), keyID: String(d.keyID), tsAdded: typeof d.tsAdded === 'number' ? d.tsAdded : d._ts ?? 0, keyJSON: String(d.json),
        }]);
      },
      toDoc: (x) => ({
        id: docId(x.algorithm, x.keyID), pk: pk('otk', x.userID, x.deviceID), k: 'otk', algorithm: x.algorithm, keyID: x.keyID, json: x.keyJSON,
        userID: x.userID, deviceID: x.deviceID, tsAdded: x.tsAdded,
      }),
    }),
    // Fallback keys in the user's key partition, beside the device keys; every field is in the document.
    fallback_keys: documents.documentPerRowTable<DumpRows['fallback_keys']>({
      kind: 'fbk',
      rowsOf: (docs) => docs.map((d) => [{
        userID: String(d.userID), deviceID: String(d.deviceID), algorithm: String(d.algorithm), keyID: String(d.keyID),
        tsAdded: d.tsAdded as number, keyJSON: String(d.json), used: d.used === true,
      }]),
      toDoc: (x) => ({
        id: docId('fbk', x.deviceID, x.algorithm), pk: pk('keys', x.userID), k: 'fbk',
        userID: x.userID, deviceID: x.deviceID, algorithm: x.algorithm, keyID: x.keyID, json: x.keyJSON, used: x.used, tsAdded: x.tsAdded,
      }),
    }),
    key_changes: documents.documentPerRowTable<DumpRows['key_changes']>({
      kind: 'key_change',
      rowsOf: (docs) => docs.map((d) => [{ userID: String(d.userID), changeID: d.changeID as number }]),
      toDoc: (x) => ({ id: docId(x.userID), pk: pk('keychanges'), k: 'key_change', userID: x.userID, changeID: x.changeID }),
      after: (rows) => documents.raise('order', rows.map((x) => x.changeID)),
    }),
    cross_signing_keys: documents.documentPerRowTable<DumpRows['cross_signing_keys']>({
      kind: 'csk',
      rowsOf: async (docs) => {
        const users = await documents.userIDsOf(docs, 'userID', 'keys', 1, 0);
        return docs.map((d, i) => [{ userID: users[i]!, keyType: d.purpose as number, keyData: String(d.data) }]);
      },
      toDoc: (x) => {
        if (!isCrossSigningKeyPurpose(x.keyType)) throw new InvalidInputError(`cross-signing key purposes are 1, 2 or 3, got ${String(x.keyType)}`);
        return { id: `csk|${x.keyType}`, pk: pk('keys', x.userID), k: 'csk', purpose: x.keyType, data: x.keyData, userID: x.userID };
      },
    }),
    cross_signing_sigs: documents.documentPerRowTable<DumpRows['cross_signing_sigs']>({
      kind: 'css',
      rowsOf: async (docs) => {
        const targets = await documents.userIDsOf(docs, 'targetUserID', 'keys', 1, 0);
        return docs.map((d, i) => [{
          originUserID: String(d.originUserID), originKeyID: String(d.originKeyID), targetUserID: targets[i]!,
          targetKeyID: String(d.targetKeyID), signature: String(d.signature),
        }]);
      },
      toDoc: (x) => ({
        id: docId('css', x.originUserID, x.targetKeyID), pk: pk('keys', x.targetUserID), k: 'css',
        originUserID: x.originUserID, originKeyID: x.originKeyID, targetKeyID: x.targetKeyID, signature: x.signature, targetUserID: x.targetUserID,
      }),
    }),
    stale_device_lists: documents.documentPerRowTable<DumpRows['stale_device_lists']>({
      kind: 'stale',
      rowsOf: (docs) => docs.map((d) => [{ userID: String(d.userID), domain: String(d.domain), stale: d.isStale === true, tsAdded: d.tsAdded as number }]),
      toDoc: (x) => ({ id: docId(x.userID), pk: pk('stale'), k: 'stale', userID: x.userID, domain: x.domain, isStale: x.stale, tsAdded: x.tsAdded }),
    }),
    key_backup_versions: documents.documentPerRowTable<DumpRows['key_backup_versions']>({
      kind: 'backup_version',
      rowsOf: (docs) => docs.map((d) => [{
        version: d.version as number, userID: String(d.userID), algorithm: String(d.algorithm), authData: String(d.authData),
        etag: String(d.etag), deleted: d.deleted === true,
      }]),
      toDoc: (x) => ({
        id: `bv|${x.version}`, pk: pk('backup', x.userID), k: 'backup_version',
        userID: x.userID, version: x.version, algorithm: x.algorithm, authData: x.authData, etag: x.etag, deleted: x.deleted,
      }),
      after: (rows) => documents.raise('order', rows.map((x) => x.version)),
    }),
    key_backups: documents.documentPerRowTable<DumpRows['key_backups']>({
      kind: 'backup_session',
      rowsOf: async (docs) => {
        const users = await documents.userIDsOf(docs, 'userID', 'backup', 1, 0);
        return docs.map((d, i) => [{
          userID: users[i]!, version: String(d.version), roomID: String(d.roomID), sessionID: String(d.sessionID),
          firstMessageIndex: d.firstMessageIndex as number, forwardedCount: d.forwardedCount as number, verified: d.isVerified === true,
          sessionData: String(d.sessionData),
        }]);
      },
      toDoc: (x) => ({
        id: docId('s', x.version, x.roomID, x.sessionID), pk: pk('backup', x.userID), k: 'backup_session',
        version: x.version, roomID: x.roomID, sessionID: x.sessionID, firstMessageIndex: x.firstMessageIndex, forwardedCount: x.forwardedCount,
        isVerified: x.verified, sessionData: x.sessionData, userID: x.userID,
      }),
    }),

    // A message per document, keyed by its stream position: paged on the position.
    send_to_device: {
      count: () => documents.sum('s2d'),
      read: async (cursor, limit) => {
        const { docs, next } = await documents.byNumber<Stored & { position: number; userID: string; deviceID: string; content: string; sentAt?: number; _ts: number }>(
          's2d', 'position', cursor, limit);
        return { rows: docs.map((d) => ({ id: d.position, userID: d.userID, deviceID: d.deviceID, content: d.content, sentAt: d.sentAt ?? d._ts * 1000 })), next };
      },
      write: async (rows) => {
        await Promise.all([
          documents.upsert('dump.write.s2d', rows.map((x) => ({
            id: String(x.id), pk: pk('s2d', x.userID, x.deviceID), k: 's2d', position: x.id, userID: x.userID, deviceID: x.deviceID, content: x.content,
            sentAt: x.sentAt,
          }))),
          documents.raise('order', rows.map((x) => x.id)),
        ]);
      },
      delete: (rows) => documents.remove('dump.delete.s2d', rows.map((x) => ({ id: String(x.id), pk: pk('s2d', x.userID, x.deviceID) }))),
    },
    partition_offsets: documents.documentPerRowTable<DumpRows['partition_offsets']>({
      kind: 'offset',
      rowsOf: (docs) => docs.map((d) => {
        const [topic] = typeof d.topic === 'string' ? [d.topic] : documents.keyParts(d, 'offsets', 1);
        return [{ topic: topic!, partition: d.partition as number, offset: d.offset as number }];
      }),
      toDoc: (x) => ({ id: String(x.partition), pk: pk('offsets', x.topic), k: 'offset', partition: x.partition, offset: x.offset, topic: x.topic }),
    }),
  };
}

/**
 * Raises the stream counters live writers created for these rows' users past their stream IDs, in bulk: the
 * counters read together, then each one below replaced on its ETag (again one by one after a race).
 */
async function raiseStreamCounters(conn: CosmosConnection, rows: readonly DumpRows['device_keys'][]): Promise<void> {
  const r = conn.requests;
  const highest = new Map<string, number>();
  for (const x of rows) highest.set(x.userID, Math.max(highest.get(x.userID) ?? 0, x.streamID));
  const users = [...highest.keys()];
  const ref = (userID: string) => ({ id: 'streams', pk: conn.pk('keys', userID) });
  const counters = await r.readMany<{ value: number }>('dump.write.streams', users.map(ref));
  const low = users.flatMap((userID, i) => {
    const doc = counters[i];
    return doc && doc.value < highest.get(userID)! ? [{ userID, etag: doc._etag }] : [];
  });
  if (low.length === 0) return;
  const replaced = await r.replaceManyIfMatch('dump.write.streams', low.map(({ userID, etag }) => ({
    doc: { ...ref(userID), k: 'stream_counter', value: highest.get(userID)! }, etag,
  })));
  for (const [i, { userID }] of low.entries()) {
    if (replaced[i]) continue;
    const value = highest.get(userID)!;
    await r.patchWhen<{ value: number }>('dump.write.streams', 'streams', ref(userID).pk, (doc) => doc.value < value, () => [{ op: 'set', path: '/value', value }]);
  }
}

/**
 * The stream counters of these users who have no device left: deleted, as a store that never held their devices
 * has none (the next reservation seeds a new one from the devices stored then, as the SQL drivers count from
 * them), and forgotten by this process's device keys table.
 */
async function removeStreamCountersOfDeviceless(
  documents: DumpDocuments, deviceKeysTable: Partial<Pick<CosmosDeviceKeysTable, 'forgetStreams'>>, userIDs: readonly string[],
): Promise<void> {
  const conn = documents.conn;
  const users = unique(userIDs);
  const left = await mapLimit(users, READ_CONCURRENCY, (userID) => conn.requests.query<number>('dump.delete.streams',
    conn.pk('keys', userID), "SELECT VALUE COUNT(1) FROM c WHERE c.pk = @pk AND c.k = 'device_key'"));
  const deviceless = users.filter((_, i) => (left[i]?.[0] ?? 0) === 0);
  if (deviceless.length === 0) return;
  await documents.remove('dump.delete.streams', deviceless.map((userID) => ({ id: 'streams', pk: conn.pk('keys', userID) })));
  deviceKeysTable.forgetStreams?.(deviceless);
}

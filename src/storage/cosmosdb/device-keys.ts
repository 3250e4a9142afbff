import { inject, injectable } from 'inversify';
import { InvalidInputError } from '../../types/errors.js';
import { deviceMessageOf, unique } from '../shared/contracts.js';
import type { DeviceKeysTable, DeviceMessage, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { docId } from './ids.js';
import { Lru } from './lru.js';
import { codePointCompare } from './order.js';

interface DeviceDoc {
  userID: string;
  deviceID: string;
  keyJSON: string;
  streamID: number;
  displayName: string | null;
  tsAdded: number;
}

/**
 * device_keys on Cosmos DB, in the user's key partition `keys|<user ID>`: a document per device, and the user's
 * stream counter. Reserving stream IDs is one atomic increment of that counter (seeded from the devices' highest
 * stream ID the first time), so concurrent uploads for one user get disjoint, consecutive ranges without a lock.
 */
@injectable()
export class CosmosDeviceKeysTable implements DeviceKeysTable {
  /** The top of the last range this process reserved per user: rows within it need not raise the counter. */
  private readonly reservedUpTo = new Lru<string, number>(10_000);

  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  /**
   * Forgets what this process reserved for these users: their stream counters were deleted with their last devices
   * (a purge, through the dump), and the next reservation seeds a new one.
   */
  forgetStreams(userIDs: readonly string[]): void {
    for (const id of userIDs) this.reservedUpTo.delete(id);
  }

  private pk(userID: string) {
    return this.conn.pk('keys', userID);
  }

  async insertDeviceKeys(_tx: Tx, messages: readonly DeviceMessage[]): Promise<void> {
    const r = this.conn.requests;
    const highest = new Map<string, number>();
    for (const m of messages) {
      const id = docId('dk', m.deviceID);
      const pk = this.pk(m.userID);
      const fields = { keyJSON: m.keyJSON, streamID: m.streamID, displayName: m.displayName ?? null };
      // Patch keeps the first-added time; a new device is created (and a lost race to create it patched).
      for (;;) {
        const patched = await r.patch('deviceKeys.insert', id, pk, Object.entries(fields).map(([k, value]) => ({ op: 'set' as const, path: `/${k}`, value })));
        if (patched) break;
        const doc: DeviceDoc = { userID: m.userID, deviceID: m.deviceID, ...fields, tsAdded: Math.floor(Date.now() / 1000) };
        if (await r.create('deviceKeys.insert', { id, pk, k: 'device_key', ...doc })) break;
      }
      highest.set(m.userID, Math.max(highest.get(m.userID) ?? 0, m.streamID));
    }
    // Keep each user's counter above every stored stream ID: remote keys arrive with stream IDs of their own. IDs
    // this process reserved are below the counter already, so those skip the (conditional, atomic) raise.
    for (const [userID, streamID] of highest) {
      if (streamID <= (this.reservedUpTo.get(userID) ?? 0)) continue;
      await r.patchWhen<{ value: number }>('deviceKeys.raiseCounter', 'streams', this.pk(userID), (doc) => doc.value < streamID,
        () => [{ op: 'set', path: '/value', value: streamID }]);
    }
  }

  async selectDeviceKeysJSON(_tx: Tx, messages: DeviceMessage[]): Promise<void> {
    const docs = await this.conn.requests.readMany<DeviceDoc>('deviceKeys.select', messages.map((m) => ({ id: docId('dk', m.deviceID), pk: this.pk(m.userID) })));
    messages.forEach((m, i) => {
      const doc = docs[i];
      m.keyJSON = doc?.keyJSON ?? '';
      m.streamID = doc?.streamID ?? 0;
      m.displayName = doc?.displayName ?? undefined;
    });
  }

  async selectMaxStreamIDForUser(_tx: Tx, userID: string): Promise<number> {
    const [max] = await this.conn.requests.query<number | undefined>('deviceKeys.maxStreamID', this.pk(userID),
      "SELECT VALUE MAX(c.streamID) FROM c WHERE c.pk = @pk AND c.k = 'device_key'");
    return max ?? 0;
  }

  async reserveStreamIDs(tx: Tx, userID: string, count: number): Promise<number> {
    if (!Number.isSafeInteger(count) || count < 1) throw new InvalidInputError(`a stream ID reservation is for 1 or more IDs, got ${count}`);
    const r = this.conn.requests;
    const pk = this.pk(userID);
    for (;;) {
      const doc = await r.patch<{ value: number }>('deviceKeys.reserve', 'streams', pk, [{ op: 'incr', path: '/value', value: count }]);
      if (doc) {
        this.reservedUpTo.set(userID, Math.max(doc.value, this.reservedUpTo.get(userID) ?? 0));
        return doc.value - count + 1;
      }
      // First reservation for this user: seed the counter from the stored rows (a concurrent seeder may win).
      await r.create('deviceKeys.reserve', { id: 'streams', pk, k: 'stream_counter', value: await this.selectMaxStreamIDForUser(tx, userID) });
    }
  }

  async countStreamIDsForUser(_tx: Tx, userID: string, streamIDs: readonly number[]): Promise<number> {
    const rows = await this.conn.requests.query<{ streamID: number }>('deviceKeys.countStreamIDs', this.pk(userID),
      "SELECT c.streamID FROM c WHERE c.pk = @pk AND c.k = 'device_key' AND ARRAY_CONTAINS(@ids, c.streamID)",
      [{ name: '@ids', value: unique(streamIDs) }]);
    return new Set(rows.map((row) => row.streamID)).size;
  }

  private devices(userID: string): Promise<DeviceDoc[]> {
    return this.conn.requests.query<DeviceDoc>('deviceKeys.selectBatch', this.pk(userID),
      "SELECT c.userID, c.deviceID, c.keyJSON, c.streamID, c.displayName, c.tsAdded FROM c WHERE c.pk = @pk AND c.k = 'device_key'");
  }

  async selectBatchDeviceKeys(_tx: Tx, userID: string, deviceIDs: readonly string[], includeEmpty = false): Promise<DeviceMessage[]> {
    const wanted = new Set(deviceIDs);
    return (await this.devices(userID))
      .filter((d) => (includeEmpty || d.keyJSON !== '') && (wanted.size === 0 || wanted.has(d.deviceID)))
      .sort((a, b) => codePointCompare(a.deviceID, b.deviceID))
      .map(deviceMessageOf);
  }

  async deleteDeviceKeys(_tx: Tx, userID: string, deviceID: string): Promise<void> {
    await this.conn.requests.delete('deviceKeys.delete', docId('dk', deviceID), this.pk(userID));
  }

  async deleteAllDeviceKeys(_tx: Tx, userID: string, keepDeviceIDs: readonly string[] = []): Promise<void> {
    const keep = new Set(keepDeviceIDs);
    for (const d of await this.devices(userID)) {
      if (!keep.has(d.deviceID)) await this.conn.requests.delete('deviceKeys.deleteAll', docId('dk', d.deviceID), this.pk(userID));
    }
  }
}

import { inject, injectable } from 'inversify';
import { TOKENS } from '../../di/tokens.js';
import { InvalidInputError } from '../../types/errors.js';
import { MAX_NID } from '../../types/nids.js';
import type { CopyProgress, DumpRows, DumpTable, DumpTableName, StoreDump } from '../tables/dump.js';
import { COSMOS_CONNECTION, type CosmosConnection, type SequenceName } from './connection.js';
import type { CosmosDeviceKeysTable } from './device-keys.js';
import { DumpDocuments, type TableSpecs } from './dump-documents.js';
import { otherTableSpecs } from './dump-other-tables.js';
import { roomServerTableSpecs } from './dump-room-server-tables.js';
import type { CosmosEventsTable } from './events.js';
import type { CosmosRoomsTable } from './rooms.js';
import { CosmosRoomEvents } from './room-events.js';

/** The kind of the copy's progress record (`meta|copy_progress`): bookkeeping, left out of the store's fingerprint. */
export const COPY_PROGRESS_KIND = 'copy_progress';

/** The NID sequences by their canonical counter names (the SQL drivers' names). */
const NID_COUNTERS: Readonly<Record<string, SequenceName>> = {
  event_nid: 'event', room_nid: 'room', event_type_nid: 'eventType', state_key_nid: 'stateKey',
  state_block_nid: 'stateBlock', state_snapshot_nid: 'stateSnapshot',
};

/**
 * The stream positions that share the `order` counter on Cosmos DB (key backup versions, send-to-device positions,
 * key change IDs, report IDs; alias order too, under the counter's own name): each canonical name reads that one counter, and
 * raising any raises it.
 */
const ORDER_COUNTERS = ['key_backup_version', 'send_to_device_id', 'key_change_id', 'reported_event_id', 'order'] as const;

/**
 * The dump of a Cosmos DB tenant. Each logical table is read from the documents that commit its rows (an event's
 * locator, a room's ID document, a state block's hash document: what makes a row visible to the store, so that a
 * document a crashed writer left behind is never copied), with whatever else the row needs fetched in bulk, and
 * never from a derived document (a mapping's reverse side, a membership's mirror in the user's partition, the room
 * list): each row once. Queries run across the tenant's partitions (a rare path: copies and checks).
 *
 * Paging is keyset: on a unique number where the kind has one (the last row's, as JSON, is the cursor), else on
 * (partition key, document id, rows of the document taken) for kinds whose documents share partitions. A query orders on one field
 * only (several need a composite index the container does not have): across partitions by partition key, taking a
 * partition's documents whole; a partition larger than the page is read on its own, ordered by id.
 *
 * Writing stores the rows' documents and every document the driver derives from them (locators, both sides of a
 * mapping, hash documents, room lists and the room's current snapshot blocks, invite lists and redaction lists in
 * insertion order, membership mirrors), as upserts, so writing a page again leaves the same documents; and raises
 * the counters past the values written, so a store copied into works on as a live store.
 *
 * Keys a document held only in its partition key or id (the user of one-time keys, a transaction's ID, a previous
 * event's ID...) are kept as fields too, by the driver since the dump came and by the dump's writes: a long key is
 * kept there only as a hash (ids.ts). Documents written before are read from their partition key, the hashed
 * cases from another document that carries the key where there is one.
 *
 * Insertion order of invites and redactions (`seq`): the driver keeps it only as the order of a list (a user's
 * invites in a room, the redactions naming an event). A dump carries it as a number that is unique and follows that
 * order: the seq a dump wrote (kept beside the entry), else the NID of the invite's or redaction's own event (events
 * are stored before their invites and redactions, and NIDs grow as a writer goes on). Writing raises the event NID
 * counter past every seq written, so the seqs of invites and redactions stored later stay above and unique.
 *
 * Deleting removes a row's documents and every document derived from it, found from the row's fields alone (so
 * the tables may be deleted in any order, and a page deleted twice): the commit point first (a locator, a hash
 * document, a room's ID document, a mapping's string side), then what it commits, so that a delete cut short
 * leaves the row either whole or invisible to reads, never half there. A document keyed by something other than
 * the row's key (a locator by event ID, a hash document by content, a claim by invite ID) is read first and
 * deleted only if it still belongs to the row's NID or place, so deleting a page again never removes what a later
 * row made under the same key. Entries of list documents several rows share (prev_events sets, redaction lists,
 * invite lists) are removed from them, the document deleted once empty, as a store that never held the row would
 * have none; a user's device stream counter goes with the user's last device. A page is a few bulk requests
 * (about one per 100 documents per step). The driver's caches of this process that held a deleted mapping (event
 * locators, room versions, reserved stream IDs) forget it.
 *
 * The documents' primitives (paging, key recovery, bulk writes and deletes) are in dump-documents.ts; how each table
 * maps to them, in dump-room-server-tables.ts and dump-other-tables.ts.
 */
@injectable()
export class CosmosStoreDump implements StoreDump {
  private readonly tables: TableSpecs;

  constructor(
    @inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection,
    // The tables whose caches a delete must keep true (bound to the Cosmos DB classes by this driver's module).
    @inject(TOKENS.EventsTable) eventsTable: Partial<Pick<CosmosEventsTable, 'forgetEvents'>>,
    @inject(TOKENS.RoomsTable) roomsTable: Partial<Pick<CosmosRoomsTable, 'forgetRooms'>>,
    @inject(TOKENS.DeviceKeysTable) deviceKeysTable: Partial<Pick<CosmosDeviceKeysTable, 'forgetStreams'>>,
    @inject(CosmosRoomEvents) roomEvents: CosmosRoomEvents,
  ) {
    const documents = new DumpDocuments(conn);
    // In the order of DUMP_TABLES.
    this.tables = {
      ...roomServerTableSpecs(documents, roomEvents, eventsTable, roomsTable),
      ...otherTableSpecs(documents, deviceKeysTable),
    };
  }

  table<K extends DumpTableName>(name: K): DumpTable<DumpRows[K]> {
    const table = this.tables[name];
    if (!table) throw new InvalidInputError(`no dump table ${String(name)}`);
    return {
      count: () => table.count(),
      read: (cursor, limit) => {
        if (!Number.isSafeInteger(limit) || limit < 1) throw new InvalidInputError(`a dump page holds 1 or more rows, got ${limit}`);
        return table.read(cursor, limit);
      },
      write: (rows) => (rows.length === 0 ? Promise.resolve() : table.write(rows)),
      delete: (rows) => (rows.length === 0 ? Promise.resolve() : table.delete(rows)),
    };
  }

  async reclaimSpace(): Promise<{ readonly done: string }> {
    return {
      done: 'Cosmos DB: nothing to run. The service frees the storage of deleted documents by itself, in the background, '
        + 'so the container\'s data size (and its storage bill) goes down without any request from here',
    };
  }

  async counters(): Promise<Record<string, number>> {
    const names = Object.keys(NID_COUNTERS);
    const [order, ...values] = await Promise.all([
      this.conn.sequence('order').highest(),
      ...names.map((name) => this.conn.sequence(NID_COUNTERS[name]!).highest()),
    ]);
    const out: Record<string, number> = Object.fromEntries(names.map((name, i) => [name, values[i]!]));
    for (const name of ORDER_COUNTERS) out[name] = order!;
    return out;
  }

  async raiseCounters(counters: Readonly<Record<string, number>>): Promise<void> {
    const value = (name: string) => {
      const v = counters[name];
      if (v === undefined) return undefined;
      if (!Number.isSafeInteger(v) || v < 0 || v > MAX_NID) throw new InvalidInputError(`counter ${name} must be an integer from 0 to 2^53-1, got ${v}`);
      return v;
    };
    const raises: Promise<void>[] = [];
    for (const [name, sequence] of Object.entries(NID_COUNTERS)) {
      const v = value(name);
      if (v !== undefined) raises.push(this.conn.sequence(sequence).raiseTo(v));
    }
    const order = ORDER_COUNTERS.map(value).filter((v) => v !== undefined);
    if (order.length > 0) raises.push(this.conn.sequence('order').raiseTo(Math.max(...order)));
    await Promise.all(raises);
  }

  async readProgress(): Promise<CopyProgress | undefined> {
    const doc = await this.conn.requests.read<{ progress: CopyProgress }>('dump.progress', COPY_PROGRESS_KIND, this.conn.pk('meta'));
    return doc?.progress;
  }

  async writeProgress(progress: CopyProgress | undefined): Promise<void> {
    if (progress === undefined) {
      await this.conn.requests.delete('dump.progress', COPY_PROGRESS_KIND, this.conn.pk('meta'));
      return;
    }
    // Through JSON, as the SQL drivers store it: what reads back is what a JSON round trip gives.
    await this.conn.requests.upsert('dump.progress', {
      id: COPY_PROGRESS_KIND, pk: this.conn.pk('meta'), k: COPY_PROGRESS_KIND, progress: JSON.parse(JSON.stringify(progress)) as CopyProgress,
    });
  }
}

import type { Storage } from '../index.js';
import { PurgeRefusedError } from '../types/errors.js';
import type { DumpTableName } from '../storage/tables/dump.js';
import type { HistoryCut, RoomPurgeResult } from '../storage/shared/room-purge.js';
import { dumpOf } from './copy.js';

export { PurgeRefusedError };
export type { HistoryCut };

/**
 * `purge-room` and `purge-history`: the Database's purges (RoomserverDatabase.purgeRoom and purgeHistory, which
 * read the room's own rows and hold the room while they delete; src/storage/shared/room-purge.ts), then the engine
 * asked to give the space back where it needs asking (SQLite: VACUUM; PostgreSQL: VACUUM, which makes the space
 * reusable; Cosmos DB frees it by itself), and a report of what was deleted and how the store's size changed.
 */
export interface PurgeReport {
  readonly roomID: string;
  /** Rows deleted per table. */
  readonly deleted: Readonly<Partial<Record<DumpTableName, number>>>;
  readonly rowsDeleted: number;
  /** Events kept (purge-history): those after the cut, and the older ones the room still needs. */
  readonly eventsKept?: number;
  /** Rows the purge read: the room's own, found by index or partition. */
  readonly rowsRead: number;
  /** The engine's size of the whole store before the purge and after reclaiming the space (undefined on Cosmos DB). */
  readonly bytesBefore: number | undefined;
  readonly bytesAfter: number | undefined;
  /** What was done to give the space back, and what the engine will do later. */
  readonly reclaimed: string;
  readonly elapsedMs: number;
}

export interface PurgeOptions {
  /** Called as each table's deletes begin: the table, and how many of its rows go. */
  readonly onTable?: (table: DumpTableName, rows: number) => void;
  /** Skip the space reclaiming (a test, or an operator who runs VACUUM at a quieter time). */
  readonly reclaim?: boolean;
}

/** Deletes every trace of the room: events, JSON, state no other room uses, memberships, invites, aliases, ... */
export function purgeRoom(storage: Storage, roomID: string, options: PurgeOptions = {}): Promise<PurgeReport> {
  return reported(storage, options, () => storage.roomserver.purgeRoom(roomID, onTable(options)));
}

/** Deletes the room's events before the cut, keeping what the room still needs (RoomserverDatabase.purgeHistory). */
export function purgeHistory(storage: Storage, roomID: string, cut: HistoryCut, options: PurgeOptions = {}): Promise<PurgeReport> {
  return reported(storage, options, () => storage.roomserver.purgeHistory(roomID, cut, onTable(options)));
}

const onTable = (options: PurgeOptions) => (options.onTable ? { onTable: options.onTable } : {});

async function reported(storage: Storage, options: PurgeOptions, purge: () => Promise<RoomPurgeResult>): Promise<PurgeReport> {
  const started = Date.now();
  const bytesBefore = (await storage.stats.collect()).totalBytes;
  const result = await purge();
  const reclaimed = options.reclaim === false ? 'space not reclaimed (asked not to)' : (await dumpOf(storage, 'store').reclaimSpace()).done;
  return {
    roomID: result.roomID, deleted: result.deleted, rowsDeleted: result.rowsDeleted,
    ...(result.eventsKept !== undefined ? { eventsKept: result.eventsKept } : {}), rowsRead: result.rowsRead,
    bytesBefore, bytesAfter: (await storage.stats.collect()).totalBytes, reclaimed, elapsedMs: Date.now() - started,
  };
}

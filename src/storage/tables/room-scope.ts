import type { DumpRows, DumpTableName } from './dump.js';
import type { Tx } from './unit-of-work.js';

/**
 * One room's rows, read by the room and no further: what purges and room sizes read instead of every table of the
 * store. Rows come in the dump's driver-neutral form (dump.ts), so that one shared purge deletes them on every
 * driver. Each read goes through an index or a partition of the room (README, "Operator tools"); `rowsRead` counts
 * the rows (documents on Cosmos DB) the driver fetched for these calls, lookups it makes on the way included.
 */
export interface RoomScopeTable {
  /** The room's row, undefined if the room is not stored. */
  room(tx: Tx, roomID: string): Promise<DumpRows['rooms'] | undefined>;
  events(tx: Tx, roomNID: number): Promise<DumpRows['events'][]>;
  eventJSON(tx: Tx, eventNIDs: readonly number[]): Promise<DumpRows['event_json'][]>;
  /** The snapshots stored for the room (a snapshot's room is the room that stored it first). */
  snapshots(tx: Tx, roomNID: number): Promise<DumpRows['state_snapshots'][]>;
  blocks(tx: Tx, blockNIDs: readonly number[]): Promise<DumpRows['state_blocks'][]>;
  memberships(tx: Tx, roomNID: number): Promise<DumpRows['membership'][]>;
  invites(tx: Tx, roomNID: number): Promise<DumpRows['invites'][]>;
  /** The redactions these events are (by the redaction's event ID). */
  redactions(tx: Tx, eventIDs: readonly string[]): Promise<DumpRows['redactions'][]>;
  /** The client transactions that sent these events. */
  transactions(tx: Tx, eventIDs: readonly string[]): Promise<DumpRows['transactions'][]>;
  /** The prev_events references these events make. */
  previousEvents(tx: Tx, eventNIDs: readonly number[]): Promise<DumpRows['previous_events'][]>;
  aliases(tx: Tx, roomID: string): Promise<DumpRows['room_aliases'][]>;
  published(tx: Tx, roomID: string): Promise<DumpRows['published'][]>;
  /** The reports of the room's events. */
  reportedEvents(tx: Tx, roomNID: number): Promise<DumpRows['reported_events'][]>;
  /** The room's users' pseudo-ID keys. */
  userRoomKeys(tx: Tx, roomNID: number): Promise<DumpRows['user_room_keys'][]>;
  /** Of these snapshots, those an event of another room or another room's current state names. */
  snapshotsNamedOutside(tx: Tx, roomNID: number, snapshotNIDs: readonly number[]): Promise<Set<number>>;
  /**
   * Deletes these rows (as the reads above return them) with what the driver derived from them, in `tx` where the
   * engine has transactions; a row that is not there is skipped, so a purge that resumes may delete a page twice.
   */
  delete<K extends DumpTableName>(tx: Tx, name: K, rows: readonly DumpRows[K][]): Promise<void>;
  /** Rows fetched by the calls above since this object was made: what the benchmark and the reports count. */
  readonly rowsRead: number;
}

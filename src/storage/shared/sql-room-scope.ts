import type { DumpRows, DumpTableName } from '../tables/dump.js';
import type { RoomScopeTable } from '../tables/room-scope.js';
import type { Tx } from '../tables/unit-of-work.js';

/** A value a SQL room-scoped read looks rows up by. */
export type KeyValue = number | string;

/**
 * The room-scoped reads of both SQL drivers, written once: each is one statement over an index that leads with the
 * column looked up (room_nid, event_nid, event_id, room_id; schema version 8 adds the ones that were missing), so
 * the engine visits the room's rows and not the table. A driver supplies the statement ("rows of this table whose
 * column is one of these values"), the keyed delete and the snapshot check, in its own dialect.
 */
export abstract class SqlRoomScope implements RoomScopeTable {
  private read = 0;

  get rowsRead(): number {
    return this.read;
  }

  /** Rows of the dump table `name` whose `column` holds one of `values`, in `tx`. */
  protected abstract select<K extends DumpTableName>(tx: Tx, name: K, column: string, values: readonly KeyValue[]): Promise<DumpRows[K][]>;
  /** Of `snapshotNIDs`, those named by an event of another room or another room's row (one statement, by index). */
  protected abstract namedOutside(tx: Tx, roomNID: number, snapshotNIDs: readonly number[]): Promise<number[]>;
  abstract delete<K extends DumpTableName>(tx: Tx, name: K, rows: readonly DumpRows[K][]): Promise<void>;

  private async rows<K extends DumpTableName>(tx: Tx, name: K, column: string, values: readonly KeyValue[]): Promise<DumpRows[K][]> {
    if (values.length === 0) return [];
    const rows = await this.select(tx, name, column, [...new Set(values)]);
    this.read += rows.length;
    return rows;
  }

  async room(tx: Tx, roomID: string): Promise<DumpRows['rooms'] | undefined> {
    return (await this.rows(tx, 'rooms', 'room_id', [roomID]))[0];
  }

  events(tx: Tx, roomNID: number) { return this.rows(tx, 'events', 'room_nid', [roomNID]); }
  eventJSON(tx: Tx, eventNIDs: readonly number[]) { return this.rows(tx, 'event_json', 'event_nid', eventNIDs); }
  snapshots(tx: Tx, roomNID: number) { return this.rows(tx, 'state_snapshots', 'room_nid', [roomNID]); }
  blocks(tx: Tx, blockNIDs: readonly number[]) { return this.rows(tx, 'state_blocks', 'state_block_nid', blockNIDs); }
  memberships(tx: Tx, roomNID: number) { return this.rows(tx, 'membership', 'room_nid', [roomNID]); }
  invites(tx: Tx, roomNID: number) { return this.rows(tx, 'invites', 'room_nid', [roomNID]); }
  redactions(tx: Tx, eventIDs: readonly string[]) { return this.rows(tx, 'redactions', 'redaction_event_id', eventIDs); }
  transactions(tx: Tx, eventIDs: readonly string[]) { return this.rows(tx, 'transactions', 'event_id', eventIDs); }
  previousEvents(tx: Tx, eventNIDs: readonly number[]) { return this.rows(tx, 'previous_events', 'event_nid', eventNIDs); }
  aliases(tx: Tx, roomID: string) { return this.rows(tx, 'room_aliases', 'room_id', [roomID]); }
  published(tx: Tx, roomID: string) { return this.rows(tx, 'published', 'room_id', [roomID]); }
  reportedEvents(tx: Tx, roomNID: number) { return this.rows(tx, 'reported_events', 'room_nid', [roomNID]); }
  userRoomKeys(tx: Tx, roomNID: number) { return this.rows(tx, 'user_room_keys', 'room_nid', [roomNID]); }

  async snapshotsNamedOutside(tx: Tx, roomNID: number, snapshotNIDs: readonly number[]): Promise<Set<number>> {
    if (snapshotNIDs.length === 0) return new Set();
    const named = await this.namedOutside(tx, roomNID, [...new Set(snapshotNIDs)]);
    this.read += named.length;
    return new Set(named);
  }
}

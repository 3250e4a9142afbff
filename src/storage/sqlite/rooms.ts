import { inject, injectable } from 'inversify';
import type { EventNID, RoomNID, StateSnapshotNID } from '../../types/nids.js';
import { duplicate, notFound, unique } from '../shared/contracts.js';
import type { LatestEvents, RoomInfo, RoomsTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { IN_LIST, nidList, parseNIDList, textList } from './values.js';

interface LatestRow {
  latest: string;
  lastSent: EventNID;
  snapshot: StateSnapshotNID;
}

@injectable()
export class SqliteRoomsTable implements RoomsTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertRoomNID(tx: Tx, roomID: string, roomVersion: string): Promise<RoomNID> {
    return this.conn.run(tx, (c) => {
      const row = c.stmt(`INSERT INTO roomserver_rooms (room_id, room_version) VALUES (?, ?)
        ON CONFLICT DO NOTHING RETURNING room_nid AS nid`).get(roomID, roomVersion) as { nid: RoomNID } | undefined;
      if (!row) throw duplicate('room', roomID);
      return row.nid;
    });
  }

  selectRoomNID(tx: Tx, roomID: string): Promise<RoomNID> {
    return this.conn.run(tx, (c) => {
      const row = c.stmt('SELECT room_nid AS nid FROM roomserver_rooms WHERE room_id = ?').get(roomID) as { nid: RoomNID } | undefined;
      if (!row) throw notFound('room', roomID);
      return row.nid;
    });
  }

  selectLatestEventNIDs(tx: Tx, roomNID: RoomNID) {
    return this.conn.run(tx, (c) => {
      const row = this.latestRow(c, roomNID);
      return { eventNIDs: parseNIDList<EventNID>(row.latest), stateSnapshotNID: row.snapshot };
    });
  }

  /** The transaction already holds SQLite's single write lock (BEGIN IMMEDIATE): no row lock is needed. */
  selectLatestEventsNIDsForUpdate(tx: Tx, roomNID: RoomNID): Promise<LatestEvents> {
    return this.conn.run(tx, (c) => {
      const row = this.latestRow(c, roomNID);
      return { latestEventNIDs: parseNIDList<EventNID>(row.latest), lastEventSentNID: row.lastSent, stateSnapshotNID: row.snapshot, version: '' };
    });
  }

  private latestRow(c: SqliteConnection, roomNID: RoomNID): LatestRow {
    const row = c.stmt(`SELECT latest_event_nids AS latest, last_event_sent_nid AS lastSent, state_snapshot_nid AS snapshot
      FROM roomserver_rooms WHERE room_nid = ?`).get(roomNID) as LatestRow | undefined;
    if (!row) throw notFound('room NID', roomNID);
    return row;
  }

  updateLatestEventNIDs(
    tx: Tx, roomNID: RoomNID, latestEventNIDs: readonly EventNID[], lastEventSentNID: EventNID, stateSnapshotNID: StateSnapshotNID,
  ): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt(`UPDATE roomserver_rooms SET latest_event_nids = ?, last_event_sent_nid = ?, state_snapshot_nid = ? WHERE room_nid = ?`)
        .run(nidList(latestEventNIDs), lastEventSentNID, stateSnapshotNID, roomNID);
    });
  }

  selectRoomVersionsForRoomNIDs(tx: Tx, roomNIDs: readonly RoomNID[]): Promise<Map<RoomNID, string>> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT room_nid AS nid, room_version AS version FROM roomserver_rooms WHERE room_nid ${IN_LIST}`)
        .all(nidList(unique(roomNIDs))) as { nid: RoomNID; version: string }[];
      return new Map(rows.map((r) => [r.nid, r.version]));
    });
  }

  selectRoomInfo(tx: Tx, roomID: string): Promise<RoomInfo | null> {
    return this.conn.run(tx, (c) => {
      const row = c.stmt(`SELECT room_nid AS roomNID, room_version AS roomVersion, state_snapshot_nid AS stateSnapshotNID,
        latest_event_nids AS latest FROM roomserver_rooms WHERE room_id = ?`).get(roomID) as
        (Omit<RoomInfo, 'isStub'> & { latest: string }) | undefined;
      if (!row) return null;
      const { latest, ...info } = row;
      return { ...info, isStub: parseNIDList(latest).length === 0 };
    });
  }

  selectRoomIDs(tx: Tx): Promise<string[]> {
    return this.conn.run(tx, (c) => (c.stmt('SELECT room_id AS id FROM roomserver_rooms ORDER BY room_id').all() as { id: string }[]).map((r) => r.id));
  }

  selectRoomIDsWithEvents(tx: Tx): Promise<string[]> {
    return this.conn.run(tx, (c) => (c.stmt(`SELECT room_id AS id FROM roomserver_rooms WHERE latest_event_nids != '[]' ORDER BY room_id`)
      .all() as { id: string }[]).map((r) => r.id));
  }

  bulkSelectRoomIDs(tx: Tx, roomNIDs: readonly RoomNID[]): Promise<Map<RoomNID, string>> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT room_nid AS nid, room_id AS id FROM roomserver_rooms WHERE room_nid ${IN_LIST}`)
        .all(nidList(unique(roomNIDs))) as { nid: RoomNID; id: string }[];
      return new Map(rows.map((r) => [r.nid, r.id]));
    });
  }

  bulkSelectRoomNIDs(tx: Tx, roomIDs: readonly string[]): Promise<Map<string, RoomNID>> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT room_nid AS nid, room_id AS id FROM roomserver_rooms WHERE room_id ${IN_LIST}`)
        .all(textList(unique(roomIDs))) as { nid: RoomNID; id: string }[];
      return new Map(rows.map((r) => [r.id, r.nid]));
    });
  }
}

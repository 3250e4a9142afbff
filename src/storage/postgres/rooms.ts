import { inject, injectable } from 'inversify';
import type { EventNID, RoomNID, StateSnapshotNID } from '../../types/nids.js';
import { duplicate, notFound, unique } from '../shared/contracts.js';
import type { LatestEvents, RoomInfo, RoomsTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

interface LatestRow {
  latest: EventNID[];
  lastSent: EventNID;
  snapshot: StateSnapshotNID;
}

const LATEST_COLUMNS = 'latest_event_nids AS latest, last_event_sent_nid AS "lastSent", state_snapshot_nid AS snapshot';

@injectable()
export class PostgresRoomsTable implements RoomsTable {
  /**
   * Room NID -> version, as read. A room's version never changes once its row exists, and a room NID is never
   * handed out twice (not even after a rollback), so what was read once stays true in every process.
   */
  private readonly versions = new Map<RoomNID, string>();

  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async insertRoomNID(tx: Tx, roomID: string, roomVersion: string): Promise<RoomNID> {
    const r = await this.conn.query<{ nid: RoomNID }>(tx, `INSERT INTO roomserver_rooms (room_id, room_version) VALUES ($1, $2)
      ON CONFLICT (room_id) DO NOTHING RETURNING room_nid AS nid`, [roomID, roomVersion]);
    const row = r.rows[0];
    if (!row) throw duplicate('room', roomID);
    return row.nid;
  }

  async selectRoomNID(tx: Tx, roomID: string): Promise<RoomNID> {
    const r = await this.conn.query<{ nid: RoomNID }>(tx, 'SELECT room_nid AS nid FROM roomserver_rooms WHERE room_id = $1', [roomID]);
    const row = r.rows[0];
    if (!row) throw notFound('room', roomID);
    return row.nid;
  }

  async selectLatestEventNIDs(tx: Tx, roomNID: RoomNID) {
    const row = await this.latestRow(tx, roomNID, '');
    return { eventNIDs: row.latest, stateSnapshotNID: row.snapshot };
  }

  /** A row lock (FOR UPDATE) held until the caller's transaction ends: a second updater of the room waits here. */
  async selectLatestEventsNIDsForUpdate(tx: Tx, roomNID: RoomNID): Promise<LatestEvents> {
    const row = await this.latestRow(tx, roomNID, 'FOR UPDATE');
    return { latestEventNIDs: row.latest, lastEventSentNID: row.lastSent, stateSnapshotNID: row.snapshot, version: '' };
  }

  private async latestRow(tx: Tx, roomNID: RoomNID, lock: '' | 'FOR UPDATE'): Promise<LatestRow> {
    const r = await this.conn.query<LatestRow>(tx, `SELECT ${LATEST_COLUMNS} FROM roomserver_rooms WHERE room_nid = $1 ${lock}`, [roomNID]);
    const row = r.rows[0];
    if (!row) throw notFound('room NID', roomNID);
    return row;
  }

  /** The row is locked by selectLatestEventsNIDsForUpdate: no version to compare. */
  async updateLatestEventNIDs(
    tx: Tx, roomNID: RoomNID, latestEventNIDs: readonly EventNID[], lastEventSentNID: EventNID, stateSnapshotNID: StateSnapshotNID,
  ): Promise<void> {
    await this.conn.query(tx, `UPDATE roomserver_rooms SET latest_event_nids = $1::bigint[], last_event_sent_nid = $2, state_snapshot_nid = $3
      WHERE room_nid = $4`, [[...latestEventNIDs], lastEventSentNID, stateSnapshotNID, roomNID]);
  }

  async selectRoomVersionsForRoomNIDs(tx: Tx, roomNIDs: readonly RoomNID[]): Promise<Map<RoomNID, string>> {
    const out = new Map<RoomNID, string>();
    const missing = unique(roomNIDs).filter((nid) => {
      const v = this.versions.get(nid);
      if (v !== undefined) out.set(nid, v);
      return v === undefined;
    });
    if (missing.length === 0) return this.conn.nothing(tx, out);
    const r = await this.conn.query<{ nid: RoomNID; version: string }>(tx,
      'SELECT room_nid AS nid, room_version AS version FROM roomserver_rooms WHERE room_nid = ANY($1::bigint[])', [missing]);
    if (this.versions.size >= 10_000) this.versions.clear();
    for (const row of r.rows) {
      out.set(row.nid, row.version);
      this.versions.set(row.nid, row.version);
    }
    return out;
  }

  async selectRoomInfo(tx: Tx, roomID: string): Promise<RoomInfo | null> {
    const r = await this.conn.query<RoomInfo>(tx, `SELECT room_nid AS "roomNID", room_version AS "roomVersion",
      state_snapshot_nid AS "stateSnapshotNID", cardinality(latest_event_nids) = 0 AS "isStub"
      FROM roomserver_rooms WHERE room_id = $1`, [roomID]);
    return r.rows[0] ?? null;
  }

  async selectRoomIDs(tx: Tx): Promise<string[]> {
    const r = await this.conn.query<{ id: string }>(tx, 'SELECT room_id AS id FROM roomserver_rooms ORDER BY room_id COLLATE "C"');
    return r.rows.map((row) => row.id);
  }

  async selectRoomIDsWithEvents(tx: Tx): Promise<string[]> {
    const r = await this.conn.query<{ id: string }>(tx, "SELECT room_id AS id FROM roomserver_rooms WHERE latest_event_nids != '{}' ORDER BY room_id");
    return r.rows.map((row) => row.id);
  }

  async bulkSelectRoomIDs(tx: Tx, roomNIDs: readonly RoomNID[]): Promise<Map<RoomNID, string>> {
    if (roomNIDs.length === 0) return this.conn.nothing(tx, new Map());
    const r = await this.conn.query<{ nid: RoomNID; id: string }>(tx,
      'SELECT room_nid AS nid, room_id AS id FROM roomserver_rooms WHERE room_nid = ANY($1::bigint[])', [unique(roomNIDs)]);
    return new Map(r.rows.map((row) => [row.nid, row.id]));
  }

  async bulkSelectRoomNIDs(tx: Tx, roomIDs: readonly string[]): Promise<Map<string, RoomNID>> {
    if (roomIDs.length === 0) return this.conn.nothing(tx, new Map());
    const r = await this.conn.query<{ nid: RoomNID; id: string }>(tx,
      'SELECT room_nid AS nid, room_id AS id FROM roomserver_rooms WHERE room_id = ANY($1::text[])', [unique(roomIDs)]);
    return new Map(r.rows.map((row) => [row.id, row.nid]));
  }
}

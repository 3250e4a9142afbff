import { inject, injectable } from 'inversify';
import type { EventNID, EventStateKeyNID, EventTypeNID, RoomNID, StateSnapshotNID } from '../../types/nids.js';
import type { StateAtEvent, StateAtEventAndReference, StateEntry, StateKeyTuple } from '../../types/state.js';
import { checkStateAt, duplicate, missingOf, notFound, unique } from '../shared/contracts.js';
import type { EventRow, EventsTable, StoredEventRow, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';
import { changed } from './values.js';

interface StateRow {
  eventTypeNID: EventTypeNID;
  eventStateKeyNID: EventStateKeyNID;
  eventNID: EventNID;
  beforeStateSnapshotNID: StateSnapshotNID;
  isRejected: boolean;
  eventID: string;
}

const STATE_COLUMNS = `event_type_nid AS "eventTypeNID", event_state_key_nid AS "eventStateKeyNID", event_nid AS "eventNID",
  state_snapshot_nid AS "beforeStateSnapshotNID", is_rejected AS "isRejected", event_id AS "eventID"`;
const ENTRY_COLUMNS = 'event_type_nid AS "eventTypeNID", event_state_key_nid AS "eventStateKeyNID", event_nid AS "eventNID"';
const BY_TUPLE = 'ORDER BY event_type_nid, event_state_key_nid, event_nid';

const entryOf = (r: StateRow): StateEntry => ({ eventTypeNID: r.eventTypeNID, eventStateKeyNID: r.eventStateKeyNID, eventNID: r.eventNID });
const stateAtOf = (r: StateRow): StateAtEvent => ({ ...entryOf(r), beforeStateSnapshotNID: r.beforeStateSnapshotNID, isRejected: r.isRejected });

@injectable()
export class PostgresEventsTable implements EventsTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async reserveEventNID(tx: Tx): Promise<EventNID> {
    const r = await this.conn.query<{ nid: EventNID }>(tx, `SELECT nextval('roomserver_event_nid_seq') AS nid`);
    return r.rows[0]!.nid;
  }

  async insertEvent(tx: Tx, row: EventRow): Promise<void> {
    const r = await this.conn.query(tx, `INSERT INTO roomserver_events (event_nid, room_nid, event_type_nid, event_state_key_nid, depth,
      event_id, auth_event_nids, is_rejected) VALUES ($1, $2, $3, $4, $5, $6, $7::bigint[], $8) ON CONFLICT (event_id) DO NOTHING`,
    [row.eventNID, row.roomNID, row.eventTypeNID, row.eventStateKeyNID, row.depth, row.eventID, [...row.authEventNIDs], row.isRejected]);
    if (changed(r) === 0) throw duplicate('event', row.eventID);
  }

  async reserveEventNIDsFor(tx: Tx, eventIDs: readonly string[]): Promise<EventNID[]> {
    if (eventIDs.length === 0) return this.conn.nothing(tx, []);
    // Counted and reserved in one statement: no round trip between the existence check and the sequence.
    const r = await this.conn.query<{ nid: EventNID }>(tx, `SELECT nextval('roomserver_event_nid_seq') AS nid FROM unnest($1::text[]) AS t(id)
      WHERE NOT EXISTS (SELECT 1 FROM roomserver_events e WHERE e.event_id = t.id)`, [unique(eventIDs)]);
    return r.rows.map((row) => row.nid).sort((a, b) => a - b);
  }

  async bulkInsertEvents(tx: Tx, rows: readonly StoredEventRow[]): Promise<void> {
    if (rows.length === 0) return this.conn.nothing(tx, undefined);
    // A plain INSERT, no ON CONFLICT: a stored ID is a unique violation, which fails the statement and the
    // transaction on the server, before any COMMIT sent behind it. Arrays of rows, one per column (unnest makes them
    // rows again); the auth NID lists travel as array literals.
    try {
      await this.conn.query(tx, `INSERT INTO roomserver_events (event_nid, room_nid, event_type_nid, event_state_key_nid,
          depth, event_id, auth_event_nids, is_rejected, state_snapshot_nid, sent_to_output)
        SELECT n, room, type, key, depth, id, auth::bigint[], rejected, snapshot, sent FROM unnest($1::bigint[], $2::bigint[], $3::bigint[],
          $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::bool[], $9::bigint[], $10::bool[])
          AS t(n, room, type, key, depth, id, auth, rejected, snapshot, sent)`, [
        rows.map((x) => x.eventNID), rows.map((x) => x.roomNID), rows.map((x) => x.eventTypeNID), rows.map((x) => x.eventStateKeyNID),
        rows.map((x) => x.depth), rows.map((x) => x.eventID), rows.map((x) => `{${x.authEventNIDs.join(',')}}`), rows.map((x) => x.isRejected),
        rows.map((x) => x.stateSnapshotNID), rows.map((x) => x.sentToOutput ?? false)]);
    } catch (e) {
      if ((e as { code?: string }).code === '23505') throw duplicate('event', rows.length === 1 ? rows[0]!.eventID : `among ${rows.length} rows`);
      throw e;
    }
  }

  async bulkSelectEventsByID(tx: Tx, eventIDs: readonly string[]) {
    if (eventIDs.length === 0) return this.conn.nothing(tx, new Map());
    const r = await this.conn.query<StateRow & { roomNID: RoomNID }>(tx,
      `SELECT ${STATE_COLUMNS}, room_nid AS "roomNID" FROM roomserver_events WHERE event_id = ANY($1::text[])`, [unique(eventIDs)]);
    return new Map(r.rows.map((row) => [row.eventID, {
      eventNID: row.eventNID, roomNID: row.roomNID, stateSnapshotNID: row.beforeStateSnapshotNID, eventTypeNID: row.eventTypeNID,
      eventStateKeyNID: row.eventStateKeyNID, isRejected: row.isRejected,
    }]));
  }

  async clearEventRejected(tx: Tx, eventNID: EventNID): Promise<void> {
    await this.conn.query(tx, 'UPDATE roomserver_events SET is_rejected = false WHERE event_nid = $1', [eventNID]);
  }

  async selectEvent(tx: Tx, eventID: string) {
    const r = await this.conn.query<{ eventNID: EventNID; roomNID: RoomNID; stateSnapshotNID: StateSnapshotNID }>(tx,
      `SELECT event_nid AS "eventNID", room_nid AS "roomNID", state_snapshot_nid AS "stateSnapshotNID"
       FROM roomserver_events WHERE event_id = $1`, [eventID]);
    const row = r.rows[0];
    if (!row) throw notFound('event', eventID);
    return row;
  }

  async bulkSelectStateEventByID(tx: Tx, eventIDs: readonly string[], excludeRejected = false): Promise<StateEntry[]> {
    const rows = eventIDs.length === 0 ? this.conn.nothing(tx, [])
      : (await this.conn.query<StateRow>(tx, `SELECT ${STATE_COLUMNS} FROM roomserver_events WHERE event_id = ANY($1::text[]) ${BY_TUPLE}`,
        [unique(eventIDs)])).rows;
    const found = new Set(rows.map((r) => r.eventID));
    const err = missingOf('event', 'state events by ID', eventIDs, (id) => found.has(id));
    if (err) throw err;
    return rows.filter((r) => !excludeRejected || !r.isRejected).map(entryOf);
  }

  async bulkSelectStateEventByNID(tx: Tx, eventNIDs: readonly EventNID[], tuples: readonly StateKeyTuple[]): Promise<StateEntry[]> {
    if (eventNIDs.length === 0) return this.conn.nothing(tx, []);
    const nids = unique(eventNIDs);
    if (tuples.length === 0) {
      return (await this.conn.query<StateEntry>(tx, `SELECT ${ENTRY_COLUMNS} FROM roomserver_events WHERE event_nid = ANY($1::bigint[]) ${BY_TUPLE}`,
        [nids])).rows;
    }
    return (await this.conn.query<StateEntry>(tx, `SELECT ${ENTRY_COLUMNS} FROM roomserver_events WHERE event_nid = ANY($1::bigint[])
      AND event_type_nid = ANY($2::bigint[]) AND event_state_key_nid = ANY($3::bigint[]) ${BY_TUPLE}`,
    [nids, unique(tuples.map((t) => t.eventTypeNID)), unique(tuples.map((t) => t.eventStateKeyNID))])).rows;
  }

  async bulkSelectStateAtEventByID(tx: Tx, eventIDs: readonly string[]): Promise<StateAtEvent[]> {
    const rows = eventIDs.length === 0 ? this.conn.nothing(tx, [])
      : (await this.conn.query<StateRow>(tx, `SELECT ${STATE_COLUMNS} FROM roomserver_events WHERE event_id = ANY($1::text[])`,
        [unique(eventIDs)])).rows;
    return checkStateAt(eventIDs, rows).map(stateAtOf);
  }

  async updateEventState(tx: Tx, eventNID: EventNID, stateSnapshotNID: StateSnapshotNID): Promise<void> {
    await this.conn.query(tx, 'UPDATE roomserver_events SET state_snapshot_nid = $1 WHERE event_nid = $2', [stateSnapshotNID, eventNID]);
  }

  async selectEventSentToOutput(tx: Tx, eventNID: EventNID): Promise<boolean> {
    const r = await this.conn.query<{ sent: boolean }>(tx, 'SELECT sent_to_output AS sent FROM roomserver_events WHERE event_nid = $1', [eventNID]);
    const row = r.rows[0];
    if (!row) throw notFound('event NID', eventNID);
    return row.sent;
  }

  async updateEventSentToOutput(tx: Tx, eventNID: EventNID): Promise<void> {
    await this.conn.query(tx, 'UPDATE roomserver_events SET sent_to_output = true WHERE event_nid = $1', [eventNID]);
  }

  async selectEventID(tx: Tx, eventNID: EventNID): Promise<string> {
    const r = await this.conn.query<{ id: string }>(tx, 'SELECT event_id AS id FROM roomserver_events WHERE event_nid = $1', [eventNID]);
    const row = r.rows[0];
    if (!row) throw notFound('event NID', eventNID);
    return row.id;
  }

  async bulkSelectStateAtEventAndReference(tx: Tx, eventNIDs: readonly EventNID[]): Promise<StateAtEventAndReference[]> {
    const rows = eventNIDs.length === 0 ? this.conn.nothing(tx, [])
      : (await this.conn.query<StateRow>(tx, `SELECT ${STATE_COLUMNS} FROM roomserver_events WHERE event_nid = ANY($1::bigint[])`,
        [unique(eventNIDs)])).rows;
    const found = new Set(rows.map((r) => r.eventNID));
    const err = missingOf('event', 'events by NID', eventNIDs, (n) => found.has(n));
    if (err) throw err;
    return rows.map((r) => ({ ...stateAtOf(r), eventID: r.eventID }));
  }

  async bulkSelectEventID(tx: Tx, eventNIDs: readonly EventNID[]): Promise<Map<EventNID, string>> {
    const rows = eventNIDs.length === 0 ? this.conn.nothing(tx, [])
      : (await this.conn.query<{ nid: EventNID; id: string }>(tx,
        'SELECT event_nid AS nid, event_id AS id FROM roomserver_events WHERE event_nid = ANY($1::bigint[])', [unique(eventNIDs)])).rows;
    const map = new Map(rows.map((r) => [r.nid, r.id]));
    const err = missingOf('event', 'event IDs by NID', eventNIDs, (n) => map.has(n));
    if (err) throw err;
    return map;
  }

  async bulkSelectEventNID(tx: Tx, eventIDs: readonly string[]): Promise<Map<string, EventNID>> {
    if (eventIDs.length === 0) return this.conn.nothing(tx, new Map());
    const r = await this.conn.query<{ nid: EventNID; id: string }>(tx,
      'SELECT event_nid AS nid, event_id AS id FROM roomserver_events WHERE event_id = ANY($1::text[])', [unique(eventIDs)]);
    return new Map(r.rows.map((row) => [row.id, row.nid]));
  }

  async selectMaxEventDepth(tx: Tx, eventNIDs: readonly EventNID[]): Promise<number> {
    if (eventNIDs.length === 0) return this.conn.nothing(tx, 0);
    const r = await this.conn.query<{ depth: number }>(tx,
      'SELECT COALESCE(MAX(depth) + 1, 0) AS depth FROM roomserver_events WHERE event_nid = ANY($1::bigint[])', [unique(eventNIDs)]);
    return r.rows[0]!.depth;
  }

  async bulkSelectEventIDsAndRooms(tx: Tx, eventNIDs: readonly EventNID[]): Promise<Map<EventNID, { eventID: string; roomNID: RoomNID }>> {
    if (eventNIDs.length === 0) return this.conn.nothing(tx, new Map());
    const r = await this.conn.query<{ nid: EventNID; eventID: string; roomNID: RoomNID }>(tx,
      'SELECT event_nid AS nid, event_id AS "eventID", room_nid AS "roomNID" FROM roomserver_events WHERE event_nid = ANY($1::bigint[])', [unique(eventNIDs)]);
    return new Map(r.rows.map((row) => [row.nid, { eventID: row.eventID, roomNID: row.roomNID }]));
  }

  async selectRoomsWithEventTypeNID(tx: Tx, eventTypeNID: EventTypeNID): Promise<RoomNID[]> {
    const r = await this.conn.query<{ nid: RoomNID }>(tx,
      'SELECT DISTINCT room_nid AS nid FROM roomserver_events WHERE event_type_nid = $1 ORDER BY room_nid', [eventTypeNID]);
    return r.rows.map((row) => row.nid);
  }

  async selectRoomNIDsForEventNIDs(tx: Tx, eventNIDs: readonly EventNID[]): Promise<Map<EventNID, RoomNID>> {
    if (eventNIDs.length === 0) return this.conn.nothing(tx, new Map());
    const r = await this.conn.query<{ nid: EventNID; room: RoomNID }>(tx,
      'SELECT event_nid AS nid, room_nid AS room FROM roomserver_events WHERE event_nid = ANY($1::bigint[])', [unique(eventNIDs)]);
    return new Map(r.rows.map((row) => [row.nid, row.room]));
  }
}

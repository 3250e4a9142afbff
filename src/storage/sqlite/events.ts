import { inject, injectable } from 'inversify';
import type { EventNID, EventStateKeyNID, EventTypeNID, RoomNID, StateSnapshotNID } from '../../types/nids.js';
import type { StateAtEvent, StateAtEventAndReference, StateEntry, StateKeyTuple } from '../../types/state.js';
import { checkStateAt, duplicate, missingOf, notFound, unique } from '../shared/contracts.js';
import type { EventRow, EventsTable, StoredEventRow, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { bool, IN_LIST, nidList, textList } from './values.js';

interface StateRow {
  eventTypeNID: EventTypeNID;
  eventStateKeyNID: EventStateKeyNID;
  eventNID: EventNID;
  beforeStateSnapshotNID: StateSnapshotNID;
  isRejected: number;
  eventID: string;
}

const STATE_COLUMNS = `event_type_nid AS eventTypeNID, event_state_key_nid AS eventStateKeyNID, event_nid AS eventNID,
  state_snapshot_nid AS beforeStateSnapshotNID, is_rejected AS isRejected, event_id AS eventID`;

const entryOf = (r: StateRow): StateEntry => ({ eventTypeNID: r.eventTypeNID, eventStateKeyNID: r.eventStateKeyNID, eventNID: r.eventNID });
const stateAtOf = (r: StateRow): StateAtEvent => ({ ...entryOf(r), beforeStateSnapshotNID: r.beforeStateSnapshotNID, isRejected: r.isRejected === 1 });

@injectable()
export class SqliteEventsTable implements EventsTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  reserveEventNID(tx: Tx): Promise<EventNID> {
    return this.conn.run(tx, (c) => (c.stmt(`UPDATE roomserver_sequences SET value = value + 1 WHERE name = 'event_nid'
      RETURNING value`).get() as { value: EventNID }).value);
  }

  insertEvent(tx: Tx, row: EventRow): Promise<void> {
    return this.conn.run(tx, (c) => {
      const r = c.stmt(`INSERT INTO roomserver_events (event_nid, room_nid, event_type_nid, event_state_key_nid, depth, event_id,
        auth_event_nids, is_rejected) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`)
        .run(row.eventNID, row.roomNID, row.eventTypeNID, row.eventStateKeyNID, row.depth, row.eventID, nidList(row.authEventNIDs), bool(row.isRejected));
      if (r.changes === 0) throw duplicate('event', row.eventID);
    });
  }

  reserveEventNIDsFor(tx: Tx, eventIDs: readonly string[]): Promise<EventNID[]> {
    return this.conn.run(tx, (c) => {
      const { count } = c.stmt(`SELECT count(*) AS count FROM json_each(?) AS t
        WHERE NOT EXISTS (SELECT 1 FROM roomserver_events e WHERE e.event_id = t.value)`).get(textList(unique(eventIDs))) as { count: number };
      if (count === 0) return [];
      const last = (c.stmt(`UPDATE roomserver_sequences SET value = value + ? WHERE name = 'event_nid' RETURNING value`).get(count) as { value: number }).value;
      return Array.from({ length: count }, (_, i) => (last - count + 1 + i) as EventNID);
    });
  }

  bulkInsertEvents(tx: Tx, rows: readonly StoredEventRow[]): Promise<void> {
    return this.conn.run(tx, (c) => {
      const insert = c.stmt(`INSERT INTO roomserver_events (event_nid, room_nid, event_type_nid, event_state_key_nid, depth, event_id,
        auth_event_nids, is_rejected, state_snapshot_nid, sent_to_output) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`);
      // All or none: a savepoint (or, outside a transaction, a transaction of its own) around the rows.
      c.atomically(() => {
        for (const row of rows) {
          const r = insert.run(row.eventNID, row.roomNID, row.eventTypeNID, row.eventStateKeyNID, row.depth, row.eventID,
            nidList(row.authEventNIDs), bool(row.isRejected), row.stateSnapshotNID, bool(row.sentToOutput ?? false));
          if (r.changes === 0) throw duplicate('event', row.eventID);
        }
      });
    });
  }

  bulkSelectEventsByID(tx: Tx, eventIDs: readonly string[]) {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT ${STATE_COLUMNS}, room_nid AS roomNID FROM roomserver_events WHERE event_id ${IN_LIST}`)
        .all(textList(unique(eventIDs))) as (StateRow & { roomNID: RoomNID })[];
      return new Map(rows.map((r) => [r.eventID, {
        eventNID: r.eventNID, roomNID: r.roomNID, stateSnapshotNID: r.beforeStateSnapshotNID, eventTypeNID: r.eventTypeNID,
        eventStateKeyNID: r.eventStateKeyNID, isRejected: r.isRejected === 1,
      }]));
    });
  }

  clearEventRejected(tx: Tx, eventNID: EventNID): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt('UPDATE roomserver_events SET is_rejected = 0 WHERE event_nid = ?').run(eventNID);
    });
  }

  selectEvent(tx: Tx, eventID: string) {
    return this.conn.run(tx, (c) => {
      const row = c.stmt(`SELECT event_nid AS eventNID, room_nid AS roomNID, state_snapshot_nid AS stateSnapshotNID
        FROM roomserver_events WHERE event_id = ?`).get(eventID) as
        { eventNID: EventNID; roomNID: RoomNID; stateSnapshotNID: StateSnapshotNID } | undefined;
      if (!row) throw notFound('event', eventID);
      return row;
    });
  }

  bulkSelectStateEventByID(tx: Tx, eventIDs: readonly string[], excludeRejected = false): Promise<StateEntry[]> {
    return this.conn.run(tx, (c) => {
      const rows = (c.stmt(`SELECT ${STATE_COLUMNS} FROM roomserver_events WHERE event_id ${IN_LIST}
        ORDER BY event_type_nid, event_state_key_nid, event_nid`).all(textList(unique(eventIDs))) as StateRow[]);
      const found = new Set(rows.map((r) => r.eventID));
      const err = missingOf('event', 'state events by ID', eventIDs, (id) => found.has(id));
      if (err) throw err;
      return rows.filter((r) => !excludeRejected || r.isRejected === 0).map(entryOf);
    });
  }

  bulkSelectStateEventByNID(tx: Tx, eventNIDs: readonly EventNID[], tuples: readonly StateKeyTuple[]): Promise<StateEntry[]> {
    return this.conn.run(tx, (c) => {
      const columns = 'event_type_nid AS eventTypeNID, event_state_key_nid AS eventStateKeyNID, event_nid AS eventNID';
      const order = 'ORDER BY event_type_nid, event_state_key_nid, event_nid';
      const nids = nidList(unique(eventNIDs));
      if (tuples.length === 0) {
        return c.stmt(`SELECT ${columns} FROM roomserver_events WHERE event_nid ${IN_LIST} ${order}`).all(nids) as StateEntry[];
      }
      return c.stmt(`SELECT ${columns} FROM roomserver_events WHERE event_nid ${IN_LIST}
        AND event_type_nid ${IN_LIST} AND event_state_key_nid ${IN_LIST} ${order}`)
        .all(nids, nidList(unique(tuples.map((t) => t.eventTypeNID))), nidList(unique(tuples.map((t) => t.eventStateKeyNID)))) as StateEntry[];
    });
  }

  bulkSelectStateAtEventByID(tx: Tx, eventIDs: readonly string[]): Promise<StateAtEvent[]> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT ${STATE_COLUMNS} FROM roomserver_events WHERE event_id ${IN_LIST}`)
        .all(textList(unique(eventIDs))) as StateRow[];
      return checkStateAt(eventIDs, rows).map(stateAtOf);
    });
  }

  updateEventState(tx: Tx, eventNID: EventNID, stateSnapshotNID: StateSnapshotNID): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt('UPDATE roomserver_events SET state_snapshot_nid = ? WHERE event_nid = ?').run(stateSnapshotNID, eventNID);
    });
  }

  selectEventSentToOutput(tx: Tx, eventNID: EventNID): Promise<boolean> {
    return this.conn.run(tx, (c) => {
      const row = c.stmt('SELECT sent_to_output AS sent FROM roomserver_events WHERE event_nid = ?').get(eventNID) as { sent: number } | undefined;
      if (!row) throw notFound('event NID', eventNID);
      return row.sent === 1;
    });
  }

  updateEventSentToOutput(tx: Tx, eventNID: EventNID): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt('UPDATE roomserver_events SET sent_to_output = 1 WHERE event_nid = ?').run(eventNID);
    });
  }

  selectEventID(tx: Tx, eventNID: EventNID): Promise<string> {
    return this.conn.run(tx, (c) => {
      const row = c.stmt('SELECT event_id AS id FROM roomserver_events WHERE event_nid = ?').get(eventNID) as { id: string } | undefined;
      if (!row) throw notFound('event NID', eventNID);
      return row.id;
    });
  }

  bulkSelectStateAtEventAndReference(tx: Tx, eventNIDs: readonly EventNID[]): Promise<StateAtEventAndReference[]> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT ${STATE_COLUMNS} FROM roomserver_events WHERE event_nid ${IN_LIST}`)
        .all(nidList(unique(eventNIDs))) as StateRow[];
      const found = new Set(rows.map((r) => r.eventNID));
      const err = missingOf('event', 'events by NID', eventNIDs, (n) => found.has(n));
      if (err) throw err;
      return rows.map((r) => ({ ...stateAtOf(r), eventID: r.eventID }));
    });
  }

  bulkSelectEventID(tx: Tx, eventNIDs: readonly EventNID[]): Promise<Map<EventNID, string>> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT event_nid AS nid, event_id AS id FROM roomserver_events WHERE event_nid ${IN_LIST}`)
        .all(nidList(unique(eventNIDs))) as { nid: EventNID; id: string }[];
      const map = new Map(rows.map((r) => [r.nid, r.id]));
      const err = missingOf('event', 'event IDs by NID', eventNIDs, (n) => map.has(n));
      if (err) throw err;
      return map;
    });
  }

  bulkSelectEventNID(tx: Tx, eventIDs: readonly string[]): Promise<Map<string, EventNID>> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT event_nid AS nid, event_id AS id FROM roomserver_events WHERE event_id ${IN_LIST}`)
        .all(textList(unique(eventIDs))) as { nid: EventNID; id: string }[];
      return new Map(rows.map((r) => [r.id, r.nid]));
    });
  }

  selectMaxEventDepth(tx: Tx, eventNIDs: readonly EventNID[]): Promise<number> {
    return this.conn.run(tx, (c) => (c.stmt(`SELECT COALESCE(MAX(depth) + 1, 0) AS depth FROM roomserver_events
      WHERE event_nid ${IN_LIST}`).get(nidList(unique(eventNIDs))) as { depth: number }).depth);
  }

  bulkSelectEventIDsAndRooms(tx: Tx, eventNIDs: readonly EventNID[]): Promise<Map<EventNID, { eventID: string; roomNID: RoomNID }>> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT event_nid AS nid, event_id AS eventID, room_nid AS roomNID FROM roomserver_events WHERE event_nid ${IN_LIST}`)
        .all(nidList(unique(eventNIDs))) as { nid: EventNID; eventID: string; roomNID: RoomNID }[];
      return new Map(rows.map((r) => [r.nid, { eventID: r.eventID, roomNID: r.roomNID }]));
    });
  }

  selectRoomsWithEventTypeNID(tx: Tx, eventTypeNID: EventTypeNID): Promise<RoomNID[]> {
    return this.conn.run(tx, (c) => (c.stmt(`SELECT DISTINCT room_nid AS nid FROM roomserver_events WHERE event_type_nid = ? ORDER BY room_nid`)
      .all(eventTypeNID) as { nid: RoomNID }[]).map((r) => r.nid));
  }

  selectRoomNIDsForEventNIDs(tx: Tx, eventNIDs: readonly EventNID[]): Promise<Map<EventNID, RoomNID>> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT event_nid AS nid, room_nid AS room FROM roomserver_events WHERE event_nid ${IN_LIST}`)
        .all(nidList(unique(eventNIDs))) as { nid: EventNID; room: RoomNID }[];
      return new Map(rows.map((r) => [r.nid, r.room]));
    });
  }
}

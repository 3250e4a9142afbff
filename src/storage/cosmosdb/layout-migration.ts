import type { EventNID, EventStateKeyNID, EventTypeNID, RoomNID, StateSnapshotNID } from '../../types/nids.js';
import type { CosmosConnection } from './connection.js';
import { docId } from './ids.js';
import { ROOM_EVENT_KIND } from './room-events.js';

/** Events migrated per page: one query, one bulk read of rows, one bulk write. */
const PAGE = 500;

interface OldRow {
  nid: EventNID;
  room: RoomNID;
  type: EventTypeNID;
  key: EventStateKeyNID;
  eventID: string;
  rejected: boolean;
  snapshot: StateSnapshotNID;
}

/**
 * Layouts 1 to 3 -> 4 (see layout.ts): every stored event (one with a locator, the commit point of those layouts,
 * and a row under the locator's NID) gets the RoomEventDoc its room holds in layout 4, from its row. Events a room
 * lists as appending (stored by a batch that was interrupted, not applied) are left out: in layout 4 they are not
 * stored, and the retry of that batch stores them as if it had never run. In pages by NID; repeating it (after a
 * crash, or on a tenant migrated already) writes the same documents again. Answers how many events it migrated.
 */
export async function migrateToRoomEvents(conn: CosmosConnection): Promise<number> {
  const r = conn.requests;
  const appending = new Map<number, Set<number>>();
  let after = 0;
  let migrated = 0;
  for (;;) {
    const locators = await r.crossPartitionQuery<{ nid: number; eventID: string }>('layout.migrate', conn.tenantPrefix,
      "SELECT TOP @limit c.nid, c.eventID FROM c WHERE STARTSWITH(c.pk, @tenant) AND c.k = 'event_id' AND c.nid > @after ORDER BY c.nid",
      [{ name: '@limit', value: PAGE }, { name: '@after', value: after }]);
    if (locators.length === 0) return migrated;
    after = locators.at(-1)!.nid;
    const rows = await r.readMany<OldRow>('layout.migrate', locators.map((l) => ({ id: 'row', pk: conn.pk('ev', l.nid) })));
    const held = rows.filter((row, i): row is NonNullable<typeof row> => row !== undefined && row.eventID === locators[i]!.eventID);
    const rooms = [...new Set(held.map((row) => row.room))].filter((room) => !appending.has(room));
    const heads = await r.readMany<{ roomNID: number; appending?: number[] }>('layout.migrate', rooms.map((room) => ({ id: 'room', pk: conn.pk('room', room) })));
    rooms.forEach((room, i) => appending.set(room, new Set(heads[i]?.appending ?? [])));
    const docs = held.filter((row) => !appending.get(row.room)!.has(row.nid)).map((row) => ({
      id: `e|${docId(row.eventID)}`, pk: conn.pk('room', row.room), k: ROOM_EVENT_KIND,
      eventID: row.eventID, nid: row.nid, room: row.room, type: row.type, key: row.key, rejected: row.rejected, snapshot: row.snapshot,
    }));
    await r.upsertMany('layout.migrate', docs);
    migrated += docs.length;
  }
}

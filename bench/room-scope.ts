/**
 * Room-scoped reads: the rows `room` (roomDetail) and `purge-room` / `purge-history` read, against the rows the room
 * holds, on a SQLite store of many rooms. The floor, counted by this benchmark with its own SQL on the same file
 * (not through the code measured), is every row of the room: its events, their JSON, prev_events references,
 * redactions and client transactions, its memberships, invites, snapshots, the blocks its snapshots name, its
 * aliases, directory entry and room row. The whole store's row count is what the earlier tools read (every table,
 * through the store dump), shown beside it.
 *
 * The rooms are generated (`matrix-storage generate`, seeds 1..N) and imported through the real import path.
 * Full run: 100 rooms of 10,000 events (1,000,000 events); --quick: 20 rooms of 500.
 */
import { importPDUFile } from '../src/io/import.js';
import { roomDetail } from '../src/io/room-sizes.js';
import { decodeBlockList } from '../src/storage/shared/state-codec.js';
import { fixed, freshSqliteFile, openSqliteStore, plainSqlite, roomFile, times, type BenchOptions, type Cell, type Section } from './support.js';

/** Every row the room holds, per table, counted with plain SQL on the store's file. */
function roomRows(file: string, roomID: string): Record<string, number> {
  const db = plainSqlite(file);
  try {
    const one = (sql: string, ...args: unknown[]) => (db.prepare(sql).get(...args) as { n: number }).n;
    const nid = (db.prepare('SELECT room_nid AS nid FROM roomserver_rooms WHERE room_id = ?').get(roomID) as { nid: number }).nid;
    const inRoom = 'SELECT event_nid FROM roomserver_events WHERE room_nid = ?';
    const idsInRoom = 'SELECT event_id FROM roomserver_events WHERE room_nid = ?';
    const lists = db.prepare('SELECT block_list AS list FROM roomserver_state_snapshots WHERE room_nid = ?').all(nid) as { list: Uint8Array }[];
    return {
      rooms: 1,
      events: one('SELECT count(*) AS n FROM roomserver_events WHERE room_nid = ?', nid),
      event_json: one(`SELECT count(*) AS n FROM roomserver_event_json WHERE event_nid IN (${inRoom})`, nid),
      previous_events: one(`SELECT count(*) AS n FROM roomserver_previous_events WHERE event_nid IN (${inRoom})`, nid),
      redactions: one(`SELECT count(*) AS n FROM roomserver_redactions WHERE redaction_event_id IN (${idsInRoom})`, nid),
      transactions: one(`SELECT count(*) AS n FROM roomserver_transactions WHERE event_id IN (${idsInRoom})`, nid),
      membership: one('SELECT count(*) AS n FROM roomserver_membership WHERE room_nid = ?', nid),
      invites: one('SELECT count(*) AS n FROM roomserver_invites WHERE room_nid = ?', nid),
      state_snapshots: lists.length,
      state_blocks: new Set(lists.flatMap((l) => decodeBlockList(l.list))).size,
      room_aliases: one('SELECT count(*) AS n FROM roomserver_room_aliases WHERE room_id = ?', roomID),
      published: one('SELECT count(*) AS n FROM roomserver_published WHERE room_id = ?', roomID),
    };
  } finally {
    db.close();
  }
}

const sum = (rows: Record<string, number>) => Object.values(rows).reduce((a, b) => a + b, 0);

export async function roomScopeBench(o: BenchOptions): Promise<Section> {
  const roomCount = o.quick ? 20 : 100;
  const eventsPerRoom = o.quick ? 500 : 10_000;
  const members = o.quick ? 50 : 500;
  const file = freshSqliteFile(o, 'room-scope');
  const storage = await openSqliteStore(file);
  const rooms: string[] = [];
  try {
    const started = Date.now();
    for (let i = 1; i <= roomCount; i++) {
      const room = await roomFile(o, { members, events: eventsPerRoom, seed: o.seed * 1000 + i });
      await importPDUFile(storage, room.file);
      rooms.push(room.roomID);
      if (i % 10 === 0) o.log(`  room-scope: ${i} of ${roomCount} rooms imported (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    }
    const stats = await storage.stats.collect();
    const storeRows = await (async () => {
      let n = 0;
      for (const name of ['rooms', 'events', 'event_json', 'previous_events', 'redactions', 'transactions', 'membership', 'invites',
        'state_snapshots', 'state_blocks', 'room_aliases', 'published'] as const) n += await storage.dump!.table(name).count();
      return n;
    })();

    const measure = async (what: string, roomID: string, run: () => Promise<number>): Promise<{ cells: Cell[]; data: Record<string, unknown> }> => {
      const held = roomRows(file, roomID);
      const t0 = performance.now();
      const read = await run();
      const ms = performance.now() - t0;
      const ratio = read / sum(held);
      return {
        cells: [what, sum(held), read, times(ratio), storeRows, times(storeRows / sum(held)), fixed(ms, 0)],
        data: { what, roomID, held, heldRows: sum(held), rowsRead: read, ratio, storeRows, ms },
      };
    };
    // Rooms from the middle of the store: neither the first nor the last stored.
    const target = rooms[Math.floor(roomCount / 2)]!;
    const other = rooms[Math.floor(roomCount / 2) + 1]!;
    const results = [
      await measure('room (roomDetail)', target, async () => (await roomDetail(storage, target)).rowsRead),
      await measure('purge-room', target, async () => (await storage.roomserver.purgeRoom(target)).rowsRead),
      await measure('purge-history (half the room)', other, async () => {
        const info = (await storage.roomserver.roomInfo(other))!;
        // The cut: the event stored halfway through the room (event NIDs grow as events are stored).
        const { rowsRead, eventsKept } = await storage.roomserver.purgeHistory(other, { beforeEventID: await middleEventID(file, info.roomNID) });
        if (eventsKept === undefined) throw new Error('purge-history kept nothing');
        return rowsRead;
      }),
    ];
    return {
      id: 'room-scope',
      title: `Room-scoped reads: rows read by room, purge-room and purge-history (SQLite, ${roomCount} rooms, ${stats.events.toLocaleString('en-US')} events)`,
      notes: [
        `${roomCount} generated rooms of ${eventsPerRoom.toLocaleString('en-US')} events and ${members} members each, imported through the import path; ` +
          'the rooms measured are from the middle of the store.',
        'Floor: the rows the room holds, counted with plain SQL on the same file (events, JSON, references, redactions, transactions, ' +
          'memberships, invites, snapshots, the blocks they name, aliases, directory, room row). "Read" is RoomScopeTable.rowsRead (rows the ' +
          'driver fetched; roomDetail adds the current snapshot and its blocks that currentState reads, and the latest events).',
        'The store column is every row of those tables: what the earlier tools read through the store dump for the same answer.',
        'purge-history cuts at the event stored halfway through its room; the floor is the whole room before the cut.',
      ],
      columns: ['operation', 'room rows (floor)', 'rows read', 'read ÷ floor', 'store rows', 'store ÷ floor', 'ms'],
      rows: results.map((r) => r.cells),
      data: { rooms: roomCount, eventsPerRoom, members, events: stats.events, storeRows, results: results.map((r) => r.data) },
    };
  } finally {
    await storage.close();
  }
}

/** The event stored halfway through the room, by event NID. */
async function middleEventID(file: string, roomNID: number): Promise<string> {
  const db = plainSqlite(file);
  try {
    const { n } = db.prepare('SELECT count(*) AS n FROM roomserver_events WHERE room_nid = ?').get(roomNID) as { n: number };
    return (db.prepare('SELECT event_id AS id FROM roomserver_events WHERE room_nid = ? ORDER BY event_nid LIMIT 1 OFFSET ?').get(roomNID, Math.floor(n / 2)) as { id: string }).id;
  } finally {
    db.close();
  }
}

/**
 * State resolution through the store: what a fork costs when a merge resolves it, in a small room and a large one.
 *
 * A generated room (200, and 20,000 members; --quick: 200 and 2,000) is imported through the real import path; then
 * two branches leave its latest event, each with 5 state events of its own (so the branches differ in 10 state
 * events), and an event names both branch ends: appending it resolves the two states (the built-in resolver, the
 * room's version 10: state resolution v2). Timed: that append (the merge), and, as the floor, loading the two states
 * it resolves (loadStateAfterEvent of both ends, caches warm as the merge finds them). Goals: the merge in the large
 * room at most 2x the merge in the small one, and at most 3x the floor in the large room.
 */
import { importPDUFile as importFile } from '../src/io/import.js';
import { parseEvent, type RoomEvent, type Storage } from '../src/index.js';
import {
  fixed, freshSqliteFile, median, openPostgresStore, openSqliteStore, postgresDatabase, roomFile, since, times,
  type BenchOptions, type Cell, type Section,
} from './support.js';

interface Measured { engine: string; members: number; stateEntries: number; mergeMs: number; loadMs: number }

/** The events of one fork from `tip`, and their merge. */
function forkEvents(roomID: string, tip: RoomEvent, creator: string, auth: readonly string[], rep: number): { a: RoomEvent[]; b: RoomEvent[]; merge: RoomEvent } {
  let ts = tip.originServerTS;
  const make = (id: string, prev: readonly string[], depth: number, stateKey?: string): RoomEvent => parseEvent(JSON.stringify({
    event_id: id, room_id: roomID, type: stateKey === undefined ? 'm.room.message' : 'org.example.branch', sender: creator, depth,
    origin_server_ts: ++ts, prev_events: prev, auth_events: auth,
    content: stateKey === undefined ? { msgtype: 'm.text', body: 'merge' } : { value: id }, ...(stateKey === undefined ? {} : { state_key: stateKey }),
  }), { roomVersion: '10' });
  const branch = (name: string) => {
    const out: RoomEvent[] = [];
    for (let i = 0; i < 5; i++) {
      const prev = i === 0 ? tip : out[i - 1]!;
      out.push(make(`$fork${rep}-${name}${i}:bench.example`, [prev.eventID], prev.depth + 1, `${name}${rep}-${i}`));
    }
    return out;
  };
  const a = branch('a');
  const b = branch('b');
  return { a, b, merge: make(`$fork${rep}-merge:bench.example`, [a.at(-1)!.eventID, b.at(-1)!.eventID], tip.depth + 6) };
}

async function measure(storage: Storage, roomID: string, reps: number): Promise<{ mergeMs: number; loadMs: number; stateEntries: number }> {
  const db = storage.roomserver;
  const info = (await db.roomInfo(roomID))!;
  const [create, power] = await Promise.all([db.getStateEvent(roomID, 'm.room.create', ''), db.getStateEvent(roomID, 'm.room.power_levels', '')]);
  const creator = create!.event.sender;
  const member = (await db.getStateEvent(roomID, 'm.room.member', creator))!;
  const auth = [create!.event.eventID, power!.event.eventID, member.event.eventID];
  const merges: number[] = [];
  const loads: number[] = [];
  let stateEntries = 0;
  for (let rep = 0; rep < reps; rep++) {
    const [tipID] = (await db.latestEventIDs(info.roomNID)).eventIDs;
    const [tip] = await db.eventsFromIDs([tipID!]);
    const { a, b, merge } = forkEvents(roomID, tip!.event, creator, auth, rep);
    // Branch b is input soft-failed: its states are stored, but the room's current state does not resolve it
    // against branch a as it comes; the merge is then the one event that resolves the two.
    await db.appendEvents([...a, ...b.map((event) => ({ event, options: { isSoftFailed: true } }))]);
    // The floor: the two states the merge resolves, read as it finds them (the same caches).
    let start = performance.now();
    const [sa, sb] = await Promise.all([db.loadStateAfterEvent(a.at(-1)!.eventID), db.loadStateAfterEvent(b.at(-1)!.eventID)]);
    loads.push(since(start));
    stateEntries = Math.max(sa.length, sb.length);
    start = performance.now();
    await db.appendEvent(merge);
    merges.push(since(start));
  }
  return { mergeMs: median(merges), loadMs: median(loads), stateEntries };
}

export async function stateResolutionBench(o: BenchOptions): Promise<Section> {
  const sizes = o.quick ? [200, 2_000] : [200, 20_000];
  const reps = o.quick ? 3 : 5;
  const measured: Measured[] = [];
  const engines: { name: string; open: (members: number) => Promise<Storage> }[] = [
    { name: 'SQLite', open: (members) => openSqliteStore(freshSqliteFile(o, `resolution-${members}`)) },
  ];
  if (o.postgresURL) {
    const url = await postgresDatabase(o, 'resolution');
    engines.push({ name: 'PostgreSQL', open: (members) => openPostgresStore(url, `resolution_${members}`) });
  }
  for (const engine of engines) {
    for (const members of sizes) {
      const room = await roomFile(o, { members, events: Math.round(members * 1.2) + 100, seed: o.seed, stateFraction: 0.9 });
      o.log(`state resolution: ${engine.name}, ${members} members: importing`);
      const storage = await engine.open(members);
      try {
        await importFile(storage, room.file);
        const m = await measure(storage, room.roomID, reps);
        measured.push({ engine: engine.name, members, ...m });
      } finally {
        await storage.close();
      }
    }
  }
  const rows: Cell[][] = [];
  for (const engine of engines) {
    const [small, large] = sizes.map((n) => measured.find((m) => m.engine === engine.name && m.members === n)!);
    for (const m of [small!, large!]) {
      rows.push([engine.name, m.members, m.stateEntries, fixed(m.mergeMs, 1), fixed(m.loadMs, 1), times(m.mergeMs / m.loadMs),
        m === large ? times(large!.mergeMs / small!.mergeMs) : '-']);
    }
  }
  return {
    id: 'state-resolution',
    title: `State resolution through the store: a merge of two branches differing in 10 state events, rooms of ${sizes.map((n) => n.toLocaleString('en-US')).join(' and ')} members`,
    notes: [
      'The merge: appendEvent of an event naming two branch ends, which resolves their states (v2, the built-in resolver) and writes the result; median of ' + reps + ' forks.',
      'The floor: loading the two states it resolves (loadStateAfterEvent of both ends), in the same run on the same store.',
      'Goals: the merge at most 2x in the large room as in the small one; at most 3x the floor in the large room.',
    ],
    columns: ['engine', 'members', 'state entries', 'merge ms', 'two state loads ms', 'merge × loads', 'merge × small room'],
    rows,
    data: { sizes, reps, measured },
  };
}

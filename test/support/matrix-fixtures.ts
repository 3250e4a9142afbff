import fs from 'node:fs';
import path from 'node:path';
import { type EventLoader, parsePDU, resolveState, type RoomEvent, stateMapKey } from '../../src/index.js';

/**
 * Reading the public known-answer vectors (kept outside the repository, never copied into it) and adapting their
 * events to RoomEvent for the state resolution and auth rule tests.
 */
export const VECTORS = path.resolve(import.meta.dirname, '../../../shared/vectors');

/** The vectors folder, or undefined after saying why the known-answer cases cannot run. */
export function vectorsDir(sub: string): string | undefined {
  const dir = path.join(VECTORS, sub);
  if (fs.existsSync(dir)) return dir;
  console.log(`      ${dir} is absent: its known-answer cases cannot run here (the public vectors live beside the repository, not in it)`);
  return undefined;
}

export function readJSONL<T>(file: string): T[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as T);
}

export type FixtureEvent = Record<string, unknown> & { event_id: string; type: string; sender: string; state_key?: string; content: Record<string, unknown> };

/** One known-answer case of vectors/stateres (see its README for the format). */
export interface ResolutionCase {
  id: string;
  room_version: string;
  events: FixtureEvent[];
  state_sets: Record<string, string>[];
  expected: Record<string, string>;
  dag?: { resolve_at: string; state_sets_are_after: string[]; prev_events_are_node_ids?: boolean };
  v1_auth_event_ids?: string[];
}

/** The ID of a prev/auth reference: a plain ID (v3+), or the ID of an `[id, hashes]` pair (v1, v2). */
export const referenceID = (ref: unknown): string => (Array.isArray(ref) ? String(ref[0]) : String(ref));

/**
 * A fixture's event as a RoomEvent. Some sources' harnesses leave fields out (ruma: depth; Synapse's v2.1 cases:
 * a create content without room_version): they read as 0 or absent here, as in the source. A v12 create event has
 * no room_id: its room ID is its event ID with the sigil `!`. `prevAsNodes` keeps bare node names (Synapse's
 * harness) as IDs no event has, as there.
 */
export function fixtureEvent(e: FixtureEvent, roomVersion: string, prevAsNodes = false): RoomEvent {
  const isCreate = e.type === 'm.room.create' && e.state_key === '';
  const refs = (v: unknown) => (Array.isArray(v) ? v.map(referenceID) : []);
  const roomID = typeof e.room_id === 'string' ? e.room_id : isCreate ? `!${e.event_id.slice(1)}` : undefined;
  if (roomID === undefined) throw new Error(`fixture event ${e.event_id} has no room_id`);
  return {
    eventID: e.event_id,
    roomID,
    type: e.type,
    stateKey: e.state_key,
    sender: e.sender,
    depth: typeof e.depth === 'number' ? e.depth : 0,
    originServerTS: typeof e.origin_server_ts === 'number' ? e.origin_server_ts : 0,
    prevEventIDs: refs(e.prev_events).map((p) => (prevAsNodes ? `$${p}` : p)),
    authEventIDs: refs(e.auth_events),
    content: e.content,
    redacts: typeof e.redacts === 'string' ? e.redacts : typeof e.content.redacts === 'string' ? e.content.redacts : undefined,
    roomVersion,
    json: JSON.stringify(e),
  };
}

/** A loader over a map of events that records every call, to check batching. */
export function recordingLoader(events: ReadonlyMap<string, RoomEvent>): { load: EventLoader; calls: string[][] } {
  const calls: string[][] = [];
  const load: EventLoader = async (ids) => {
    calls.push([...ids]);
    return new Map(ids.flatMap((id) => {
      const e = events.get(id);
      return e ? [[id, e] as const] : [];
    }));
  };
  return { load, calls };
}

export const toMap = (o: Record<string, string>): Map<string, string> => new Map(Object.entries(o));
export const toObject = (m: ReadonlyMap<string, string>): Record<string, string> => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

/** A deterministic shuffle (mulberry32), so a failing order can be replayed. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  let s = seed >>> 0;
  const random = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/* Real rooms (vectors/real-events): their PDUs read as parsePDU reads them, walked in DAG order. */

export interface RoomSet { roomId: string; roomVersion: string; events: (string | null)[]; [k: string]: unknown }
export interface RealRoomFixture { roomSets?: RoomSet[]; cases: { kind: string; roomVersion?: string; input?: unknown }[] }

export interface RealRoom { file: string; set: RoomSet; events: RoomEvent[] }

/** The room's PDUs (those of its event-id and content-hash cases), in the order the file lists, unlisted ones after in DAG order. */
export function roomsOf(file: string, f: RealRoomFixture): RealRoom[] {
  return (f.roomSets ?? []).map((set) => {
    const byID = new Map<string, RoomEvent>();
    for (const c of f.cases) {
      if ((c.kind !== 'event-id' && c.kind !== 'content-hash') || typeof c.input !== 'object' || c.input === null) continue;
      if ((c.input as { depth?: unknown }).depth === undefined || c.roomVersion !== set.roomVersion) continue;
      const { event } = parsePDU(c.input as Record<string, unknown>, set.roomVersion);
      if (event.roomID === set.roomId) byID.set(event.eventID, event);
    }
    const listed = set.events.filter((id): id is string => id !== null);
    const ordered = listed.map((id) => {
      const e = byID.get(id);
      if (!e) throw new Error(`${file}: no PDU for ${id}`);
      return e;
    });
    const rest = [...byID.values()].filter((e) => !listed.includes(e.eventID));
    while (rest.length > 0) {
      const known = new Set(ordered.map((e) => e.eventID));
      const next = rest.findIndex((e) => e.prevEventIDs.every((p) => known.has(p) || !byID.has(p)));
      ordered.push(...rest.splice(next < 0 ? 0 : next, 1));
    }
    return { file, set, events: ordered };
  });
}

/** Every room the real-events fixtures publish (none when the folder is absent). */
export function realRooms(): RealRoom[] {
  const dir = vectorsDir('real-events');
  return dir ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
    .flatMap((file) => roomsOf(file, JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as RealRoomFixture)) : [];
}

/** Walks a room: the state after each event (undefined when a prev event is unknown: no state can be derived). */
export async function walk(room: RealRoom, visit: (event: RoomEvent, before: Map<string, string> | undefined) => void) {
  const byID = new Map(room.events.map((e) => [e.eventID, e]));
  const after = new Map<string, Map<string, string> | undefined>();
  const { load } = recordingLoader(byID);
  for (const event of room.events) {
    const states = event.prevEventIDs.map((p) => after.get(p));
    const before = states.some((s) => s === undefined) ? undefined
      : states.length === 0 ? new Map<string, string>()
        : states.length === 1 ? new Map(states[0]) : await resolveState(room.set.roomVersion, states as Map<string, string>[], load);
    visit(event, before);
    const next = before && new Map(before);
    if (next && event.stateKey !== undefined) next.set(stateMapKey(event.type, event.stateKey), event.eventID);
    after.set(event.eventID, next);
  }
  return after;
}


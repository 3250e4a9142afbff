import type { Storage } from '../index.js';
import type { StateEntry } from '../types/state.js';
import type { DumpTableName } from '../storage/tables/dump.js';
import { rowsOf } from './dump-rows.js';
import { dumpOf } from './copy.js';
import { NIDSet } from './nid-sets.js';

/**
 * `matrix-storage check`: a store's invariants, verified on any driver, read-only. Every table is read once
 * through the dump; NIDs seen are kept in bitsets (a bit per NID), so memory stays small for millions of events.
 *
 * The invariants: every event row has its JSON and names a known room, event type and state key; every snapshot
 * an event or a room names exists, with its blocks, and every entry of those blocks names a stored event; every latest event exists, and a room with one latest event has the state after it as its current state
 * (with several, that state is a resolution this layer does not compute); every counter is at or above the NIDs
 * and stream positions in use; every membership names stored users and, when it has one, a stored event.
 */
export type ViolationKind =
  | 'event-without-json' | 'event-unknown-room' | 'event-unknown-type' | 'event-unknown-state-key'
  | 'missing-snapshot' | 'snapshot-missing-block' | 'block-missing-event'
  | 'latest-event-missing' | 'current-state-differs' | 'state-unreadable'
  | 'counter-behind' | 'membership-missing-event' | 'membership-unknown-user';

export interface Violation {
  readonly kind: ViolationKind;
  readonly message: string;
}

export interface CheckReport {
  readonly ok: boolean;
  /** Rows read per table. */
  readonly rows: Readonly<Partial<Record<DumpTableName, number>>>;
  /** Rooms whose current state was compared with the state after their single latest event. */
  readonly roomsStateChecked: number;
  /** Rooms with several latest events (a fork not yet merged): their current state is a resolution, not checked. */
  readonly roomsWithSeveralLatest: number;
  /** Violations found per kind, and the first of each kind (at most `MAX_LISTED` each). */
  readonly counts: Readonly<Partial<Record<ViolationKind, number>>>;
  readonly violations: readonly Violation[];
  readonly elapsedMs: number;
}

const MAX_LISTED = 20;

export async function checkStore(storage: Storage, options: { pageSize?: number } = {}): Promise<CheckReport> {
  const started = Date.now();
  const dump = dumpOf(storage, 'store');
  const pageSize = options.pageSize ?? 1000;
  const counts: Partial<Record<ViolationKind, number>> = {};
  const violations: Violation[] = [];
  const rows: Partial<Record<DumpTableName, number>> = {};
  const violation = (kind: ViolationKind, message: string) => {
    counts[kind] = (counts[kind] ?? 0) + 1;
    if (counts[kind]! <= MAX_LISTED) violations.push({ kind, message });
  };
  const max: Record<string, number> = {};
  const seen = (counter: string, n: number) => { if (n > (max[counter] ?? 0)) max[counter] = n; };
  async function* read<K extends DumpTableName>(name: K) {
    rows[name] = 0;
    for await (const row of rowsOf(dump, name, pageSize)) {
      rows[name]!++;
      yield row;
    }
  }

  const types = new NIDSet();
  for await (const t of read('event_types')) { types.add(t.nid); seen('event_type_nid', t.nid); }
  const stateKeys = new NIDSet();
  for await (const k of read('event_state_keys')) { stateKeys.add(k.nid); seen('state_key_nid', k.nid); }
  const rooms = new NIDSet();
  const referencedSnapshots = new Map<number, string>();
  const singleLatest = new Map<number, { roomID: string; eventID?: string }>();
  const latestOfRooms: { roomID: string; latest: number[] }[] = [];
  let roomsWithSeveralLatest = 0;
  for await (const r of read('rooms')) {
    rooms.add(r.nid);
    seen('room_nid', r.nid);
    if (r.snapshot !== 0 && !referencedSnapshots.has(r.snapshot)) referencedSnapshots.set(r.snapshot, `room ${r.roomID}`);
    latestOfRooms.push({ roomID: r.roomID, latest: r.latest });
    if (r.latest.length === 1) singleLatest.set(r.latest[0]!, { roomID: r.roomID });
    else if (r.latest.length > 1) roomsWithSeveralLatest++;
  }
  const json = new NIDSet();
  for await (const j of read('event_json')) json.add(j.nid);
  const events = new NIDSet();
  for await (const e of read('events')) {
    events.add(e.nid);
    seen('event_nid', e.nid);
    if (!json.has(e.nid)) violation('event-without-json', `event ${e.eventID} (NID ${e.nid}) has no JSON`);
    if (!rooms.has(e.room)) violation('event-unknown-room', `event ${e.eventID} names room NID ${e.room}, which is not stored`);
    if (!types.has(e.type)) violation('event-unknown-type', `event ${e.eventID} names event type NID ${e.type}, which is not stored`);
    if (e.key !== 0 && !stateKeys.has(e.key)) violation('event-unknown-state-key', `event ${e.eventID} names state key NID ${e.key}, which is not stored`);
    if (e.snapshot !== 0 && !referencedSnapshots.has(e.snapshot)) referencedSnapshots.set(e.snapshot, `event ${e.eventID}`);
    const latest = singleLatest.get(e.nid);
    if (latest) latest.eventID = e.eventID;
  }
  // Blocks and snapshots are checked where something stored names them: content-addressed documents that nothing
  // names are garbage, not a broken store (on Cosmos DB, a call that lost its room's commit to another writer leaves
  // the state it wrote first; see docs/cosmosdb.md).
  const blocks = new NIDSet();
  const blocksMissingEvents = new Map<number, string>();
  for await (const b of read('state_blocks')) {
    blocks.add(b.nid);
    seen('state_block_nid', b.nid);
    const missing = b.entries.filter(([, , event]) => !events.has(event));
    if (missing.length > 0) blocksMissingEvents.set(b.nid, `state block ${b.nid} names ${missing.length} event NIDs that are not stored (${missing.slice(0, 3).map((m) => m[2]).join(', ')})`);
  }
  const snapshots = new NIDSet();
  const reported = new Set<number>();
  for await (const s of read('state_snapshots')) {
    snapshots.add(s.nid);
    seen('state_snapshot_nid', s.nid);
    if (!referencedSnapshots.has(s.nid)) continue;
    const missing = s.blocks.filter((nid) => !blocks.has(nid));
    if (missing.length > 0) violation('snapshot-missing-block', `state snapshot ${s.nid} names state blocks that are not stored: ${missing.slice(0, 5).join(', ')}`);
    for (const nid of s.blocks) {
      const message = blocksMissingEvents.get(nid);
      if (message !== undefined && !reported.has(nid)) {
        reported.add(nid);
        violation('block-missing-event', message);
      }
    }
  }
  for (const [nid, by] of referencedSnapshots) {
    if (!snapshots.has(nid)) violation('missing-snapshot', `state snapshot ${nid} is not stored (named by ${by}, perhaps among others)`);
  }
  for (const { roomID, latest } of latestOfRooms) {
    for (const nid of latest) if (!events.has(nid)) violation('latest-event-missing', `room ${roomID}: latest event NID ${nid} is not stored`);
  }
  for await (const m of read('membership')) {
    if (m.event !== 0 && !events.has(m.event)) violation('membership-missing-event', `membership of state key NID ${m.target} in room NID ${m.room} names event NID ${m.event}, which is not stored`);
    for (const user of [m.target, m.sender]) {
      if (user !== 0 && !stateKeys.has(user)) violation('membership-unknown-user', `membership in room NID ${m.room} names user (state key) NID ${user}, which is not stored`);
    }
  }
  for await (const v of read('key_backup_versions')) seen('key_backup_version', v.version);
  for await (const m of read('send_to_device')) seen('send_to_device_id', m.id);
  for await (const c of read('key_changes')) seen('key_change_id', c.changeID);

  const counters = await dump.counters();
  for (const [name, inUse] of Object.entries(max)) {
    const counter = counters[name];
    if (counter !== undefined && counter < inUse) violation('counter-behind', `counter ${name} is at ${counter}, behind ${inUse} in use: the next one handed out would be reused`);
  }

  let roomsStateChecked = 0;
  for (const [nid, { roomID, eventID }] of singleLatest) {
    if (eventID === undefined || !events.has(nid)) continue;
    roomsStateChecked++;
    try {
      const [current, after] = await Promise.all([storage.roomserver.currentState(roomID), storage.roomserver.loadStateAfterEvent(eventID)]);
      if (stateKey(current) !== stateKey(after)) {
        violation('current-state-differs', `room ${roomID}: current state (${current.length} entries) is not the state after its latest event ${eventID} (${after.length} entries)`);
      }
    } catch (e) {
      violation('state-unreadable', `room ${roomID}: its state cannot be read: ${(e as Error).message}`);
    }
  }
  return {
    ok: violations.length === 0, rows, roomsStateChecked, roomsWithSeveralLatest, counts, violations, elapsedMs: Date.now() - started,
  };
}

const stateKey = (entries: readonly StateEntry[]) => entries.map((e) => `${e.eventTypeNID},${e.eventStateKeyNID},${e.eventNID}`).sort().join(' ');


import { createHash } from 'node:crypto';
import type { Storage } from '../index.js';
import type { StateEntry } from '../types/state.js';
import { DUMP_TABLES, type DumpTableName, type StoreDump } from '../storage/tables/dump.js';
import { RowDigest, rowsOf } from './dump-rows.js';
// A cycle (copy.ts runs verifyCopy): both only call each other's functions, after both modules have loaded.
import { dumpOf } from './copy.js';

/**
 * Comparing two stores as `copy` does at its end and `copy --verify-only` on its own: per table, the row counts
 * and an order-independent digest of every row (NIDs and positions included), read through each driver's dump;
 * then, per room, the current state and the state after a sample of its events, asked through the Database API,
 * so that the target is proven to resolve state (snapshots to blocks to entries) as the source does.
 */
export interface VerifyOptions {
  readonly pageSize?: number;
  /** Events per room whose state is compared (default 8): the same ones on both sides, chosen by row hash. */
  readonly samplesPerRoom?: number;
  /** Tables not compared (a copy that left them out: `copy --without`). */
  readonly without?: readonly DumpTableName[];
}

export interface TableComparison {
  readonly table: DumpTableName;
  readonly sourceRows: number;
  readonly targetRows: number;
  readonly sourceDigest: string;
  readonly targetDigest: string;
  readonly equal: boolean;
}

export interface VerifyReport {
  readonly equal: boolean;
  readonly tables: readonly TableComparison[];
  readonly rooms: number;
  readonly sampledEvents: number;
  /** What differs, one line each (empty when equal). */
  readonly differences: readonly string[];
  readonly elapsedMs: number;
}

export async function verifyCopy(source: Storage, target: Storage, options: VerifyOptions = {}): Promise<VerifyReport> {
  const started = Date.now();
  const pageSize = options.pageSize ?? 1000;
  const samplesPerRoom = options.samplesPerRoom ?? 8;
  const from = dumpOf(source, 'source');
  const to = dumpOf(target, 'target');
  const differences: string[] = [];
  const tables: TableComparison[] = [];
  const roomIDs = new Map<number, string>();
  const samples = new EventSample(samplesPerRoom);

  const without = new Set(options.without ?? []);
  for (const name of DUMP_TABLES) {
    if (without.has(name)) continue;
    const [s, t] = await Promise.all([
      digestTable(from, name, pageSize, (row, hash) => {
        if (name === 'rooms') { const r = row as { nid: number; roomID: string }; roomIDs.set(r.nid, r.roomID); }
        if (name === 'events') { const e = row as { room: number; eventID: string }; samples.offer(e.room, e.eventID, hash); }
      }),
      digestTable(to, name, pageSize),
    ]);
    const equal = s.rows === t.rows && s.hex() === t.hex();
    tables.push({ table: name, sourceRows: s.rows, targetRows: t.rows, sourceDigest: s.hex(), targetDigest: t.hex(), equal });
    if (s.rows !== t.rows) differences.push(`${name}: ${s.rows} rows in the source, ${t.rows} in the target`);
    else if (!equal) differences.push(`${name}: the same ${s.rows} rows counted, but their contents differ`);
  }

  let sampledEvents = 0;
  for (const [roomNID, roomID] of roomIDs) {
    const [a, b] = await Promise.all([stateHash(() => source.roomserver.currentState(roomID)), stateHash(() => target.roomserver.currentState(roomID))]);
    if (a !== b) differences.push(`room ${roomID}: current state differs (${a} in the source, ${b} in the target)`);
    for (const eventID of samples.of(roomNID)) {
      sampledEvents++;
      const [x, y] = await Promise.all([
        stateHash(() => source.roomserver.loadStateAfterEvent(eventID)), stateHash(() => target.roomserver.loadStateAfterEvent(eventID)),
      ]);
      if (x !== y) differences.push(`room ${roomID}: state after ${eventID} differs (${x} in the source, ${y} in the target)`);
    }
  }
  return { equal: differences.length === 0, tables, rooms: roomIDs.size, sampledEvents, differences, elapsedMs: Date.now() - started };
}

async function digestTable(dump: StoreDump, name: DumpTableName, pageSize: number, each?: (row: unknown, hash: Buffer) => void): Promise<RowDigest> {
  const digest = new RowDigest();
  for await (const row of rowsOf(dump, name, pageSize)) {
    const hash = digest.add(row);
    each?.(row, hash);
  }
  return digest;
}

/** A state as a short text to compare: its entry count and a hash of its sorted entries, or the error it raised. */
async function stateHash(load: () => Promise<readonly StateEntry[]>): Promise<string> {
  try {
    const entries = (await load()).map((e) => [e.eventTypeNID, e.eventStateKeyNID, e.eventNID] as number[])
      .sort((p, q) => p[0]! - q[0]! || p[1]! - q[1]! || p[2]! - q[2]!);
    return `${entries.length} entries, sha256 ${createHash('sha256').update(JSON.stringify(entries)).digest('hex').slice(0, 16)}`;
  } catch (e) {
    return `error ${(e as { code?: string }).code ?? (e as Error).name}`;
  }
}

/** The events of each room with the smallest row hashes: a sample that is the same whichever order rows come in. */
class EventSample {
  private readonly byRoom = new Map<number, { id: string; key: string }[]>();

  constructor(private readonly size: number) {}

  offer(room: number, eventID: string, hash: Buffer): void {
    if (this.size === 0) return;
    const key = hash.toString('hex', 0, 8);
    const kept = this.byRoom.get(room) ?? [];
    if (kept.length < this.size || key < kept.at(-1)!.key) {
      kept.push({ id: eventID, key });
      kept.sort((a, b) => (a.key < b.key ? -1 : 1));
      if (kept.length > this.size) kept.pop();
      this.byRoom.set(room, kept);
    }
  }

  of(room: number): string[] {
    return (this.byRoom.get(room) ?? []).map((k) => k.id);
  }
}

import readline from 'node:readline/promises';
import type { PurgeReport } from '../../io/purge.js';
import type { RoomDetail, StoreSizes } from '../../io/room-sizes.js';
import { CliError, EXIT, fmtBytes, fmtInt, fmtSeconds, type CliIO } from '../output.js';

/** The text forms of `rooms`, `room`, `purge-room` and `purge-history` (their --json forms are the reports as they are). */

export function formatRoomSizes(sizes: StoreSizes, limit: number | undefined): string[] {
  const shown = limit === undefined ? sizes.rooms : sizes.rooms.slice(0, limit);
  const head = ['room', 'events', 'state', 'stored entries', 'blocks', 'joined', 'JSON', 'state bytes', 'bytes'];
  const rows = shown.map((r) => [r.roomID, fmtInt(r.events), fmtInt(r.currentState), fmtInt(r.stateEntries), fmtInt(r.stateBlocks),
    fmtInt(r.joinedMembers), fmtBytes(r.jsonBytes), fmtBytes(r.stateBytes), fmtBytes(r.bytes)]);
  const t = sizes.totals;
  rows.push(['(all rooms)', fmtInt(t.events), '', fmtInt(t.stateEntries), fmtInt(t.stateBlocks), '', fmtBytes(t.jsonBytes), fmtBytes(t.stateBytes), fmtBytes(t.bytes)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [line(head), ...rows.map(line)];
  if (limit !== undefined && sizes.rooms.length > limit) out.push(`(${fmtInt(sizes.rooms.length - limit)} more rooms; --limit to show more)`);
  if (sizes.unattributed.bytes > 0 || sizes.unattributed.events > 0) {
    out.push(`not in any stored room: ${fmtInt(sizes.unattributed.events)} events, ${fmtBytes(sizes.unattributed.bytes)} (run check)`);
  }
  out.push(`bytes are the payload (event JSON, state blocks and snapshots) without indexes; the whole store takes ${fmtBytes(sizes.storeBytes)}`);
  return out;
}

export function formatRoomDetail(room: RoomDetail): string[] {
  return [
    `${room.roomID} (room NID ${room.roomNID}), version ${room.version || '(none stored)'}; its create event ${room.createEventID ?? '(not stored)'}` +
      ` declares ${room.createEventVersion ?? '-'}`,
    `  ${fmtInt(room.events)} events, ${fmtBytes(room.jsonBytes)} of JSON`,
    `  state: ${fmtInt(room.currentState)} entries now; ${fmtInt(room.stateEntries)} stored in ${fmtInt(room.stateBlocks)} blocks, ` +
      `${fmtInt(room.stateSnapshots)} snapshots, ${fmtBytes(room.stateBytes)}`,
    `  ${fmtInt(room.joinedMembers)} joined members; ${fmtBytes(room.bytes)} in all`,
    `  forward extremities (latest events): ${room.latestEvents.map((e) => `${e.eventID} (depth ${e.depth})`).join(', ') || 'none'}`,
  ];
}

export function formatPurgeReport(report: PurgeReport, what: string): string[] {
  const tables = Object.entries(report.deleted).filter(([, n]) => (n ?? 0) > 0).map(([t, n]) => `${t} ${fmtInt(n ?? 0)}`);
  const size = report.bytesBefore === undefined || report.bytesAfter === undefined ? ''
    : report.bytesAfter < report.bytesBefore
      ? `; the store went from ${fmtBytes(report.bytesBefore)} to ${fmtBytes(report.bytesAfter)} (${fmtBytes(report.bytesBefore - report.bytesAfter)} given back)`
      // PostgreSQL's VACUUM keeps freed pages in the files (and may add to its free-space maps): nothing is given
      // back to the file system, and a negative "given back" would only puzzle.
      : `; the store's files did not shrink (${fmtBytes(report.bytesAfter)}): the freed space stays in them and later writes reuse it`;
  return [
    `${what} ${report.roomID}: ${fmtInt(report.rowsDeleted)} rows deleted in ${fmtSeconds(report.elapsedMs)}` +
      `${report.eventsKept !== undefined ? `, ${fmtInt(report.eventsKept)} events kept` : ''}${size}`,
    `  ${tables.join(', ') || 'nothing to delete'}`,
    `  ${report.reclaimed}`,
  ];
}

/**
 * Asks before a command that deletes: `--yes` answers for the user; on a terminal the user types the room ID;
 * anywhere else (a script, CI) the command refuses rather than guess.
 */
export async function confirmDeletion(io: CliIO, yes: boolean, command: string, roomID: string, what: string): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY) throw new CliError(`${command} deletes ${what}: run it with --yes to confirm (stdin is not a terminal to ask on)`, EXIT.usage);
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    io.err(`${command} deletes ${what}. This cannot be undone.`);
    const answer = await rl.question(`Type the room ID (${roomID}) to go on: `);
    if (answer.trim() !== roomID) throw new CliError(`${command}: not confirmed; nothing deleted`, EXIT.failed);
  } finally {
    rl.close();
  }
}

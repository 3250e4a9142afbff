import type { Storage } from '../../index.js';
import { fmtInt } from '../output.js';

/** A few lines that say what a room looks like now: name, topic, rules, members by membership. */
export async function roomAtAGlance(storage: Storage, roomID: string): Promise<string> {
  const db = storage.roomserver;
  const state = await db.currentState(roomID);
  const events = await db.events(state.map((e) => e.eventNID));
  const byMembership = new Map<string, number>();
  let name = '';
  let topic = '';
  let joinRule = '';
  let historyVisibility = '';
  let version = '';
  for (const { event } of events) {
    const c = event.content;
    if (event.type === 'm.room.member') {
      const m = typeof c.membership === 'string' ? c.membership : '?';
      byMembership.set(m, (byMembership.get(m) ?? 0) + 1);
    } else if (event.type === 'm.room.name') name = String(c.name ?? '');
    else if (event.type === 'm.room.topic') topic = String(c.topic ?? '');
    else if (event.type === 'm.room.join_rules') joinRule = String(c.join_rule ?? '');
    else if (event.type === 'm.room.history_visibility') historyVisibility = String(c.history_visibility ?? '');
    else if (event.type === 'm.room.create') version = String(c.room_version ?? '1');
  }
  const info = (await db.roomInfo(roomID))!;
  const latest = await db.latestEventIDs(info.roomNID);
  const members = [...byMembership].sort((a, b) => b[1] - a[1]).map(([m, n]) => `${fmtInt(n)} ${m}`).join(', ');
  return [
    `room ${roomID} (version ${version || '?'})`,
    `  name: ${name || '(none)'}`,
    `  topic: ${topic || '(none)'}`,
    `  join rule: ${joinRule || '?'}, history visibility: ${historyVisibility || '?'}`,
    `  current state: ${fmtInt(state.length)} entries; members: ${members || 'none'}`,
    `  latest event: ${latest.eventIDs.join(', ')} (next depth ${latest.depth})`,
  ].join('\n');
}

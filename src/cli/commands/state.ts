import type { Storage } from '../../index.js';
import type { StateEntry } from '../../types/state.js';
import { CliError } from '../output.js';
import { preview } from '../../types/input.js';
import { compareCodePoints } from '../../matrix/canonical-json.js';

export interface StateOptions {
  /** The state right after this event (default: the room's current state). */
  readonly at?: string;
  /** With `at`: the state right before the event instead. */
  readonly before?: boolean;
}

/** The state as the client-server API shows it: the events, sorted by (type, state_key). */
export async function roomState(storage: Storage, roomID: string, options: StateOptions = {}): Promise<unknown[]> {
  const db = storage.roomserver;
  const info = await db.roomInfo(roomID);
  if (!info) throw new CliError(`state: room ${preview(roomID)} is not in this store`);
  let entries: StateEntry[];
  if (options.at !== undefined) {
    const [stored] = await db.eventsFromIDs([options.at]);
    if (!stored || stored.event.roomID !== roomID) throw new CliError(`state: event ${preview(options.at)} is not in room ${preview(roomID)}`);
    entries = options.before ? await db.loadStateAtEvent(options.at) : await db.loadStateAfterEvent(options.at);
  } else {
    entries = await db.currentState(roomID);
  }
  // As clients see events: with their ID, which PDUs of room version 3 and later do not carry.
  const events = (await db.events(entries.map((e) => e.eventNID)))
    .map((s): Record<string, unknown> => ({ event_id: s.event.eventID, ...(JSON.parse(s.event.json) as Record<string, unknown>) }));
  return events.sort((a, b) => compareCodePoints(String(a.type), String(b.type)) || compareCodePoints(String(a.state_key), String(b.state_key)));
}

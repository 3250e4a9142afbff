import type { Storage } from '../../index.js';
import type { StateEntry } from '../../types/state.js';
import { CliError } from '../output.js';
import { preview } from '../../types/input.js';
import { compareCodePoints } from '../../matrix/canonical-json.js';

export type StateOptions =
  /** The room's current state. */
  | { readonly before?: undefined; readonly after?: undefined }
  /** The state right before this event (what it was checked against; RoomserverDatabase.loadStateBeforeEvent). */
  | { readonly before: string; readonly after?: undefined }
  /** The state right after this event (it included if it is an accepted state event; loadStateAfterEvent). */
  | { readonly after: string; readonly before?: undefined };

/** The state as the client-server API shows it: the events, sorted by (type, state_key). */
export async function roomState(storage: Storage, roomID: string, options: StateOptions = {}): Promise<unknown[]> {
  const db = storage.roomserver;
  const info = await db.roomInfo(roomID);
  if (!info) throw new CliError(`state: room ${preview(roomID)} is not in this store`);
  let entries: StateEntry[];
  const eventID = options.before ?? options.after;
  if (eventID !== undefined) {
    const [stored] = await db.eventsFromIDs([eventID]);
    if (!stored || stored.event.roomID !== roomID) throw new CliError(`state: event ${preview(eventID)} is not in room ${preview(roomID)}`);
    entries = options.before !== undefined ? await db.loadStateBeforeEvent(eventID) : await db.loadStateAfterEvent(eventID);
  } else {
    entries = await db.currentState(roomID);
  }
  // As clients see events: with their ID, which PDUs of room version 3 and later do not carry.
  const events = (await db.events(entries.map((e) => e.eventNID)))
    .map((s): Record<string, unknown> => ({ event_id: s.event.eventID, ...(JSON.parse(s.event.json) as Record<string, unknown>) }));
  return events.sort((a, b) => compareCodePoints(String(a.type), String(b.type)) || compareCodePoints(String(a.state_key), String(b.state_key)));
}

import type { RoomEvent } from '../../types/event.js';
import { UnknownEventsError } from '../../types/errors.js';

/** A room state: `${type}\u0000${stateKey}` -> event ID. */
export type StateMap = ReadonlyMap<string, string>;

/** The key of a (type, state key) in a StateMap. */
export function stateMapKey(type: string, stateKey: string): string {
  return `${type}\u0000${stateKey}`;
}

/** The StateMap key of a state event. */
export function stateKeyOf(event: RoomEvent): string {
  return stateMapKey(event.type, event.stateKey ?? '');
}

/** Loads the events it can by ID, in one call per batch; IDs it does not hold are absent from the result. */
export type EventLoader = (eventIDs: readonly string[]) => Promise<ReadonlyMap<string, RoomEvent>>;

/** How many unknown IDs an error message lists before it says "and N more". */
const LISTED = 10;

/**
 * The events one resolution has loaded: each ID is asked of the loader once, a batch per call. An ID the loader
 * does not hold is an UnknownEventsError naming it: resolving without an event would be a guess.
 */
export class EventCache {
  private readonly events = new Map<string, RoomEvent>();

  constructor(private readonly loader: EventLoader, private readonly purpose: string) {}

  /** Loads those of `ids` not yet loaded, in one call. */
  async fetch(ids: Iterable<string>): Promise<void> {
    const wanted = [...new Set(ids)].filter((id) => !this.events.has(id));
    if (wanted.length === 0) return;
    const got = await this.loader(wanted);
    const missing: string[] = [];
    for (const id of wanted) {
      const event = got.get(id);
      if (event === undefined) missing.push(id);
      else this.events.set(id, event);
    }
    if (missing.length > 0) {
      const listed = missing.slice(0, LISTED).join(', ') + (missing.length > LISTED ? ` and ${missing.length - LISTED} more` : '');
      throw new UnknownEventsError(`${this.purpose} needs ${missing.length} event(s) the loader does not hold: ${listed}`, missing);
    }
  }

  /** A loaded event (a caller fetches first: an ID it did not is a bug, said as such). */
  get(id: string): RoomEvent {
    const event = this.events.get(id);
    if (event === undefined) throw new Error(`event ${id} was used before it was loaded`);
    return event;
  }

  peek(id: string): RoomEvent | undefined {
    return this.events.get(id);
  }
}

import { redactionAllowed } from '../../matrix/auth/rules.js';
import { domainOf } from '../../matrix/auth/views.js';
import type { RoomEvent } from '../../types/event.js';
import type { EventNID, EventStateKeyNID, EventTypeNID } from '../../types/nids.js';
import type { RedactionInfo, Tx } from '../tables/index.js';
import type { EventRowRef, RoomPlan, Writes } from './append-plan.js';
import type { NidMaps } from './nid-assigner.js';
import { redactEventJSON } from './redaction.js';
import type { RoomGraph } from './room-graph.js';
import type { StoreEventResult } from './roomserver-database.js';

/** The event a redaction event redacts, when it is one that can apply: undefined otherwise. */
export function redactedBy(event: RoomEvent): string | undefined {
  if (event.type !== 'm.room.redaction' || event.stateKey !== undefined) return undefined;
  return event.redacts === event.eventID ? undefined : event.redacts;
}

/**
 * Redactions in the input path. A redaction is recorded when it is input; it is applied (the target's JSON
 * overwritten with its redacted form, the redaction marked validated) once both it and its target are stored, in the
 * same room, and only when the spec's rule allows it (see redactionAllowed: the redaction's sender shares a server
 * with the target's sender, or has the `redact` power level in the state before the redaction). A redaction that is
 * not allowed stays stored and pending. A redaction stored before its target is decided when the target arrives,
 * on the redaction's own state.
 */
export class RedactionPlanner {
  /** By redacted event ID: the first redaction stored for it, as the call has left it. */
  private readonly redactionOf: Map<string, RedactionInfo>;
  /** Events that a redaction has been applied to (before the call, or by it). */
  private readonly redacted = new Set<string>();
  private tuples?: { powerLevels: { eventTypeNID: EventTypeNID; eventStateKeyNID: EventStateKeyNID }; create: { eventTypeNID: EventTypeNID; eventStateKeyNID: EventStateKeyNID } };

  constructor(
    private readonly tx: Tx,
    private readonly nids: NidMaps,
    private readonly graph: RoomGraph,
    stored: ReadonlyMap<string, RedactionInfo>,
    /** Stored events outside the call that the call's redactions need (targets, and redactions of the call's events). */
    private readonly storedEvents: ReadonlyMap<string, RoomEvent>,
  ) {
    this.redactionOf = new Map(stored);
    for (const info of stored.values()) if (info.validated) this.redacted.add(info.redactsEventID);
  }

  /**
   * Handles one accepted event of the call: records it if it is a redaction, and applies whichever redaction it
   * completes (its own, or a pending one against it) when allowed. `eventOf` finds an event stored before the call or
   * earlier in it; `rowOf` its row.
   */
  async handle(event: RoomEvent, room: RoomPlan, writes: Writes, eventOf: (id: string) => RoomEvent | undefined,
    rowOf: (id: string) => EventRowRef | undefined): Promise<StoreEventResult['redaction']> {
    let info: RedactionInfo | undefined;
    const target = redactedBy(event);
    if (event.type === 'm.room.redaction' && event.stateKey === undefined) {
      if (target === undefined) return undefined;
      const inserted = { redactionEventID: event.eventID, redactsEventID: target, validated: false };
      if (!writes.redactions.some((r) => r.redactionEventID === event.eventID)) writes.redactions.push(inserted);
      // The first redaction stored for an event is the one a later target looks up.
      if (!this.redactionOf.has(target)) this.redactionOf.set(target, inserted);
      info = inserted;
    } else {
      info = this.redactionOf.get(event.eventID);
    }
    if (!info || info.validated || this.redacted.has(info.redactsEventID)) return undefined;
    const redactionEvent = eventOf(info.redactionEventID) ?? this.storedEvents.get(info.redactionEventID);
    const targetEvent = eventOf(info.redactsEventID) ?? this.storedEvents.get(info.redactsEventID);
    const targetRow = rowOf(info.redactsEventID);
    if (!redactionEvent || !targetEvent || !targetRow || redactionEvent.roomID !== targetEvent.roomID) return undefined;
    if (!(await this.allowed(room, redactionEvent, targetEvent))) return undefined;
    const json = writes.json.get(targetRow.eventNID) ?? targetEvent.json;
    // A room stored without a version (by an older build) is redacted by the rules of version 1, the default.
    writes.json.set(targetRow.eventNID, redactEventJSON(json, redactionEvent.json, room.roomVersion || '1'));
    writes.validated.push(info.redactionEventID);
    this.redactionOf.set(info.redactsEventID, { ...info, validated: true });
    this.redacted.add(info.redactsEventID);
    return { redactionEvent, redactedEventID: targetEvent.eventID };
  }

  /**
   * The spec's rule (redactionAllowed), on the state before the redaction. A redaction from the target's sender's
   * server needs no state; one stored without state, or in a state without a create event, is judged on that alone.
   */
  private async allowed(room: RoomPlan, redaction: RoomEvent, target: RoomEvent): Promise<boolean> {
    const server = domainOf(redaction.sender);
    if (server !== '' && server === domainOf(target.sender)) return true;
    await this.graph.ensure([redaction.eventID]);
    const before = this.graph.nodes.get(redaction.eventID)?.before ?? 0;
    if (before === 0) return false;
    this.tuples ??= await this.authTuples();
    const [pl, create] = await Promise.all([room.state.lookup(before, this.tuples.powerLevels), room.state.lookup(before, this.tuples.create)]);
    const events = await this.graph.eventsByNID([pl, create].filter((n) => n !== 0) as EventNID[]);
    const createEvent = events.get(create as EventNID);
    if (!createEvent) return false;
    return redactionAllowed(room.roomVersion || '1', redaction, target, events.get(pl as EventNID), createEvent).allowed;
  }

  private async authTuples() {
    const [types, keys] = await Promise.all([
      this.nids.eventTypes(this.tx, ['m.room.power_levels', 'm.room.create']),
      this.nids.stateKeys(this.tx, ['']),
    ]);
    const key = keys.get('')!;
    return {
      powerLevels: { eventTypeNID: types.get('m.room.power_levels')!, eventStateKeyNID: key },
      create: { eventTypeNID: types.get('m.room.create')!, eventStateKeyNID: key },
    };
  }
}

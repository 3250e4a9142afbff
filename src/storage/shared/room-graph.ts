import { InvalidInputError, MissingEventError, MissingPrevEventsError, StateConflictError } from '../../types/errors.js';
import type { RoomEvent } from '../../types/event.js';
import type { EventNID, EventStateKeyNID, EventTypeNID, RoomNID } from '../../types/nids.js';
import type { StateEntry } from '../../types/state.js';
import type { RoomserverTables, StoredEventInfo, Tx } from '../tables/index.js';
import type { StoredEvent } from './roomserver-database.js';
import type { PackedEntries } from './state-codec.js';
import { stateMapKey } from '../../matrix/state-resolution/index.js';
import type { StateResolver } from './state-resolver.js';
import type { StatePlan, StateRef } from './state-storage.js';

/**
 * What resolutions read that never changes, kept across calls (bounded): parsed events for the resolver (an event's
 * stored JSON changes only by redaction, which keeps every field the auth rules and resolution read), event IDs by
 * NID, and the names of type and state key NIDs.
 */
export interface ResolutionCaches {
  readonly events: Map<string, RoomEvent>;
  readonly eventIDs: Map<EventNID, string>;
  readonly typeNames: Map<EventTypeNID, string>;
  readonly stateKeyNames: Map<EventStateKeyNID, string>;
}

/** What the input path knows of an event of the room graph: stored before the call, or input earlier in it. */
export interface EventNode {
  readonly eventID: string;
  readonly eventNID: EventNID;
  readonly roomNID: RoomNID;
  /** The state before the event: stored or planned; 0 while unknown (an outlier, or an event stored without state). */
  before: StateRef;
  /** The event's own entry (state key NID 0 when it is not a state event). */
  readonly own: StateEntry;
  isRejected: boolean;
  /** The state after the event, once asked for. */
  after?: StateRef;
}

/** Whether two state references are the same state without reading it: one snapshot NID, or one planned state. */
export const sameState = (a: StateRef, b: StateRef) => a === b || (typeof a !== 'number' && typeof b !== 'number' && a.nid !== undefined && a.nid === b.nid)
  || (typeof a === 'number' && typeof b !== 'number' && b.nid === a) || (typeof b === 'number' && typeof a !== 'number' && a.nid === b);

function samePacked(a: PackedEntries, b: PackedEntries): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The room as a graph, for one call of the input path: the state before an event from its prev events, the state
 * after it, and the combination of states that differ (by the configured resolver, or a StateConflictError naming
 * the conflicting keys). Events are read as needed, many at a time, and remembered for the call.
 */
export class RoomGraph {
  readonly nodes = new Map<string, EventNode>();
  private readonly idsByNID = new Map<EventNID, string>();
  /** What this call read that the caches may keep once it commits (NIDs the call assigned could still roll back). */
  private readonly learned = { events: [] as RoomEvent[], ids: [] as [EventNID, string][], types: [] as [EventTypeNID, string][], keys: [] as [EventStateKeyNID, string][] };

  constructor(
    private readonly tx: Tx,
    private readonly tables: RoomserverTables,
    private readonly resolver: StateResolver | undefined,
    private readonly loadEvents: (tx: Tx, eventIDs: readonly string[]) => Promise<StoredEvent[]>,
    /** The events of the call, by ID: stored or not yet. */
    private readonly inCall: ReadonlyMap<string, RoomEvent>,
    private readonly caches: ResolutionCaches,
  ) {}

  /** Hands the caches what the call read, once it has committed. */
  learn(): void {
    const c = this.caches;
    for (const e of this.learned.events) c.events.set(e.eventID, e);
    for (const [nid, id] of this.learned.ids) c.eventIDs.set(nid, id);
    for (const [nid, name] of this.learned.types) c.typeNames.set(nid, name);
    for (const [nid, name] of this.learned.keys) c.stateKeyNames.set(nid, name);
  }

  /** Records stored events read by the call. */
  addStored(stored: ReadonlyMap<string, StoredEventInfo>): void {
    for (const [eventID, s] of stored) {
      if (this.nodes.has(eventID)) continue;
      this.add({
        eventID, eventNID: s.eventNID, roomNID: s.roomNID, before: s.stateSnapshotNID, isRejected: s.isRejected,
        own: { eventTypeNID: s.eventTypeNID, eventStateKeyNID: s.eventStateKeyNID, eventNID: s.eventNID },
      });
    }
  }

  add(node: EventNode): EventNode {
    this.nodes.set(node.eventID, node);
    this.idsByNID.set(node.eventNID, node.eventID);
    return node;
  }

  /** Reads the events among `eventIDs` the graph does not know yet (one read); unknown ones stay unknown. */
  async ensure(eventIDs: readonly string[]): Promise<void> {
    const missing = [...new Set(eventIDs.filter((id) => !this.nodes.has(id)))];
    if (missing.length > 0) this.addStored(await this.tables.events.bulkSelectEventsByID(this.tx, missing));
  }

  /** The state after a known event with a known state: before it, with its own entry on top if it is an accepted state event. */
  async after(plan: StatePlan, eventID: string): Promise<StateRef | undefined> {
    const node = this.nodes.get(eventID);
    if (!node || node.before === 0) return undefined;
    if (node.after === undefined) {
      node.after = node.own.eventStateKeyNID !== 0 && !node.isRejected ? await plan.derive(node.before, [node.own]) : node.before;
    }
    return node.after;
  }

  /**
   * The state before an event from its prev events: none, the empty state; one, the state after it; several, the
   * state after each, combined. MissingPrevEventsError, listing them, when any prev event is unknown or stateless.
   */
  async stateFromPrevEvents(plan: StatePlan, roomVersion: string, event: RoomEvent): Promise<StateRef> {
    const prevs = [...new Set(event.prevEventIDs)];
    if (prevs.length === 0) return plan.derive([], []);
    await this.ensure(prevs);
    const states: StateRef[] = [];
    const missing: string[] = [];
    for (const id of prevs) {
      const after = await this.after(plan, id);
      if (after === undefined) missing.push(id);
      else states.push(after);
    }
    if (missing.length > 0) {
      throw new MissingPrevEventsError(`the state before event ${event.eventID} is not known: its prev events ${missing.join(', ')} are not stored, ` +
        'or stored without state (outliers); input them first, or supply the state before the event (options.stateBefore)', missing);
    }
    return this.combine(plan, roomVersion, states);
  }

  /** The state made of the given state events, as a caller supplies it; rejected events are left out (as Dendrite does). */
  async suppliedState(plan: StatePlan, eventIDs: readonly string[]): Promise<StateRef> {
    await this.ensure(eventIDs);
    const unknown = eventIDs.filter((id) => !this.nodes.has(id));
    if (unknown.length > 0) throw new MissingEventError(`the supplied state names events that are not stored: ${unknown.join(', ')}; store them first (as outliers)`);
    const entries = new Map<string, StateEntry>();
    for (const id of eventIDs) {
      const node = this.nodes.get(id)!;
      if (node.isRejected || node.own.eventStateKeyNID === 0) continue;
      const key = `${node.own.eventTypeNID}:${node.own.eventStateKeyNID}`;
      const seen = entries.get(key);
      if (seen && seen.eventNID !== node.eventNID) {
        throw new InvalidInputError(`the supplied state names two events for one (type, state key): ${this.idsByNID.get(seen.eventNID)} and ${id}`);
      }
      entries.set(key, node.own);
    }
    return plan.derive([], [...entries.values()]);
  }

  /**
   * One state from several: equal states are that state; states that differ are resolved by the configured
   * resolver, and the result stored as a delta over the first (so that it shares its blocks).
   */
  async combine(plan: StatePlan, roomVersion: string, states: readonly StateRef[]): Promise<StateRef> {
    const distinct: StateRef[] = [];
    for (const s of states) if (!distinct.some((d) => sameState(d, s))) distinct.push(s);
    if (distinct.length === 1) return distinct[0]!;
    const packed = await Promise.all(distinct.map((s) => plan.packed(s)));
    if (packed.every((p) => samePacked(p, packed[0]!))) return distinct[0]!;
    const sets = packed.map(toMap);
    if (!this.resolver) {
      const conflicted = new Set<string>();
      for (const set of sets) {
        for (const [tuple, nid] of set) if (sets.some((other) => other.get(tuple) !== nid)) conflicted.add(tuple);
      }
      const names = await this.tupleNames([...conflicted]);
      throw new StateConflictError(`states that differ must be combined and no state resolver is configured; they differ at ${
        names.map((n) => `(${n.type}, ${JSON.stringify(n.stateKey)})`).join(', ')}: configure one (state.resolver) or supply the state before the event`, names);
    }
    return this.resolve(plan, roomVersion, distinct[0]!, sets);
  }

  private async resolve(plan: StatePlan, roomVersion: string, base: StateRef, sets: Map<string, number>[]): Promise<StateRef> {
    const tuples = [...new Set(sets.flatMap((s) => [...s.keys()]))];
    const eventNIDs = [...new Set(sets.flatMap((s) => [...s.values()]))] as EventNID[];
    const [names, eventIDs] = await Promise.all([this.tupleNames(tuples), this.eventIDsOf(eventNIDs)]);
    const keyOf = new Map(tuples.map((t, i) => [t, stateMapKey(names[i]!.type, names[i]!.stateKey)]));
    const maps = sets.map((set) => new Map([...set].map(([tuple, nid]) => [keyOf.get(tuple)!, eventIDs.get(nid as EventNID)!])));
    const resolved = await this.resolver!(roomVersion, maps, (ids) => this.eventsForResolver(ids));
    // Back to entries: the sets' own events by what the sets say of them; events the resolver took from outside every
    // set (an auth difference's) read, as stored events must be.
    const fromSets = new Map<string, StateEntry>();
    for (const set of sets) {
      for (const [tuple, nid] of set) {
        const [t, k] = tuple.split(':').map(Number);
        fromSets.set(eventIDs.get(nid as EventNID)!, { eventTypeNID: t as EventTypeNID, eventStateKeyNID: k as EventStateKeyNID, eventNID: nid as EventNID });
      }
    }
    await this.ensure([...resolved.values()].filter((id) => !fromSets.has(id)));
    const unknown = [...resolved.values()].filter((id) => !fromSets.has(id) && !this.nodes.has(id));
    if (unknown.length > 0) throw new MissingEventError(`the state resolver chose events that are not stored: ${unknown.join(', ')}`);
    const resolvedEntries = [...resolved.values()].map((id) => fromSets.get(id) ?? this.nodes.get(id)!.own);
    const baseEntries = sets[0]!;
    const kept = new Set(resolvedEntries.map((e) => `${e.eventTypeNID}:${e.eventStateKeyNID}`));
    const delta: StateEntry[] = resolvedEntries.filter((e) => baseEntries.get(`${e.eventTypeNID}:${e.eventStateKeyNID}`) !== e.eventNID);
    for (const tuple of baseEntries.keys()) {
      if (kept.has(tuple)) continue;
      const [t, k] = tuple.split(':').map(Number);
      delta.push({ eventTypeNID: t as EventTypeNID, eventStateKeyNID: k as EventStateKeyNID, eventNID: 0 as EventNID });
    }
    return delta.length === 0 ? base : plan.derive(base, delta);
  }

  private async eventsForResolver(ids: readonly string[]): Promise<Map<string, RoomEvent>> {
    const out = new Map<string, RoomEvent>();
    const rest: string[] = [];
    for (const id of ids) {
      const known = this.inCall.get(id) ?? this.caches.events.get(id);
      if (known) out.set(id, known);
      else rest.push(id);
    }
    if (rest.length > 0) {
      for (const s of await this.loadEvents(this.tx, rest)) {
        out.set(s.event.eventID, s.event);
        this.learned.events.push(s.event);
      }
    }
    return out;
  }

  /** Events by NID (missing ones absent): the call's own from memory, the rest read together. */
  async eventsByNID(nids: readonly EventNID[]): Promise<Map<EventNID, RoomEvent>> {
    const ids = await this.eventIDsOf(nids);
    const events = await this.eventsForResolver([...ids.values()]);
    const out = new Map<EventNID, RoomEvent>();
    for (const [nid, id] of ids) {
      const e = events.get(id);
      if (e) out.set(nid, e);
    }
    return out;
  }

  /** Event IDs of NIDs: the call's own events from memory (their rows may not be written yet), the rest in one read. */
  private async eventIDsOf(nids: readonly EventNID[]): Promise<Map<EventNID, string>> {
    const out = new Map<EventNID, string>();
    const rest: EventNID[] = [];
    for (const nid of nids) {
      const id = this.idsByNID.get(nid) ?? this.caches.eventIDs.get(nid);
      if (id !== undefined) out.set(nid, id);
      else rest.push(nid);
    }
    if (rest.length > 0) {
      for (const [nid, id] of await this.tables.events.bulkSelectEventID(this.tx, rest)) {
        out.set(nid, id);
        this.learned.ids.push([nid, id]);
      }
    }
    return out;
  }

  /** (type, state key) strings of tuples written "typeNID:keyNID". */
  private async tupleNames(tuples: readonly string[]): Promise<{ type: string; stateKey: string }[]> {
    const parsed = tuples.map((t) => t.split(':').map(Number) as [EventTypeNID, EventStateKeyNID]);
    const { typeNames, stateKeyNames } = this.caches;
    const typesMissing = [...new Set(parsed.map((p) => p[0]).filter((t) => !typeNames.has(t)))];
    const keysMissing = [...new Set(parsed.map((p) => p[1]).filter((k) => !stateKeyNames.has(k)))];
    const [types, keys] = await Promise.all([
      typesMissing.length > 0 ? this.tables.eventTypes.bulkSelectEventType(this.tx, typesMissing) : new Map<EventTypeNID, string>(),
      keysMissing.length > 0 ? this.tables.eventStateKeys.bulkSelectEventStateKey(this.tx, keysMissing) : new Map<EventStateKeyNID, string>(),
    ]);
    this.learned.types.push(...types);
    this.learned.keys.push(...keys);
    const type = (t: EventTypeNID) => typeNames.get(t) ?? types.get(t) ?? `#${t}`;
    const key = (k: EventStateKeyNID) => stateKeyNames.get(k) ?? keys.get(k) ?? `#${k}`;
    return parsed.map(([t, k]) => ({ type: type(t), stateKey: key(k) }));
  }
}

/** Packed entries as a map from "typeNID:keyNID" to event NID. */
function toMap(packed: PackedEntries): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < packed.length; i += 3) m.set(`${packed[i]}:${packed[i + 1]}`, packed[i + 2]!);
  return m;
}

/** Entries of `after` that `before` does not hold, and entries of `before` that `after` replaced or dropped. */
export function diffStates(before: PackedEntries, after: PackedEntries): { added: StateEntry[]; removed: StateEntry[] } {
  const added: StateEntry[] = [];
  const removed: StateEntry[] = [];
  const entry = (p: PackedEntries, i: number): StateEntry => ({ eventTypeNID: p[i] as EventTypeNID, eventStateKeyNID: p[i + 1] as EventStateKeyNID, eventNID: p[i + 2] as EventNID });
  let i = 0;
  let j = 0;
  while (i < before.length || j < after.length) {
    const c = i >= before.length ? 1 : j >= after.length ? -1 : (before[i]! - after[j]!) || (before[i + 1]! - after[j + 1]!);
    if (c < 0) {
      removed.push(entry(before, i));
      i += 3;
    } else if (c > 0) {
      added.push(entry(after, j));
      j += 3;
    } else {
      if (before[i + 2] !== after[j + 2]) {
        removed.push(entry(before, i));
        added.push(entry(after, j));
      }
      i += 3;
      j += 3;
    }
  }
  return { added, removed };
}


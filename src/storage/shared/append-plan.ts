import type { AuthResult } from '../../matrix/auth/views.js';
import type { RoomEvent } from '../../types/event.js';
import type { EventNID, EventStateKeyNID, RoomNID } from '../../types/nids.js';
import type { StateEntry } from '../../types/state.js';
import type {
  InviteWrite, MembershipRow, MembershipWrite, RedactionInfo, StoredEventInfo, StoredEventRow, TransactionKey,
} from '../tables/index.js';
import type { Tx } from '../tables/index.js';
import type { StoreEventResult } from './roomserver-database.js';
import type { StatePlan, StateRef } from './state-storage.js';

/** The types the input path (EventAppender) plans with: what it read, each room's plan, what it will write. */

/** An event's row as the write path needs it. */
export interface EventRowRef {
  readonly eventNID: EventNID;
  readonly roomNID: RoomNID;
  /** The state before the event: stored (0 when unknown) or planned by this batch. */
  stateBefore: StateRef;
}

/** What one call reads before it plans: everything that can refuse an event, and what planning starts from. */
export interface Reads {
  readonly rooms: Map<string, RoomNID>;
  readonly versions: Map<RoomNID, string>;
  /** The call's events, their prev events and their redactions' targets, those that are stored. */
  readonly stored: Map<string, StoredEventInfo>;
  readonly references: Map<string, EventNID[]>;
  /** By redacted event ID: the first redaction stored for it. */
  readonly redactions: Map<string, RedactionInfo>;
  /** By transaction key: the event it sent, if any. */
  readonly transactions: Map<string, string>;
  /** The call's invite events that are stored as invites already (active or not). */
  readonly storedInvites: Set<string>;
}

/** One room while a call plans it: held (locked) for the call, changed in memory, written at the end. */
export interface RoomPlan {
  readonly roomNID: RoomNID;
  readonly roomVersion: string;
  readonly state: StatePlan;
  /** The forward extremities. */
  latest: { eventNID: EventNID; eventID: string }[];
  /** The current state: after the only forward extremity, or the combination of the states after all of them. */
  current: StateRef;
  lastEventSentNID: EventNID;
  /** What the room's final write is conditional on (an ETag on Cosmos DB). */
  version: string;
  moved: boolean;
  /** See LatestEvents.appending: stored by an interrupted batch, not applied; their references do not count. */
  readonly appending: ReadonlySet<EventNID>;
  /** Memberships as the events so far left them (undefined: no row yet); users not read yet are absent. */
  readonly memberships: Map<EventStateKeyNID, MembershipRow | undefined>;
  /** What to write per user: the last change wins. */
  readonly membershipWrites: Map<EventStateKeyNID, MembershipWrite>;
  /** The active invites of the users whose memberships were read, in insertion order, as the events so far left them. */
  readonly invites: Map<EventStateKeyNID, string[]>;
}

/** A new invite of the call, retired if a later event of the call retires it. */
export type NewInvite = { -readonly [K in keyof InviteWrite]: InviteWrite[K] };

/** Everything a call writes, collected while it plans. */
export class Writes {
  readonly transactions: { key: TransactionKey; eventID: string }[] = [];
  /** By event NID, the JSON to store (a redaction's overwrite replaces a new event's own JSON). */
  readonly json = new Map<EventNID, string>();
  readonly rows: { row: Omit<StoredEventRow, 'stateSnapshotNID'>; ref: EventRowRef }[] = [];
  /** Stored events whose unknown state before this call sets. */
  readonly stateUpdates: EventRowRef[] = [];
  /** Stored events stored rejected that the call stores again as accepted. */
  readonly accepted: { eventNID: EventNID; eventID: string }[] = [];
  /** Stored events the call sends to output (their sent_to_output flag set); new rows carry it themselves. */
  readonly sent: EventNID[] = [];
  readonly edges = new Map<string, { previousEventID: string; eventNID: EventNID }>();
  readonly redactions: RedactionInfo[] = [];
  readonly validated: string[] = [];
  /** New invites in event order (their insertion order), by ID too. */
  readonly newInvites: NewInvite[] = [];
  readonly newInviteByID = new Map<string, NewInvite>();
  /** Invites stored before the call that the call retires. */
  readonly retiredInvites: { roomNID: RoomNID; targetUserNID: EventStateKeyNID; inviteEventID: string }[] = [];
  /** Each event's retired invites, by result index. */
  readonly retiredBy = new Map<number, string[]>();
  /** By room, the NIDs of the call's events, stored before or now. */
  readonly eventNIDs = new Map<RoomNID, Set<EventNID>>();
}

/** How the current state changed with an event: what a sync or federation-sender consumer needs. */
export interface StateDelta {
  /** Entries the current state gained (a replaced entry is removed and added). */
  readonly added: readonly StateEntry[];
  /** Entries the current state lost. */
  readonly removed: readonly StateEntry[];
  /** True when the event's supplied state replaced the room's state and forward extremities (a rejoin). */
  readonly rewritten: boolean;
}

export const NO_CHANGE: StateDelta = { added: [], removed: [], rewritten: false };

/** A planned result: snapshot NIDs are filled in once the plan's states are written. */
export interface PlannedResult {
  readonly room: RoomPlan;
  readonly stateAtEvent: Omit<StoreEventResult['stateAtEvent'], 'beforeStateSnapshotNID'>;
  readonly before: StateRef;
  readonly after: StateRef;
  readonly duplicate: boolean;
  readonly applied: boolean;
  readonly delta: StateDelta;
  readonly redaction?: StoreEventResult['redaction'];
  readonly auth?: AuthResult;
}

/** The event a member event is about, its sender and its membership; and the stored row it is. */
export interface MemberChange {
  readonly event: RoomEvent;
  readonly eventNID: EventNID;
  readonly targetUserNID: EventStateKeyNID;
  readonly senderUserNID: EventStateKeyNID;
}

/**
 * An engine that commits each room's part of a call at once (Cosmos DB: a transactional batch in the room's
 * partition) writes the input path's plan itself, in its own crash-safe order. A room's commit holds a bounded
 * number of operations: the input path splits a call whose events might need more (see `commitOperations`).
 */
export interface PlanCommitter {
  /** The most operations one room's commit may hold. */
  readonly maxCommitOperations: number;
  /** At most how many operations an event adds to its room's commit. */
  commitOperations(event: RoomEvent): number;
  writePlan(tx: Tx, rooms: Map<RoomNID, RoomPlan>, w: Writes): Promise<void>;
  /**
   * Writes, while the call reads, what the call will write of a lone new event whose row is known without those
   * reads (one that names exactly its room's forward extremities, so its state before is the room's current state):
   * its row, JSON and ID locator, which nobody finds before the room's commit. Answers the NID it gave the event,
   * which the call uses if the event turns out new; `writePlan` then writes again only what differs. Undefined
   * where the engine has nothing to gain.
   */
  writeAhead?(tx: Tx, row: Omit<StoredEventRow, 'eventNID'>, json: string): Promise<EventNID | undefined>;
}

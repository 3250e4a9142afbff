import { ConcurrentUpdateError, ConflictError } from '../../types/errors.js';
import { preview } from '../../types/input.js';
import type { EventNID, RoomNID } from '../../types/nids.js';
import type { RoomserverTables, TransactionsTable, Tx, UnitOfWork } from '../tables/index.js';
import type { EventRowRef, RoomPlan, Writes } from './append-plan.js';

/**
 * How long a claim on a room lasts (engines without atomic transactions): far longer than a batch takes, so that
 * only a writer that crashed holding it makes the others wait, at most this long.
 */
export const ROOM_CLAIM_MS = 10_000;

/**
 * Marks promises that are started early and awaited after other awaits: a rejection meanwhile is not "unhandled"
 * (which would end the process); it still rejects where the promise is awaited.
 */
export function awaitedLater(...promises: Promise<unknown>[]): void {
  for (const p of promises) p.catch(() => {});
}

/**
 * The call's client transactions, one after another, without atomic transactions: a key found stored already is
 * this call's (a retried write whose answer was lost) or another writer's since the call read, which makes the call
 * start again.
 */
export async function insertTransactions(tx: Tx, transactions: TransactionsTable, w: Writes): Promise<void> {
  for (const x of w.transactions) {
    try {
      await transactions.insertTransaction(tx, x.key, x.eventID);
    } catch (e) {
      if (!(e instanceof ConflictError)) throw e;
      if ((await transactions.selectTransactionEventIDIfAny(tx, x.key)) !== x.eventID) {
        throw new ConcurrentUpdateError(`client transaction ${preview(x.key.transactionID)} was used by another writer meanwhile`);
      }
    }
  }
}

/**
 * Writes what the call planned. With atomic transactions every independent write is issued at once, and the
 * rows that name planned snapshots right after those are written (on PostgreSQL: one round trip for the lot, two
 * more when the batch adds state). Without, in crash-safe order: immutable data first, each room's latest events
 * last.
 */
export async function writePlan(tx: Tx, uow: UnitOfWork, t: RoomserverTables, rooms: Map<RoomNID, RoomPlan>, w: Writes): Promise<void> {
  const rows = async () => {
    try {
      await t.events.bulkInsertEvents(tx, w.rows.map(({ row, ref }) => ({ ...row, stateSnapshotNID: stateNID(ref) })));
    } catch (e) {
      // Another writer stored one of them first (after this call read): the call starts again and finds it stored.
      if (e instanceof ConflictError) throw new ConcurrentUpdateError(`${e.message}: stored by another writer meanwhile`);
      throw e;
    }
  };
  const stateNID = (ref: EventRowRef) => rooms.get(ref.roomNID)!.state.nid(ref.stateBefore);
  const memberships = () => [...rooms.values()].map((r) => r.membershipWrites.size > 0 ? t.membership.bulkUpsertMemberships(tx, r.roomNID, [...r.membershipWrites.values()]) : undefined);
  const pointers = () => [...rooms.values()].filter((r) => r.moved).map((r) => t.rooms.updateLatestEventNIDs(
    tx, r.roomNID, r.latest.map((l) => l.eventNID), r.lastEventSentNID, r.state.nid(r.current), r.version));
  const json = [...w.json].map(([eventNID, eventJSON]) => ({ eventNID, eventJSON }));
  const edges = [...w.edges.values()];

  if (uow.atomicTransactions) {
    // Everything that depends on nothing, issued at once; then the state's blocks and snapshots (a round trip each,
    // as snapshots name blocks); then the rows naming them and the rooms' latest events, handed to the transaction
    // as its last writes: on PostgreSQL COMMIT travels right behind them.
    const independent = Promise.all([
      ...w.transactions.map((x) => t.transactions.insertTransaction(tx, x.key, x.eventID)),
      json.length > 0 ? t.eventJSON.bulkInsertEventJSON(tx, json) : undefined,
      edges.length > 0 ? t.previousEvents.bulkInsertPreviousEvents(tx, edges) : undefined,
      ...w.redactions.map((r) => t.redactions.insertRedaction(tx, r)),
      ...w.validated.map((id) => t.redactions.markRedactionValidated(tx, id, true)),
      w.newInvites.length > 0 ? t.invites.bulkInsertInvites(tx, w.newInvites) : undefined,
      w.retiredInvites.length > 0 ? t.invites.bulkRetireInvites(tx, w.retiredInvites) : undefined,
      ...memberships(),
    ]);
    awaitedLater(independent);
    try {
      await Promise.all([...rooms.values()].map((r) => r.state.write()));
    } catch (e) {
      // A failure among the writes before fails these too (an aborted transaction): report the first.
      await independent;
      throw e;
    }
    uow.lastWrites(tx, Promise.all([
      independent,
      w.rows.length > 0 ? rows() : undefined,
      ...w.stateUpdates.map((ref) => t.events.updateEventState(tx, ref.eventNID, stateNID(ref))),
      ...w.accepted.map((a) => t.events.clearEventRejected(tx, a.eventNID, a.eventID)),
      ...w.sent.map((nid) => t.events.updateEventSentToOutput(tx, nid)),
      ...pointers(),
    ]));
    return;
  }
  // Without atomic transactions (Cosmos DB): each room is claimed first (its conditional write acts as the SQL
  // drivers' row lock: another writer that read the room before fails, one that reads it now waits for the claim),
  // recording the new events as appending (an interrupted call leaves them stored but not applied, and their
  // prev_events references must not count as an applied event's: the retry applies them as if nothing had
  // happened). Then, in crash-safe order and each step in bulk: immutable data (JSON under fresh NIDs,
  // content-addressed state), the event rows (which make the events visible), what refers to them, and the rooms'
  // latest events last, which releases the claim and clears the call's events from appending.
  const newRows = new Set(w.rows.map((r) => r.row.eventNID));
  const claimed: RoomPlan[] = [];
  try {
    for (const room of rooms.values()) {
      if (!t.rooms.claimRoom) break;
      const rows = w.rows.filter((r) => r.row.roomNID === room.roomNID).map((r) => r.row.eventNID);
      room.version = await t.rooms.claimRoom(tx, room.roomNID, [...new Set([...room.appending, ...rows])], Date.now() + ROOM_CLAIM_MS, room.version);
      claimed.push(room);
    }
    await insertTransactions(tx, t.transactions, w);
    // The new events' JSON, their state and the parts of their rows no reader finds yet, issued together (where
    // the driver sends bulk writes of one moment in one request, that is one request); then what makes them visible.
    // (Only rows whose state before is stored already: a planned one has its NID once the state is written.)
    const prepared = w.rows.length > 0 && t.events.prepareEvents && w.rows.every(({ ref }) => typeof ref.stateBefore === 'number')
      ? t.events.prepareEvents(tx, w.rows.map(({ row, ref }) => ({ ...row, stateSnapshotNID: stateNID(ref) })))
      : undefined;
    awaitedLater(...(prepared ? [prepared] : []));
    await Promise.all([
      newRows.size > 0 ? t.eventJSON.bulkInsertEventJSON(tx, json.filter((j) => newRows.has(j.eventNID))) : undefined,
      ...[...rooms.values()].map((r) => r.state.write()),
      prepared,
    ]);
    // The rows with the references they make to their prev events: a reference from an event that is not stored
    // after all (its call failed or lost the event ID to another writer) counts for nothing, as it names one of the
    // room's appending events (recorded by the claim above; see the appender's `referenced`).
    const edgesWritten = edges.length > 0 ? t.previousEvents.bulkInsertPreviousEvents(tx, edges) : undefined;
    if (edgesWritten) awaitedLater(edgesWritten);
    if (w.rows.length > 0) await rows();
    await edgesWritten;
    // What refers to the rows, each chain in its own order and the chains together: all of it comes before the
    // rooms' latest events, and the retry of an interrupted call (its events recorded as appending) writes it again.
    await Promise.all([
      ...w.stateUpdates.map((ref) => t.events.updateEventState(tx, ref.eventNID, stateNID(ref))),
      ...w.accepted.map((a) => t.events.clearEventRejected(tx, a.eventNID, a.eventID)),
      ...w.sent.map((nid) => t.events.updateEventSentToOutput(tx, nid)),
      (async () => {
        for (const r of w.redactions) await t.redactions.insertRedaction(tx, r);
        // A redacted JSON before the mark that says it was applied, so that a retry applies it again.
        const overwrites = json.filter((j) => !newRows.has(j.eventNID));
        if (overwrites.length > 0) await t.eventJSON.bulkInsertEventJSON(tx, overwrites);
        for (const id of w.validated) await t.redactions.markRedactionValidated(tx, id, true);
      })(),
      (async () => {
        if (w.newInvites.length > 0) await t.invites.bulkInsertInvites(tx, w.newInvites);
        if (w.retiredInvites.length > 0) await t.invites.bulkRetireInvites(tx, w.retiredInvites);
      })(),
      ...memberships(),
    ]);
    await Promise.all([...rooms.values()].map((room) => {
      const done = w.eventNIDs.get(room.roomNID) ?? new Set<EventNID>();
      const left = [...room.appending].filter((n) => !done.has(n));
      if (!room.moved && !claimed.includes(room)) return undefined;
      const blocks = room.state.blockNIDsOf(room.current);
      return t.rooms.updateLatestEventNIDs(tx, room.roomNID, room.latest.map((l) => l.eventNID), room.lastEventSentNID,
        room.state.nid(room.current), room.version, claimed.includes(room) ? left : undefined, blocks);
    }));
  } catch (e) {
    // Best effort: let the next writer in at once rather than when the claim runs out.
    await Promise.all(claimed.map((room) => t.rooms.releaseRoom?.(tx, room.roomNID, room.version).catch(() => {})));
    throw e;
  }
}

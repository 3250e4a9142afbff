import { ConcurrentUpdateError, ConflictError } from '../../types/errors.js';
import { preview } from '../../types/input.js';
import type { RoomNID } from '../../types/nids.js';
import type { RoomserverTables, TransactionsTable, Tx, UnitOfWork } from '../tables/index.js';
import type { EventRowRef, RoomPlan, Writes } from './append-plan.js';

/**
 * How long a claim on a room lasts (engines without atomic transactions, where a purge claims the room it empties):
 * far longer than a purge's step takes, so that only a writer that crashed holding it makes the others wait, at
 * most this long.
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
 * Writes what the call planned, in one atomic transaction: every independent write is issued at once, and the
 * rows that name planned snapshots right after those are written (on PostgreSQL: one round trip for the lot, two
 * more when the batch adds state). An engine without atomic transactions writes the plan itself (PlanCommitter).
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
}

import { injectable } from 'inversify';
import type { Tx } from '../tables/index.js';
import type { Doc } from './requests.js';

/**
 * Documents that a room's commit carries for writes that come before it in the same call (see CosmosRoomCommit):
 * the index documents of the state a call stores (StateSnapshotTable.bulkInsertBlocksAndStates), which are written
 * with the room's commit when there is one, and at once when there is not.
 */
@injectable()
export class CosmosCommitStaging {
  private readonly calls = new WeakMap<object, Map<number, Doc[]>>();
  private readonly newEvents = new WeakMap<object, ReadonlySet<number>>();

  /**
   * A call whose rooms will commit: what is staged for it from now on goes in their commits. `newEvents`: the NIDs
   * of the events it stores, which no stored state can name (so state naming one is surely new).
   */
  begin(tx: Tx, newEvents: ReadonlySet<number>): void {
    this.calls.set(tx as object, new Map());
    this.newEvents.set(tx as object, newEvents);
  }

  /** The NIDs of the events the call stores (empty outside a call that commits). */
  eventsOf(tx: Tx): ReadonlySet<number> {
    return this.newEvents.get(tx as object) ?? new Set();
  }

  end(tx: Tx): void {
    this.calls.delete(tx as object);
    this.newEvents.delete(tx as object);
  }

  /** Stages the documents for the room's commit in this call; false if no commit follows (write them yourself). */
  stage(tx: Tx, roomNID: number, docs: readonly Doc[]): boolean {
    const call = this.calls.get(tx as object);
    if (!call) return false;
    call.set(roomNID, [...(call.get(roomNID) ?? []), ...docs]);
    return true;
  }

  /** The documents staged for the room's commit, taken. */
  take(tx: Tx, roomNID: number): Doc[] {
    const call = this.calls.get(tx as object);
    const docs = call?.get(roomNID) ?? [];
    call?.delete(roomNID);
    return docs;
  }
}

import { inject, injectable } from 'inversify';
import type { RoomNID, StateBlockNID, StateSnapshotNID } from '../../types/nids.js';
import type { StateBlockNIDList, StateEntry } from '../../types/state.js';
import { checkBlockList, missingOf, notFound, snapshotBlocks, unique } from '../shared/contracts.js';
import { encodeStateBlock, hashBlockList } from '../shared/state-codec.js';
import type { SnapshotBlocks, StateSnapshotTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { storeBlocksAndSnapshots, storeContentAddressedMany } from './content-addressed.js';
import { CosmosCommitStaging } from './commit-staging.js';
import { CosmosRoomEvents } from './room-events.js';

/** state_snapshot on Cosmos DB: `ss|<NID>` holds the ordered block list; `ssh|<hash>` dedupes. */
@injectable()
export class CosmosStateSnapshotTable implements StateSnapshotTable {
  constructor(
    @inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection,
    @inject(CosmosRoomEvents) private readonly roomEvents: CosmosRoomEvents,
    @inject(CosmosCommitStaging) private readonly staging: CosmosCommitStaging,
  ) {}

  /** As bulkInsertStates (which also looks the list up in the room's own index). */
  async insertState(tx: Tx, roomNID: RoomNID, stateBlockNIDs: readonly StateBlockNID[]): Promise<StateSnapshotNID> {
    return (await this.bulkInsertStates(tx, roomNID, [stateBlockNIDs]))[0]!;
  }

  async bulkInsertBlocksAndStates(tx: Tx, roomNID: RoomNID, blocks: readonly (readonly StateEntry[])[],
    lists: readonly (readonly (StateBlockNID | { readonly block: number })[])[]): Promise<{ blockNIDs: StateBlockNID[]; stateNIDs: StateSnapshotNID[] }> {
    const encoded = blocks.map(encodeStateBlock);
    const newEvents = this.staging.eventsOf(tx);
    const { blockNIDs, stateNIDs } = await storeBlocksAndSnapshots(this.conn, roomNID,
      encoded.map((b, i) => ({
        hash: b.hash, content: { count: b.entries.length, bytes: b.bytes.toString('base64') },
        surelyNew: blocks[i]!.some((e) => newEvents.has(e.eventNID)),
      })),
      lists, (l) => {
        checkBlockList(l);
        return hashBlockList(l as StateBlockNID[]);
      }, (docs) => this.staging.stage(tx, roomNID, docs));
    return { blockNIDs: blockNIDs as StateBlockNID[], stateNIDs: stateNIDs as StateSnapshotNID[] };
  }

  async bulkInsertStates(_tx: Tx, roomNID: RoomNID, lists: readonly (readonly StateBlockNID[])[]): Promise<StateSnapshotNID[]> {
    lists.forEach(checkBlockList);
    // A list naming a block no snapshot has named yet is new (see CosmosConnection.newBlocks); once named here, the
    // block no longer says so (for this call's retry too, which looks its lists up).
    const fresh = new Set(lists.filter((l) => l.some((b) => this.conn.newBlocks.get(b) !== undefined)).map((l) => hashBlockList(l).toString('hex')));
    for (const l of lists) for (const b of l) this.conn.newBlocks.delete(b);
    return (await storeContentAddressedMany(this.conn, 'ss', 'stateSnapshot', lists.map((l) => ({
      hash: hashBlockList(l), content: { room: roomNID, blocks: [...l] },
    })), (hash) => fresh.has(hash), roomNID)) as StateSnapshotNID[];
  }

  /**
   * No joins on Cosmos DB: the event's locator (which names its room), the room's document of the event (which holds
   * the state before it, and says the event is stored), then the snapshot: three point reads, the first two kept.
   */
  async selectStateBlockNIDsAtEvent(_tx: Tx, eventID: string): Promise<SnapshotBlocks> {
    const [found] = await this.roomEvents.locateStoredDocs([eventID]);
    if (!found) throw notFound('event', eventID);
    return this.blocksOf(found.snapshot);
  }

  /**
   * The room's ID document, then its room document, which holds the current snapshot's block list where its last
   * writer gave it (the write path does): two point reads; otherwise the snapshot too.
   */
  async selectCurrentStateBlockNIDs(_tx: Tx, roomID: string): Promise<SnapshotBlocks> {
    const r = this.conn.requests;
    const ref = await r.read<{ roomNID: number }>('stateSnapshots.current', 'rid', this.conn.pk('rid', roomID));
    if (!ref) throw notFound('room', roomID);
    const room = await r.read<{ snapshot: StateSnapshotNID; snapshotBlocks?: { nid: StateSnapshotNID; blocks: StateBlockNID[] } }>(
      'stateSnapshots.current', 'room', this.conn.pk('room', ref.roomNID));
    if (room && room.snapshot !== 0 && room.snapshotBlocks?.nid === room.snapshot) return snapshotBlocks(room.snapshot, room.snapshotBlocks.blocks);
    return this.blocksOf(room?.snapshot ?? (0 as StateSnapshotNID));
  }

  private async blocksOf(snapshotNID: StateSnapshotNID): Promise<SnapshotBlocks> {
    if (snapshotNID === 0) return snapshotBlocks(snapshotNID, []);
    const doc = await this.conn.requests.read<{ blocks: StateBlockNID[] }>('stateSnapshots.select', 'ss', this.conn.pk('ss', snapshotNID));
    return snapshotBlocks(snapshotNID, doc?.blocks ?? null);
  }

  async bulkSelectStateBlockNIDs(_tx: Tx, stateSnapshotNIDs: readonly StateSnapshotNID[]): Promise<StateBlockNIDList[]> {
    const docs = (await this.conn.requests.readMany<{ nid: StateSnapshotNID; blocks: StateBlockNID[] }>('stateSnapshots.select',
      unique(stateSnapshotNIDs).map((nid) => ({ id: 'ss', pk: this.conn.pk('ss', nid) })))).filter((d) => d !== undefined);
    const found = new Set(docs.map((d) => d.nid as number));
    const err = missingOf('state', 'state snapshots', unique(stateSnapshotNIDs), (n) => found.has(n));
    if (err) throw err;
    return docs.sort((a, b) => a.nid - b.nid).map((d) => ({ stateSnapshotNID: d.nid, stateBlockNIDs: d.blocks }));
  }
}

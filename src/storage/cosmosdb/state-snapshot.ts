import { inject, injectable } from 'inversify';
import type { RoomNID, StateBlockNID, StateSnapshotNID } from '../../types/nids.js';
import type { StateBlockNIDList } from '../../types/state.js';
import { checkBlockList, missingOf, unique } from '../shared/contracts.js';
import { hashBlockList } from '../shared/state-codec.js';
import type { StateSnapshotTable, Tx } from '../tables/index.js';
import { mapLimit, READ_CONCURRENCY } from './bulk.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { storeContentAddressed } from './content-addressed.js';

/** state_snapshot on Cosmos DB: `ss|<NID>` holds the ordered block list; `ssh|<hash>` dedupes. */
@injectable()
export class CosmosStateSnapshotTable implements StateSnapshotTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  async insertState(_tx: Tx, roomNID: RoomNID, stateBlockNIDs: readonly StateBlockNID[]): Promise<StateSnapshotNID> {
    checkBlockList(stateBlockNIDs);
    return (await storeContentAddressed(this.conn, 'ss', 'stateSnapshot', hashBlockList(stateBlockNIDs), {
      room: roomNID, blocks: [...stateBlockNIDs],
    })) as StateSnapshotNID;
  }

  async bulkSelectStateBlockNIDs(_tx: Tx, stateSnapshotNIDs: readonly StateSnapshotNID[]): Promise<StateBlockNIDList[]> {
    const docs = (await mapLimit(unique(stateSnapshotNIDs), READ_CONCURRENCY, (nid) =>
      this.conn.requests.read<{ nid: StateSnapshotNID; blocks: StateBlockNID[] }>('stateSnapshots.select', 'ss', this.conn.pk('ss', nid))))
      .filter((d) => d !== undefined);
    const found = new Set(docs.map((d) => d.nid as number));
    const err = missingOf('state', 'state snapshots', unique(stateSnapshotNIDs), (n) => found.has(n));
    if (err) throw err;
    return docs.sort((a, b) => a.nid - b.nid).map((d) => ({ stateSnapshotNID: d.nid, stateBlockNIDs: d.blocks }));
  }
}

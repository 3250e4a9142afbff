import { inject, injectable } from 'inversify';
import type { RoomNID, StateBlockNID, StateSnapshotNID } from '../../types/nids.js';
import type { StateBlockNIDList } from '../../types/state.js';
import { checkBlockList, missingOf, unique } from '../shared/contracts.js';
import { hashBlockList } from '../shared/state-codec.js';
import type { StateSnapshotTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { IN_LIST, nidList, parseNIDList } from './values.js';

@injectable()
export class SqliteStateSnapshotTable implements StateSnapshotTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertState(tx: Tx, roomNID: RoomNID, stateBlockNIDs: readonly StateBlockNID[]): Promise<StateSnapshotNID> {
    return this.conn.run(tx, (c) => {
      // Checked inside run, so that bad input rejects the returned promise rather than throwing synchronously.
      checkBlockList(stateBlockNIDs);
      const row = c.stmt(`INSERT INTO roomserver_state_snapshots (state_snapshot_hash, room_nid, state_block_nids) VALUES (?, ?, ?)
        ON CONFLICT (state_snapshot_hash) DO UPDATE SET state_snapshot_hash = excluded.state_snapshot_hash
        RETURNING state_snapshot_nid AS nid`).get(hashBlockList(stateBlockNIDs), roomNID, nidList(stateBlockNIDs)) as { nid: StateSnapshotNID };
      return row.nid;
    });
  }

  bulkSelectStateBlockNIDs(tx: Tx, stateSnapshotNIDs: readonly StateSnapshotNID[]): Promise<StateBlockNIDList[]> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT state_snapshot_nid AS nid, state_block_nids AS blocks FROM roomserver_state_snapshots
        WHERE state_snapshot_nid ${IN_LIST} ORDER BY state_snapshot_nid`).all(nidList(unique(stateSnapshotNIDs))) as
        { nid: StateSnapshotNID; blocks: string }[];
      const found = new Set(rows.map((r) => r.nid));
      const err = missingOf('state', 'state snapshots', unique(stateSnapshotNIDs), (n) => found.has(n));
      if (err) throw err;
      return rows.map((r) => ({ stateSnapshotNID: r.nid, stateBlockNIDs: parseNIDList<StateBlockNID>(r.blocks) }));
    });
  }
}

import { inject, injectable } from 'inversify';
import type { RoomNID, StateBlockNID, StateSnapshotNID } from '../../types/nids.js';
import type { StateBlockNIDList } from '../../types/state.js';
import { checkBlockList, missingOf, notFound, snapshotBlocks, unique } from '../shared/contracts.js';
import { hashBlockList } from '../shared/state-codec.js';
import type { SnapshotBlocks, StateSnapshotTable, Tx } from '../tables/index.js';
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

  bulkInsertStates(tx: Tx, roomNID: RoomNID, lists: readonly (readonly StateBlockNID[])[]): Promise<StateSnapshotNID[]> {
    return this.conn.run(tx, (c) => {
      lists.forEach(checkBlockList);
      const insert = c.stmt(`INSERT INTO roomserver_state_snapshots (state_snapshot_hash, room_nid, state_block_nids) VALUES (?, ?, ?)
        ON CONFLICT (state_snapshot_hash) DO UPDATE SET state_snapshot_hash = excluded.state_snapshot_hash
        RETURNING state_snapshot_nid AS nid`);
      return lists.map((l) => (insert.get(hashBlockList(l), roomNID, nidList(l)) as { nid: StateSnapshotNID }).nid);
    });
  }

  selectStateBlockNIDsAtEvent(tx: Tx, eventID: string): Promise<SnapshotBlocks> {
    return this.snapshotOf(tx, 'event', eventID, `SELECT e.state_snapshot_nid AS nid, s.state_block_nids AS blocks FROM roomserver_events e
      LEFT JOIN roomserver_state_snapshots s ON s.state_snapshot_nid = e.state_snapshot_nid WHERE e.event_id = ?`);
  }

  selectCurrentStateBlockNIDs(tx: Tx, roomID: string): Promise<SnapshotBlocks> {
    return this.snapshotOf(tx, 'room', roomID, `SELECT r.state_snapshot_nid AS nid, s.state_block_nids AS blocks FROM roomserver_rooms r
      LEFT JOIN roomserver_state_snapshots s ON s.state_snapshot_nid = r.state_snapshot_nid WHERE r.room_id = ?`);
  }

  private snapshotOf(tx: Tx, what: string, key: string, sql: string): Promise<SnapshotBlocks> {
    return this.conn.run(tx, (c) => {
      const row = c.stmt(sql).get(key) as { nid: StateSnapshotNID; blocks: string | null } | undefined;
      if (!row) throw notFound(what, key);
      return snapshotBlocks(row.nid, row.blocks === null ? null : parseNIDList<StateBlockNID>(row.blocks));
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

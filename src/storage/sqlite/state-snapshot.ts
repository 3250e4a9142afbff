import { inject, injectable } from 'inversify';
import type { RoomNID, StateBlockNID, StateSnapshotNID } from '../../types/nids.js';
import type { StateBlockNIDList } from '../../types/state.js';
import { probeSync, storeAtFreeKey, type StoredContent } from '../shared/content-keys.js';
import { checkBlockList, missingOf, notFound, snapshotBlocks, unique } from '../shared/contracts.js';
import { contentKey, decodeBlockList, encodeBlockList } from '../shared/state-codec.js';
import type { SnapshotBlocks, StateSnapshotTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { IN_LIST, nidList } from './values.js';

/**
 * As for blocks (state-block.ts): a no-op update, only where the row at the key holds this same list; run only for
 * a key the lookup found free, so that storing a stored list takes no new NID.
 */
const UPSERT = `INSERT INTO roomserver_state_snapshots (content_key, room_nid, block_list) VALUES (?, ?, ?)
  ON CONFLICT (content_key) DO UPDATE SET content_key = excluded.content_key WHERE block_list = excluded.block_list
  RETURNING state_snapshot_nid AS nid`;
const AT_KEY = 'SELECT state_snapshot_nid AS nid, block_list AS content FROM roomserver_state_snapshots WHERE content_key = ?';

@injectable()
export class SqliteStateSnapshotTable implements StateSnapshotTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertState(tx: Tx, roomNID: RoomNID, stateBlockNIDs: readonly StateBlockNID[]): Promise<StateSnapshotNID> {
    return this.conn.run(tx, (c) => {
      // Checked inside run, so that bad input rejects the returned promise rather than throwing synchronously.
      checkBlockList(stateBlockNIDs);
      return this.store(c, roomNID, stateBlockNIDs);
    });
  }

  bulkInsertStates(tx: Tx, roomNID: RoomNID, lists: readonly (readonly StateBlockNID[])[]): Promise<StateSnapshotNID[]> {
    return this.conn.run(tx, (c) => {
      lists.forEach(checkBlockList);
      return lists.map((l) => this.store(c, roomNID, l));
    });
  }

  private store(c: SqliteConnection, roomNID: RoomNID, stateBlockNIDs: readonly StateBlockNID[]): StateSnapshotNID {
    const [atKey, upsert] = [c.stmt(AT_KEY), c.stmt(UPSERT)];
    const list = encodeBlockList(stateBlockNIDs);
    return probeSync('state snapshot', contentKey(list), (key) => storeAtFreeKey<StateSnapshotNID>(list, atKey.get(key) as StoredContent<StateSnapshotNID> | undefined,
      () => (upsert.get(key, roomNID, list) as { nid: StateSnapshotNID } | undefined)?.nid));
  }

  selectStateBlockNIDsAtEvent(tx: Tx, eventID: string): Promise<SnapshotBlocks> {
    return this.snapshotOf(tx, 'event', eventID, `SELECT e.state_snapshot_nid AS nid, s.block_list AS blocks FROM roomserver_events e
      LEFT JOIN roomserver_state_snapshots s ON s.state_snapshot_nid = e.state_snapshot_nid WHERE e.event_id = ?`);
  }

  selectCurrentStateBlockNIDs(tx: Tx, roomID: string): Promise<SnapshotBlocks> {
    return this.snapshotOf(tx, 'room', roomID, `SELECT r.state_snapshot_nid AS nid, s.block_list AS blocks FROM roomserver_rooms r
      LEFT JOIN roomserver_state_snapshots s ON s.state_snapshot_nid = r.state_snapshot_nid WHERE r.room_id = ?`);
  }

  private snapshotOf(tx: Tx, what: string, key: string, sql: string): Promise<SnapshotBlocks> {
    return this.conn.run(tx, (c) => {
      const row = c.stmt(sql).get(key) as { nid: StateSnapshotNID; blocks: Buffer | null } | undefined;
      if (!row) throw notFound(what, key);
      return snapshotBlocks(row.nid, row.blocks === null ? null : decodeBlockList(row.blocks, row.nid));
    });
  }

  bulkSelectStateBlockNIDs(tx: Tx, stateSnapshotNIDs: readonly StateSnapshotNID[]): Promise<StateBlockNIDList[]> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT state_snapshot_nid AS nid, block_list AS blocks FROM roomserver_state_snapshots
        WHERE state_snapshot_nid ${IN_LIST} ORDER BY state_snapshot_nid`).all(nidList(unique(stateSnapshotNIDs))) as
        { nid: StateSnapshotNID; blocks: Buffer }[];
      const found = new Set(rows.map((r) => r.nid));
      const err = missingOf('state', 'state snapshots', unique(stateSnapshotNIDs), (n) => found.has(n));
      if (err) throw err;
      return rows.map((r) => ({ stateSnapshotNID: r.nid, stateBlockNIDs: decodeBlockList(r.blocks, r.nid) }));
    });
  }
}

import { inject, injectable } from 'inversify';
import type { RoomNID, StateBlockNID, StateSnapshotNID } from '../../types/nids.js';
import type { StateBlockNIDList } from '../../types/state.js';
import { checkBlockList, missingOf, notFound, snapshotBlocks, unique } from '../shared/contracts.js';
import { hashBlockList } from '../shared/state-codec.js';
import type { SnapshotBlocks, StateSnapshotTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

@injectable()
export class PostgresStateSnapshotTable implements StateSnapshotTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async insertState(tx: Tx, roomNID: RoomNID, stateBlockNIDs: readonly StateBlockNID[]): Promise<StateSnapshotNID> {
    checkBlockList(stateBlockNIDs);
    // As for blocks: a no-op DO UPDATE makes RETURNING answer with the existing NID. room_nid keeps the first room.
    const r = await this.conn.query<{ nid: StateSnapshotNID }>(tx, `INSERT INTO roomserver_state_snapshots
      (state_snapshot_hash, room_nid, state_block_nids) VALUES ($1, $2, $3::bigint[])
      ON CONFLICT (state_snapshot_hash) DO UPDATE SET room_nid = roomserver_state_snapshots.room_nid
      RETURNING state_snapshot_nid AS nid`, [hashBlockList(stateBlockNIDs), roomNID, [...stateBlockNIDs]]);
    return r.rows[0]!.nid;
  }

  async bulkInsertStates(tx: Tx, roomNID: RoomNID, lists: readonly (readonly StateBlockNID[])[]): Promise<StateSnapshotNID[]> {
    lists.forEach(checkBlockList);
    const hashes = lists.map((l) => hashBlockList(l).toString('hex'));
    const byHash = new Map(lists.map((l, i) => [hashes[i]!, l]));
    if (byHash.size === 0) return this.conn.nothing(tx, []);
    // In hash order, as string-nid-map.ts inserts: concurrent writers of the same new snapshots never deadlock.
    const distinct = [...byHash].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const r = await this.conn.query<{ hash: Buffer; nid: StateSnapshotNID }>(tx, `INSERT INTO roomserver_state_snapshots
        (state_snapshot_hash, room_nid, state_block_nids)
      SELECT hash, $1, blocks::bigint[] FROM unnest($2::bytea[], $3::text[]) AS t(hash, blocks)
      ON CONFLICT (state_snapshot_hash) DO UPDATE SET room_nid = roomserver_state_snapshots.room_nid
      RETURNING state_snapshot_hash AS hash, state_snapshot_nid AS nid`,
    [roomNID, distinct.map(([h]) => Buffer.from(h, 'hex')), distinct.map(([, l]) => `{${l.join(',')}}`)]);
    const nids = new Map(r.rows.map((row) => [row.hash.toString('hex'), row.nid]));
    return hashes.map((h) => nids.get(h)!);
  }

  selectStateBlockNIDsAtEvent(tx: Tx, eventID: string): Promise<SnapshotBlocks> {
    return this.snapshotOf(tx, 'event', eventID, `SELECT e.state_snapshot_nid AS nid, s.state_block_nids AS blocks FROM roomserver_events e
      LEFT JOIN roomserver_state_snapshots s ON s.state_snapshot_nid = e.state_snapshot_nid WHERE e.event_id = $1`);
  }

  selectCurrentStateBlockNIDs(tx: Tx, roomID: string): Promise<SnapshotBlocks> {
    return this.snapshotOf(tx, 'room', roomID, `SELECT r.state_snapshot_nid AS nid, s.state_block_nids AS blocks FROM roomserver_rooms r
      LEFT JOIN roomserver_state_snapshots s ON s.state_snapshot_nid = r.state_snapshot_nid WHERE r.room_id = $1`);
  }

  private async snapshotOf(tx: Tx, what: string, key: string, sql: string): Promise<SnapshotBlocks> {
    const r = await this.conn.query<{ nid: StateSnapshotNID; blocks: StateBlockNID[] | null }>(tx, sql, [key]);
    const row = r.rows[0];
    if (!row) throw notFound(what, key);
    return snapshotBlocks(row.nid, row.blocks);
  }

  async bulkSelectStateBlockNIDs(tx: Tx, stateSnapshotNIDs: readonly StateSnapshotNID[]): Promise<StateBlockNIDList[]> {
    if (stateSnapshotNIDs.length === 0) return this.conn.nothing(tx, []);
    const r = await this.conn.query<{ nid: StateSnapshotNID; blocks: StateBlockNID[] }>(tx, `SELECT state_snapshot_nid AS nid,
      state_block_nids AS blocks FROM roomserver_state_snapshots WHERE state_snapshot_nid = ANY($1::bigint[])
      ORDER BY state_snapshot_nid`, [unique(stateSnapshotNIDs)]);
    const found = new Set(r.rows.map((row) => row.nid));
    const err = missingOf('state', 'state snapshots', unique(stateSnapshotNIDs), (n) => found.has(n));
    if (err) throw err;
    return r.rows.map((row) => ({ stateSnapshotNID: row.nid, stateBlockNIDs: row.blocks }));
  }
}

import { inject, injectable } from 'inversify';
import type { RoomNID, StateBlockNID, StateSnapshotNID } from '../../types/nids.js';
import type { StateBlockNIDList } from '../../types/state.js';
import { checkBlockList, missingOf, notFound, snapshotBlocks, unique } from '../shared/contracts.js';
import { storeManyByContentKey } from '../shared/content-keys.js';
import { decodeBlockList, encodeBlockList } from '../shared/state-codec.js';
import type { SnapshotBlocks, StateSnapshotTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

@injectable()
export class PostgresStateSnapshotTable implements StateSnapshotTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async insertState(tx: Tx, roomNID: RoomNID, stateBlockNIDs: readonly StateBlockNID[]): Promise<StateSnapshotNID> {
    return (await this.bulkInsertStates(tx, roomNID, [stateBlockNIDs]))[0]!;
  }

  async bulkInsertStates(tx: Tx, roomNID: RoomNID, lists: readonly (readonly StateBlockNID[])[]): Promise<StateSnapshotNID[]> {
    lists.forEach(checkBlockList);
    if (lists.length === 0) return this.conn.nothing(tx, []);
    const encoded = lists.map(encodeBlockList);
    // As for blocks (state-block.ts): the rows at the keys answer first and only lists at free keys are inserted, so
    // that storing a stored list takes no NID from the sequence; a no-op DO UPDATE makes RETURNING answer with the
    // NID of a row a concurrent writer stored meanwhile, only where the key holds this same list. room_nid keeps the
    // first room.
    const insert = async (keys: readonly number[], indexes: readonly number[]) => new Map((await this.conn.query<{ key: number; nid: StateSnapshotNID }>(tx,
      `WITH given AS (SELECT * FROM unnest($2::int4[], $3::bytea[]) AS t(key, list)),
        stored AS (SELECT s.content_key AS key, s.state_snapshot_nid AS nid, s.block_list = g.list AS same
          FROM roomserver_state_snapshots s JOIN given g ON s.content_key = g.key),
        inserted AS (INSERT INTO roomserver_state_snapshots (content_key, room_nid, block_list)
          SELECT key, $1, list FROM given WHERE key NOT IN (SELECT key FROM stored) ORDER BY key
          ON CONFLICT (content_key) DO UPDATE SET room_nid = roomserver_state_snapshots.room_nid
            WHERE roomserver_state_snapshots.block_list = excluded.block_list
          RETURNING content_key AS key, state_snapshot_nid AS nid)
        SELECT key, nid FROM stored WHERE same UNION ALL SELECT key, nid FROM inserted`,
      [roomNID, keys, indexes.map((i) => encoded[i]!)])).rows.map((r) => [r.key, r.nid]));
    return storeManyByContentKey('state snapshot', encoded,
      (first) => insert(first.map((f) => f.key), first.map((f) => f.index)),
      async (index, key) => (await insert([key], [index])).get(key));
  }

  selectStateBlockNIDsAtEvent(tx: Tx, eventID: string): Promise<SnapshotBlocks> {
    return this.snapshotOf(tx, 'event', eventID, `SELECT e.state_snapshot_nid AS nid, s.block_list AS blocks FROM roomserver_events e
      LEFT JOIN roomserver_state_snapshots s ON s.state_snapshot_nid = e.state_snapshot_nid WHERE e.event_id = $1`);
  }

  selectCurrentStateBlockNIDs(tx: Tx, roomID: string): Promise<SnapshotBlocks> {
    return this.snapshotOf(tx, 'room', roomID, `SELECT r.state_snapshot_nid AS nid, s.block_list AS blocks FROM roomserver_rooms r
      LEFT JOIN roomserver_state_snapshots s ON s.state_snapshot_nid = r.state_snapshot_nid WHERE r.room_id = $1`);
  }

  private async snapshotOf(tx: Tx, what: string, key: string, sql: string): Promise<SnapshotBlocks> {
    const r = await this.conn.query<{ nid: StateSnapshotNID; blocks: Buffer | null }>(tx, sql, [key]);
    const row = r.rows[0];
    if (!row) throw notFound(what, key);
    return snapshotBlocks(row.nid, row.blocks === null ? null : decodeBlockList(row.blocks, row.nid));
  }

  async bulkSelectStateBlockNIDs(tx: Tx, stateSnapshotNIDs: readonly StateSnapshotNID[]): Promise<StateBlockNIDList[]> {
    if (stateSnapshotNIDs.length === 0) return this.conn.nothing(tx, []);
    const r = await this.conn.query<{ nid: StateSnapshotNID; blocks: Buffer }>(tx, `SELECT state_snapshot_nid AS nid,
      block_list AS blocks FROM roomserver_state_snapshots WHERE state_snapshot_nid = ANY($1::bigint[])
      ORDER BY state_snapshot_nid`, [unique(stateSnapshotNIDs)]);
    const found = new Set(r.rows.map((row) => row.nid));
    const err = missingOf('state', 'state snapshots', unique(stateSnapshotNIDs), (n) => found.has(n));
    if (err) throw err;
    return r.rows.map((row) => ({ stateSnapshotNID: row.nid, stateBlockNIDs: decodeBlockList(row.blocks, row.nid) }));
  }
}

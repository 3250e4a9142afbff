import { inject, injectable } from 'inversify';
import type { StateBlockNID } from '../../types/nids.js';
import type { StateEntry, StateEntryList } from '../../types/state.js';
import { missingOf, unique } from '../shared/contracts.js';
import { decodeStateBlock, encodeStateBlock } from '../shared/state-codec.js';
import type { StateBlockTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

@injectable()
export class PostgresStateBlockTable implements StateBlockTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async insertStateBlock(tx: Tx, entries: readonly StateEntry[]): Promise<StateBlockNID> {
    const block = encodeStateBlock(entries);
    // DO UPDATE (a no-op on a column no index covers, so the rewrite stays a HOT update) rather than DO NOTHING:
    // RETURNING then gives the existing row's NID on a conflict, including a row another transaction committed
    // while this one waited on it, so concurrent writers of the same block converge on one NID in one statement.
    const r = await this.conn.query<{ nid: StateBlockNID }>(tx, `INSERT INTO roomserver_state_block (state_block_hash, entry_count, entries)
      VALUES ($1, $2, $3) ON CONFLICT (state_block_hash) DO UPDATE SET entry_count = excluded.entry_count
      RETURNING state_block_nid AS nid`, [block.hash, block.entries.length, block.bytes]);
    return r.rows[0]!.nid;
  }

  async bulkInsertStateBlocks(tx: Tx, blocks: readonly (readonly StateEntry[])[]): Promise<StateBlockNID[]> {
    const encoded = blocks.map(encodeStateBlock);
    // Each distinct block once (an UPSERT may not touch a row twice in one statement); NIDs mapped back by hash.
    const byHash = new Map(encoded.map((b) => [b.hash.toString('hex'), b]));
    if (byHash.size === 0) return this.conn.nothing(tx, []);
    // In hash order, as string-nid-map.ts inserts: concurrent writers of the same new blocks never deadlock.
    const distinct = [...byHash.values()].sort((a, b) => Buffer.compare(a.hash, b.hash));
    const r = await this.conn.query<{ hash: Buffer; nid: StateBlockNID }>(tx, `INSERT INTO roomserver_state_block (state_block_hash, entry_count, entries)
      SELECT * FROM unnest($1::bytea[], $2::int[], $3::bytea[]) ON CONFLICT (state_block_hash) DO UPDATE SET entry_count = excluded.entry_count
      RETURNING state_block_hash AS hash, state_block_nid AS nid`, [distinct.map((b) => b.hash), distinct.map((b) => b.entries.length), distinct.map((b) => b.bytes)]);
    const nids = new Map(r.rows.map((row) => [row.hash.toString('hex'), row.nid]));
    return encoded.map((b) => nids.get(b.hash.toString('hex'))!);
  }

  async bulkSelectStateBlockEntries(tx: Tx, stateBlockNIDs: readonly StateBlockNID[]): Promise<StateEntryList[]> {
    if (stateBlockNIDs.length === 0) return this.conn.nothing(tx, []);
    const r = await this.conn.query<{ nid: StateBlockNID; entries: Buffer }>(tx, `SELECT state_block_nid AS nid, entries
      FROM roomserver_state_block WHERE state_block_nid = ANY($1::bigint[]) ORDER BY state_block_nid`, [unique(stateBlockNIDs)]);
    const found = new Set(r.rows.map((row) => row.nid));
    const err = missingOf('state', 'state blocks', unique(stateBlockNIDs), (n) => found.has(n));
    if (err) throw err;
    return r.rows.map((row) => ({ stateBlockNID: row.nid, stateEntries: decodeStateBlock(row.entries, row.nid) }));
  }
}

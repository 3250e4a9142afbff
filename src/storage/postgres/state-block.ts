import { inject, injectable } from 'inversify';
import type { StateBlockNID } from '../../types/nids.js';
import type { StateEntry, StateEntryList } from '../../types/state.js';
import { storeManyByContentKey } from '../shared/content-keys.js';
import { missingOf, unique } from '../shared/contracts.js';
import { decodeStateBlockRows, encodeStateBlock } from '../shared/state-codec.js';
import type { EncodedStateBlockRow, StateBlockTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

/**
 * DO UPDATE (a no-op on a column no index covers, so the rewrite stays a HOT update) rather than DO NOTHING:
 * RETURNING then gives the existing row's NID on a conflict, including a row another transaction committed while
 * this one waited on it, so concurrent writers of the same block converge on one NID in one statement. The WHERE
 * makes a key holding other entries (a collision, see content-keys.ts) return nothing: the writer probes on.
 */
const ON_CONFLICT = `ON CONFLICT (content_key) DO UPDATE SET entry_count = excluded.entry_count
  WHERE roomserver_state_block.entries = excluded.entries RETURNING content_key AS key, state_block_nid AS nid`;

@injectable()
export class PostgresStateBlockTable implements StateBlockTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async insertStateBlock(tx: Tx, entries: readonly StateEntry[]): Promise<StateBlockNID> {
    return (await this.bulkInsertStateBlocks(tx, [entries]))[0]!;
  }

  async bulkInsertStateBlocks(tx: Tx, blocks: readonly (readonly StateEntry[])[]): Promise<StateBlockNID[]> {
    const encoded = blocks.map(encodeStateBlock);
    if (encoded.length === 0) return this.conn.nothing(tx, []);
    const insert = async (keys: readonly number[], indexes: readonly number[]) => new Map((await this.conn.query<{ key: number; nid: StateBlockNID }>(tx,
      `INSERT INTO roomserver_state_block (content_key, entry_count, entries) SELECT * FROM unnest($1::int4[], $2::int[], $3::bytea[]) ${ON_CONFLICT}`,
      [keys, indexes.map((i) => encoded[i]!.entries.length), indexes.map((i) => encoded[i]!.bytes)])).rows.map((r) => [r.key, r.nid]));
    return storeManyByContentKey('state block', encoded.map((b) => b.bytes),
      (first) => insert(first.map((f) => f.key), first.map((f) => f.index)),
      async (index, key) => (await insert([key], [index])).get(key));
  }

  async bulkSelectStateBlockEntries(tx: Tx, stateBlockNIDs: readonly StateBlockNID[]): Promise<StateEntryList[]> {
    return decodeStateBlockRows(await this.bulkSelectEncodedStateBlocks(tx, stateBlockNIDs));
  }

  async bulkSelectEncodedStateBlocks(tx: Tx, stateBlockNIDs: readonly StateBlockNID[]): Promise<EncodedStateBlockRow[]> {
    if (stateBlockNIDs.length === 0) return this.conn.nothing(tx, []);
    const r = await this.conn.query<{ nid: StateBlockNID; entries: Buffer }>(tx, `SELECT state_block_nid AS nid, entries
      FROM roomserver_state_block WHERE state_block_nid = ANY($1::bigint[]) ORDER BY state_block_nid`, [unique(stateBlockNIDs)]);
    const found = new Set(r.rows.map((row) => row.nid));
    const err = missingOf('state', 'state blocks', unique(stateBlockNIDs), (n) => found.has(n));
    if (err) throw err;
    return r.rows.map((row) => ({ stateBlockNID: row.nid, encoded: row.entries }));
  }
}

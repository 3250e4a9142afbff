import { inject, injectable } from 'inversify';
import type { StateBlockNID } from '../../types/nids.js';
import type { StateEntry, StateEntryList } from '../../types/state.js';
import { storeManyByContentKey } from '../shared/content-keys.js';
import { missingOf, unique } from '../shared/contracts.js';
import { decodeStateBlockRows, encodeStateBlock } from '../shared/state-codec.js';
import type { EncodedStateBlockRow, StateBlockTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

/**
 * One statement per set of blocks: the rows already at their keys answer first (a key holding these entries gives
 * its NID, one holding other entries nothing: a collision, see content-keys.ts, and the writer probes on), and only
 * the blocks whose key no row holds are inserted. An INSERT takes its NID from the sequence before it meets a
 * conflict, so inserting a stored block would use one up: storing what is stored must reserve none.
 *
 * The insert keeps ON CONFLICT for a row another transaction commits after this statement's snapshot: DO UPDATE (a
 * no-op on a column no index covers, so the rewrite stays a HOT update) rather than DO NOTHING, so that RETURNING
 * gives that row's NID once this one has waited on it, and concurrent writers of the same block converge on one
 * NID in one statement; its WHERE answers nothing for a row holding other entries. Only such a race uses a NID up.
 */
const STORE = `WITH given AS (SELECT * FROM unnest($1::int4[], $2::int[], $3::bytea[]) AS t(key, entry_count, entries)),
  stored AS (SELECT b.content_key AS key, b.state_block_nid AS nid, b.entries = g.entries AS same
    FROM roomserver_state_block b JOIN given g ON b.content_key = g.key),
  inserted AS (INSERT INTO roomserver_state_block (content_key, entry_count, entries)
    SELECT key, entry_count, entries FROM given WHERE key NOT IN (SELECT key FROM stored) ORDER BY key
    ON CONFLICT (content_key) DO UPDATE SET entry_count = excluded.entry_count WHERE roomserver_state_block.entries = excluded.entries
    RETURNING content_key AS key, state_block_nid AS nid)
  SELECT key, nid FROM stored WHERE same UNION ALL SELECT key, nid FROM inserted`;

@injectable()
export class PostgresStateBlockTable implements StateBlockTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async insertStateBlock(tx: Tx, entries: readonly StateEntry[]): Promise<StateBlockNID> {
    return (await this.bulkInsertStateBlocks(tx, [entries]))[0]!;
  }

  async bulkInsertStateBlocks(tx: Tx, blocks: readonly (readonly StateEntry[])[]): Promise<StateBlockNID[]> {
    const encoded = blocks.map(encodeStateBlock);
    if (encoded.length === 0) return this.conn.nothing(tx, []);
    const insert = async (keys: readonly number[], indexes: readonly number[]) => new Map((await this.conn.query<{ key: number; nid: StateBlockNID }>(tx, STORE,
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

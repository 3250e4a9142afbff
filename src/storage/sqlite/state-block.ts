import { inject, injectable } from 'inversify';
import type { StateBlockNID } from '../../types/nids.js';
import type { StateEntryList, StateEntry } from '../../types/state.js';
import { missingOf, unique } from '../shared/contracts.js';
import { decodeStateBlock, encodeStateBlock } from '../shared/state-codec.js';
import type { StateBlockTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { IN_LIST, nidList } from './values.js';

@injectable()
export class SqliteStateBlockTable implements StateBlockTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertStateBlock(tx: Tx, entries: readonly StateEntry[]): Promise<StateBlockNID> {
    return this.conn.run(tx, (c) => {
      // Encoded inside run, so that bad input rejects the returned promise rather than throwing synchronously.
      const block = encodeStateBlock(entries);
      // The no-op update makes RETURNING give the existing row's NID on a hash conflict.
      const row = c.stmt(`INSERT INTO roomserver_state_block (state_block_hash, entry_count, entries) VALUES (?, ?, ?)
        ON CONFLICT (state_block_hash) DO UPDATE SET state_block_hash = excluded.state_block_hash
        RETURNING state_block_nid AS nid`).get(block.hash, block.entries.length, block.bytes) as { nid: StateBlockNID };
      return row.nid;
    });
  }

  bulkInsertStateBlocks(tx: Tx, blocks: readonly (readonly StateEntry[])[]): Promise<StateBlockNID[]> {
    return this.conn.run(tx, (c) => {
      const encoded = blocks.map(encodeStateBlock);
      const insert = c.stmt(`INSERT INTO roomserver_state_block (state_block_hash, entry_count, entries) VALUES (?, ?, ?)
        ON CONFLICT (state_block_hash) DO UPDATE SET state_block_hash = excluded.state_block_hash
        RETURNING state_block_nid AS nid`);
      return encoded.map((b) => (insert.get(b.hash, b.entries.length, b.bytes) as { nid: StateBlockNID }).nid);
    });
  }

  bulkSelectStateBlockEntries(tx: Tx, stateBlockNIDs: readonly StateBlockNID[]): Promise<StateEntryList[]> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT state_block_nid AS nid, entries FROM roomserver_state_block WHERE state_block_nid ${IN_LIST}
        ORDER BY state_block_nid`).all(nidList(unique(stateBlockNIDs))) as { nid: StateBlockNID; entries: Buffer }[];
      const found = new Set(rows.map((r) => r.nid));
      const err = missingOf('state', 'state blocks', unique(stateBlockNIDs), (n) => found.has(n));
      if (err) throw err;
      return rows.map((r) => ({ stateBlockNID: r.nid, stateEntries: decodeStateBlock(r.entries, r.nid) }));
    });
  }
}

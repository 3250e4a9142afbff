import { inject, injectable } from 'inversify';
import type { StateBlockNID } from '../../types/nids.js';
import type { StateEntryList, StateEntry } from '../../types/state.js';
import { probeSync, storeAtFreeKey, type StoredContent } from '../shared/content-keys.js';
import { missingOf, unique } from '../shared/contracts.js';
import { contentKey, decodeStateBlockRows, encodeStateBlock, type EncodedStateBlock } from '../shared/state-codec.js';
import type { EncodedStateBlockRow, StateBlockTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { IN_LIST, nidList } from './values.js';

/**
 * Stores a block under a content key, or finds it there. The update is a no-op that only happens when the row at
 * that key holds these same entries: RETURNING then gives the existing row's NID, and gives nothing when the key
 * belongs to other entries (a collision: the caller probes the next key). Only reached for a key the row lookup
 * found free (storeAtFreeKey): an upsert that meets a conflict still moves the AUTOINCREMENT counter on.
 */
const UPSERT = `INSERT INTO roomserver_state_block (content_key, entry_count, entries) VALUES (?, ?, ?)
  ON CONFLICT (content_key) DO UPDATE SET content_key = excluded.content_key WHERE entries = excluded.entries
  RETURNING state_block_nid AS nid`;
const AT_KEY = 'SELECT state_block_nid AS nid, entries AS content FROM roomserver_state_block WHERE content_key = ?';

@injectable()
export class SqliteStateBlockTable implements StateBlockTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertStateBlock(tx: Tx, entries: readonly StateEntry[]): Promise<StateBlockNID> {
    return this.conn.run(tx, (c) => {
      // Encoded inside run, so that bad input rejects the returned promise rather than throwing synchronously.
      return this.store(c, encodeStateBlock(entries));
    });
  }

  bulkInsertStateBlocks(tx: Tx, blocks: readonly (readonly StateEntry[])[]): Promise<StateBlockNID[]> {
    return this.conn.run(tx, (c) => blocks.map(encodeStateBlock).map((b) => this.store(c, b)));
  }

  private store(c: SqliteConnection, block: EncodedStateBlock): StateBlockNID {
    const [atKey, upsert] = [c.stmt(AT_KEY), c.stmt(UPSERT)];
    return probeSync('state block', contentKey(block.bytes), (key) => storeAtFreeKey<StateBlockNID>(block.bytes, atKey.get(key) as StoredContent<StateBlockNID> | undefined,
      () => (upsert.get(key, block.entries.length, block.bytes) as { nid: StateBlockNID } | undefined)?.nid));
  }

  async bulkSelectStateBlockEntries(tx: Tx, stateBlockNIDs: readonly StateBlockNID[]): Promise<StateEntryList[]> {
    return decodeStateBlockRows(await this.bulkSelectEncodedStateBlocks(tx, stateBlockNIDs));
  }

  bulkSelectEncodedStateBlocks(tx: Tx, stateBlockNIDs: readonly StateBlockNID[]): Promise<EncodedStateBlockRow[]> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT state_block_nid AS nid, entries FROM roomserver_state_block WHERE state_block_nid ${IN_LIST}
        ORDER BY state_block_nid`).all(nidList(unique(stateBlockNIDs))) as { nid: StateBlockNID; entries: Buffer }[];
      const found = new Set(rows.map((r) => r.nid));
      const err = missingOf('state', 'state blocks', unique(stateBlockNIDs), (n) => found.has(n));
      if (err) throw err;
      return rows.map((r) => ({ stateBlockNID: r.nid, encoded: r.entries }));
    });
  }
}

import { inject, injectable } from 'inversify';
import type { StateBlockNID } from '../../types/nids.js';
import type { StateEntry, StateEntryList } from '../../types/state.js';
import { missingOf, unique } from '../shared/contracts.js';
import { decodeStateBlockRows, encodeStateBlock } from '../shared/state-codec.js';
import type { EncodedStateBlockRow, StateBlockTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { storeContentAddressed, storeContentAddressedMany } from './content-addressed.js';

/** state_block on Cosmos DB: `sb|<NID>` holds the encoded entries (base64, unindexed); `sbh|<hash>` dedupes. */
@injectable()
export class CosmosStateBlockTable implements StateBlockTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  async insertStateBlock(_tx: Tx, entries: readonly StateEntry[]): Promise<StateBlockNID> {
    const block = encodeStateBlock(entries);
    return (await storeContentAddressed(this.conn, 'sb', 'stateBlock', block.hash, {
      count: block.entries.length, bytes: block.bytes.toString('base64'),
    })) as StateBlockNID;
  }

  async bulkInsertStateBlocks(_tx: Tx, blocks: readonly (readonly StateEntry[])[]): Promise<StateBlockNID[]> {
    const encoded = blocks.map(encodeStateBlock);
    return (await storeContentAddressedMany(this.conn, 'sb', 'stateBlock', encoded.map((b) => ({
      hash: b.hash, content: { count: b.entries.length, bytes: b.bytes.toString('base64') },
    })))) as StateBlockNID[];
  }

  async bulkSelectStateBlockEntries(tx: Tx, stateBlockNIDs: readonly StateBlockNID[]): Promise<StateEntryList[]> {
    return decodeStateBlockRows(await this.bulkSelectEncodedStateBlocks(tx, stateBlockNIDs));
  }

  async bulkSelectEncodedStateBlocks(_tx: Tx, stateBlockNIDs: readonly StateBlockNID[]): Promise<EncodedStateBlockRow[]> {
    const docs = (await this.conn.requests.readMany<{ nid: StateBlockNID; bytes: string }>('stateBlocks.select',
      unique(stateBlockNIDs).map((nid) => ({ id: 'sb', pk: this.conn.pk('sb', nid) })))).filter((d) => d !== undefined);
    const found = new Set(docs.map((d) => d.nid as number));
    const err = missingOf('state', 'state blocks', unique(stateBlockNIDs), (n) => found.has(n));
    if (err) throw err;
    return docs.sort((a, b) => a.nid - b.nid).map((d) => ({ stateBlockNID: d.nid, encoded: Buffer.from(d.bytes, 'base64') }));
  }
}

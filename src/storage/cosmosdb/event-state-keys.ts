import { inject, injectable } from 'inversify';
import type { EventStateKeyNID } from '../../types/nids.js';
import type { EventStateKeysTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { CosmosStringNIDMap } from './string-nid-map.js';

@injectable()
export class CosmosEventStateKeysTable implements EventStateKeysTable {
  readonly map: CosmosStringNIDMap<EventStateKeyNID>;

  constructor(@inject(COSMOS_CONNECTION) conn: CosmosConnection) {
    this.map = new CosmosStringNIDMap(conn, 'state key', 'sk', 'stateKey');
  }

  async insertEventStateKeyNID(_tx: Tx, key: string) { return this.map.insert(key); }
  async selectEventStateKeyNID(_tx: Tx, key: string) { return this.map.select(key); }
  async bulkSelectEventStateKeyNID(_tx: Tx, keys: readonly string[]) { return this.map.bulkSelectNIDs(keys); }
  async assignEventStateKeyNIDs(_tx: Tx, keys: readonly string[]) { return this.map.assign(keys); }
  stageEventStateKeyNIDs(tx: Tx, keys: readonly string[]) { return this.map.stage(tx, keys); }
  lookUpEventStateKeyNIDsForCall(tx: Tx, keys: readonly string[]) { return this.map.lookUpForCall(tx, keys); }
  /** The call's staged mappings (stageEventStateKeyNIDs), written now: the room's commit issues this with its writes. */
  writeStaged(tx: Tx) { return this.map.writeStaged(tx); }
  stagedNIDs(tx: Tx) { return this.map.stagedNIDs(tx); }
  async bulkSelectEventStateKey(_tx: Tx, nids: readonly EventStateKeyNID[]) { return this.map.bulkSelectStrings(nids); }
}

import { inject, injectable } from 'inversify';
import type { EventStateKeyNID } from '../../types/nids.js';
import type { EventStateKeysTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';
import { PostgresStringNIDMap } from './string-nid-map.js';

@injectable()
export class PostgresEventStateKeysTable implements EventStateKeysTable {
  private readonly map: PostgresStringNIDMap<EventStateKeyNID>;

  constructor(@inject(POSTGRES_CONNECTION) conn: PostgresConnection) {
    this.map = new PostgresStringNIDMap(conn, 'state key', 'roomserver_event_state_keys', 'event_state_key_nid', 'event_state_key', 'event_state_key_hash');
  }

  insertEventStateKeyNID(tx: Tx, key: string) { return this.map.insert(tx, key); }
  selectEventStateKeyNID(tx: Tx, key: string) { return this.map.select(tx, key); }
  bulkSelectEventStateKeyNID(tx: Tx, keys: readonly string[]) { return this.map.bulkSelectNIDs(tx, keys); }
  assignEventStateKeyNIDs(tx: Tx, keys: readonly string[]) { return this.map.assign(tx, keys); }
  bulkSelectEventStateKey(tx: Tx, nids: readonly EventStateKeyNID[]) { return this.map.bulkSelectStrings(tx, nids); }
}

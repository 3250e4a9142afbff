import { inject, injectable } from 'inversify';
import type { EventStateKeyNID } from '../../types/nids.js';
import type { EventStateKeysTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { SqliteStringNIDMap } from './string-nid-map.js';

@injectable()
export class SqliteEventStateKeysTable implements EventStateKeysTable {
  private readonly map: SqliteStringNIDMap<EventStateKeyNID>;

  constructor(@inject(SQLITE_CONNECTION) conn: SqliteConnection) {
    this.map = new SqliteStringNIDMap(conn, 'state key', 'roomserver_event_state_keys', 'event_state_key_nid', 'event_state_key');
  }

  insertEventStateKeyNID(tx: Tx, key: string) { return this.map.insert(tx, key); }
  selectEventStateKeyNID(tx: Tx, key: string) { return this.map.select(tx, key); }
  bulkSelectEventStateKeyNID(tx: Tx, keys: readonly string[]) { return this.map.bulkSelectNIDs(tx, keys); }
  assignEventStateKeyNIDs(tx: Tx, keys: readonly string[]) { return this.map.assign(tx, keys); }
  bulkSelectEventStateKey(tx: Tx, nids: readonly EventStateKeyNID[]) { return this.map.bulkSelectStrings(tx, nids); }
}

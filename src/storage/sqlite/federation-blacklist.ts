import { inject, injectable } from 'inversify';
import type { FederationBlacklistTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';

@injectable()
export class SqliteFederationBlacklistTable implements FederationBlacklistTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertBlacklist(tx: Tx, serverName: string): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt('INSERT INTO federationsender_blacklist (server_name) VALUES (?) ON CONFLICT DO NOTHING').run(serverName);
    });
  }

  selectBlacklist(tx: Tx, serverName: string): Promise<boolean> {
    return this.conn.run(tx, (c) => c.stmt('SELECT 1 FROM federationsender_blacklist WHERE server_name = ?').get(serverName) !== undefined);
  }

  deleteBlacklist(tx: Tx, serverName: string): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt('DELETE FROM federationsender_blacklist WHERE server_name = ?').run(serverName);
    });
  }

  deleteAllBlacklist(tx: Tx): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt('DELETE FROM federationsender_blacklist').run();
    });
  }
}

import { inject, injectable } from 'inversify';
import type { FederationBlacklistTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';
import { changed } from './values.js';

@injectable()
export class PostgresFederationBlacklistTable implements FederationBlacklistTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async insertBlacklist(tx: Tx, serverName: string): Promise<void> {
    await this.conn.query(tx, 'INSERT INTO federationsender_blacklist (server_name) VALUES ($1) ON CONFLICT DO NOTHING', [serverName]);
  }

  async selectBlacklist(tx: Tx, serverName: string): Promise<boolean> {
    const r = await this.conn.query(tx, 'SELECT 1 FROM federationsender_blacklist WHERE server_name = $1', [serverName]);
    return changed(r) > 0;
  }

  async deleteBlacklist(tx: Tx, serverName: string): Promise<void> {
    await this.conn.query(tx, 'DELETE FROM federationsender_blacklist WHERE server_name = $1', [serverName]);
  }

  /** DELETE, not TRUNCATE: TRUNCATE takes an ACCESS EXCLUSIVE lock that would stall every concurrent reader. */
  async deleteAllBlacklist(tx: Tx): Promise<void> {
    await this.conn.query(tx, 'DELETE FROM federationsender_blacklist');
  }
}

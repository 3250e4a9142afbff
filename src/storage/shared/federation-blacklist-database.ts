import { inject, injectable } from 'inversify';
import { TOKENS } from '../../di/tokens.js';
import { checkServerName } from '../../types/keys.js';
import type { FederationBlacklistTable, UnitOfWork } from '../tables/index.js';

/** The federation blacklist: servers this homeserver refuses to federate with. Each call is one idempotent write. */
@injectable()
export class FederationBlacklistDatabase {
  constructor(
    @inject(TOKENS.UnitOfWork) private readonly uow: UnitOfWork,
    @inject(TOKENS.FederationBlacklistTable) private readonly table: FederationBlacklistTable,
  ) {}

  /** Idempotent. */
  async addServerToBlacklist(serverName: string): Promise<void> {
    checkServerName('server name', serverName);
    await this.uow.transaction((tx) => this.table.insertBlacklist(tx, serverName));
  }

  /** No-op if the server is not listed. */
  async removeServerFromBlacklist(serverName: string): Promise<void> {
    checkServerName('server name', serverName);
    await this.uow.transaction((tx) => this.table.deleteBlacklist(tx, serverName));
  }

  async removeAllServersFromBlacklist(): Promise<void> {
    await this.uow.transaction((tx) => this.table.deleteAllBlacklist(tx));
  }

  /** Exact match (case included). */
  async isServerBlacklisted(serverName: string): Promise<boolean> {
    checkServerName('server name', serverName);
    return this.table.selectBlacklist(this.uow.autocommit, serverName);
  }
}

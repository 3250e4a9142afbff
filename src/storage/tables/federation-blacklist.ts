import type { Tx } from './unit-of-work.js';

/** federation_blacklist: servers this homeserver refuses to federate with. */
export interface FederationBlacklistTable {
  /** DO NOTHING if the server is already listed. */
  insertBlacklist(tx: Tx, serverName: string): Promise<void>;
  selectBlacklist(tx: Tx, serverName: string): Promise<boolean>;
  /** No-op if absent. */
  deleteBlacklist(tx: Tx, serverName: string): Promise<void>;
  deleteAllBlacklist(tx: Tx): Promise<void>;
}

import type { Tx } from './unit-of-work.js';

/** federation_blacklist: servers this homeserver refuses to federate with. Server names match exactly (case included). */
export interface FederationBlacklistTable {
  /** DO NOTHING if the server is already listed. */
  insertBlacklist(tx: Tx, serverName: string): Promise<void>;
  /** true if the server is listed. */
  selectBlacklist(tx: Tx, serverName: string): Promise<boolean>;
  /** No-op if absent. */
  deleteBlacklist(tx: Tx, serverName: string): Promise<void>;
  /** Removes every server; no-op if none. */
  deleteAllBlacklist(tx: Tx): Promise<void>;
}

import type { Tx } from './unit-of-work.js';

/** room_aliases: #alias:server -> room ID and who created it. */
export interface RoomAliasesTable {
  /** Plain insert: ConflictError if the alias exists. */
  insertRoomAlias(tx: Tx, alias: string, roomID: string, creatorUserID: string): Promise<void>;
  /** null if missing. */
  selectRoomIDFromAlias(tx: Tx, alias: string): Promise<string | null>;
  /** In insertion order; empty if none. */
  selectAliasesFromRoomID(tx: Tx, roomID: string): Promise<string[]>;
  /** null if missing. */
  selectCreatorIDFromAlias(tx: Tx, alias: string): Promise<string | null>;
  /** No-op if missing. */
  deleteRoomAlias(tx: Tx, alias: string): Promise<void>;
  /**
   * Points every alias of `oldRoomID` at `newRoomID`, created by `creatorUserID` (a room upgrade); their order
   * among themselves is kept. Returns the aliases moved, in that order.
   */
  moveRoomAliases(tx: Tx, oldRoomID: string, newRoomID: string, creatorUserID: string): Promise<string[]>;
}

import type { Tx } from './unit-of-work.js';

/** One entry of a room in the directory: the room list of the server (appservice and network ""), or of an appservice's network. */
export interface Publication {
  readonly appserviceID: string;
  readonly networkID: string;
  readonly published: boolean;
}

/**
 * published: whether a room is in the public room directory, per (appservice, network): the server's own list is
 * appservice "" and network "", an application service's third-party network its own pair.
 */
export interface PublishedTable {
  /** UPSERT of the (room, appservice, network) row: sets the flag. Appservice and network default to "". */
  upsertRoomPublished(tx: Tx, roomID: string, published: boolean, appserviceID?: string, networkID?: string): Promise<void>;
  /** true if the room is published in any list; false if it has no published row. */
  selectPublishedFromRoomID(tx: Tx, roomID: string): Promise<boolean>;
  /** Every row of the room, sorted by (appservice, network). */
  selectRoomPublications(tx: Tx, roomID: string): Promise<Publication[]>;
  /**
   * Room IDs with this flag, each once, sorted ascending: those of `networkID` when it is not empty; else every
   * list's with `includeAllNetworks` (the default), else only the server's own (network "").
   */
  selectAllPublishedRooms(tx: Tx, published: boolean, networkID?: string, includeAllNetworks?: boolean): Promise<string[]>;
}

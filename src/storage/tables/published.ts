import type { Tx } from './unit-of-work.js';

/** published: whether a room is in the public room directory. */
export interface PublishedTable {
  /** UPSERT: sets the flag. */
  upsertRoomPublished(tx: Tx, roomID: string, published: boolean): Promise<void>;
  /** false if the room has no row. */
  selectPublishedFromRoomID(tx: Tx, roomID: string): Promise<boolean>;
  /** Room IDs with this flag, sorted ascending. */
  selectAllPublishedRooms(tx: Tx, published: boolean): Promise<string[]>;
}

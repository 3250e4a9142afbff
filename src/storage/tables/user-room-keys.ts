import type { EventStateKeyNID, RoomNID } from '../../types/nids.js';
import type { Tx } from './unit-of-work.js';

/**
 * user_room_keys: a user's ed25519 key for one room, the key behind the user's pseudo ID there (MSC4014, Dendrite's
 * roomserver_user_room_keys): a local user's private key with its public key, a remote user's public key alone.
 */
export interface UserRoomKeysTable {
  /**
   * Stores the user's private and public key for the room unless the user has a private key there already;
   * returns the private key stored (that one, or the one given).
   */
  insertUserRoomPrivatePublicKey(tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID, privateKey: Uint8Array, publicKey: Uint8Array): Promise<Uint8Array>;
  /** Stores the user's public key for the room unless one is stored; returns the public key stored. */
  insertUserRoomPublicKey(tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID, publicKey: Uint8Array): Promise<Uint8Array>;
  /** null if the user has no private key for the room. */
  selectUserRoomPrivateKey(tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID): Promise<Uint8Array | null>;
  /** null if the user has no key for the room. */
  selectUserRoomPublicKey(tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID): Promise<Uint8Array | null>;
  /** For each room, the users whose public key there is among those given: (room, key as unpadded base64) -> user NID. */
  selectUserNIDsForPublicKeys(tx: Tx, keys: ReadonlyMap<RoomNID, readonly Uint8Array[]>): Promise<Map<RoomNID, Map<string, EventStateKeyNID>>>;
}

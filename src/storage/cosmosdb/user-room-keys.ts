import { inject, injectable } from 'inversify';
import { ConcurrentUpdateError } from '../../types/errors.js';
import type { EventStateKeyNID, RoomNID } from '../../types/nids.js';
import { keyFromText, keyToText } from '../shared/key-text.js';
import type { Tx, UserRoomKeysTable } from '../tables/index.js';
import { mapLimit, READ_CONCURRENCY } from './bulk.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';

interface KeyDoc {
  userNID: EventStateKeyNID;
  roomNID: RoomNID;
  /** Unpadded base64; absent for a remote user. */
  priv?: string;
  pub: string;
}

/** How often a key insert re-reads a document another writer changed between its read and its write. */
const ATTEMPTS = 5;

/**
 * user_room_keys on Cosmos DB: in the room's partition `urk|<room NID>`, a document per user `u|<user NID>`: a
 * user's key is a point read, and the users behind a room's public keys one single-partition query.
 */
@injectable()
export class CosmosUserRoomKeysTable implements UserRoomKeysTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private ref(userNID: number, roomNID: number) {
    return { id: `u|${userNID}`, pk: this.conn.pk('urk', roomNID) };
  }

  /**
   * Creates the document, or completes one that lacks what `wanted` says is missing (a conditional replace on its
   * ETag, read again if another writer got there first); returns the document as stored.
   */
  private async insert(operation: string, doc: KeyDoc, missing: (d: KeyDoc) => boolean): Promise<KeyDoc> {
    const { id, pk } = this.ref(doc.userNID, doc.roomNID);
    for (let i = 0; i < ATTEMPTS; i++) {
      if (await this.conn.requests.create(operation, { id, pk, k: 'urk', ...doc })) return doc;
      const stored = await this.conn.requests.read<KeyDoc>(operation, id, pk);
      if (!stored) continue;
      if (!missing(stored)) return stored;
      if (await this.conn.requests.replaceIfMatch(operation, { id, pk, k: 'urk', ...doc }, stored._etag)) return doc;
    }
    throw new ConcurrentUpdateError(`the key of user NID ${doc.userNID} in room NID ${doc.roomNID} kept changing under ${ATTEMPTS} attempts to store it`);
  }

  /** A remote user's document (public key only) gets the private key; one with a private key keeps it. */
  async insertUserRoomPrivatePublicKey(_tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID, privateKey: Uint8Array, publicKey: Uint8Array): Promise<Uint8Array> {
    const stored = await this.insert('userRoomKeys.insertPrivate', { userNID, roomNID, priv: keyToText(privateKey), pub: keyToText(publicKey) }, (d) => !d.priv);
    return keyFromText(stored.priv!);
  }

  async insertUserRoomPublicKey(_tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID, publicKey: Uint8Array): Promise<Uint8Array> {
    const stored = await this.insert('userRoomKeys.insertPublic', { userNID, roomNID, pub: keyToText(publicKey) }, () => false);
    return keyFromText(stored.pub);
  }

  private read(userNID: number, roomNID: number) {
    const { id, pk } = this.ref(userNID, roomNID);
    return this.conn.requests.read<KeyDoc>('userRoomKeys.select', id, pk);
  }

  async selectUserRoomPrivateKey(_tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID): Promise<Uint8Array | null> {
    const doc = await this.read(userNID, roomNID);
    return doc?.priv ? keyFromText(doc.priv) : null;
  }

  async selectUserRoomPublicKey(_tx: Tx, userNID: EventStateKeyNID, roomNID: RoomNID): Promise<Uint8Array | null> {
    const doc = await this.read(userNID, roomNID);
    return doc ? keyFromText(doc.pub) : null;
  }

  async selectUserNIDsForPublicKeys(_tx: Tx, keys: ReadonlyMap<RoomNID, readonly Uint8Array[]>): Promise<Map<RoomNID, Map<string, EventStateKeyNID>>> {
    const rooms = [...keys];
    const found = await mapLimit(rooms, READ_CONCURRENCY, ([room, list]) => this.conn.requests.query<{ userNID: EventStateKeyNID; pub: string }>(
      'userRoomKeys.forPublicKeys', this.conn.pk('urk', room),
      "SELECT c.userNID, c.pub FROM c WHERE c.pk = @pk AND c.k = 'urk' AND ARRAY_CONTAINS(@keys, c.pub)", [{ name: '@keys', value: list.map(keyToText) }]));
    const out = new Map<RoomNID, Map<string, EventStateKeyNID>>();
    rooms.forEach(([room], i) => {
      if (found[i]!.length > 0) out.set(room, new Map(found[i]!.map((r) => [r.pub, r.userNID])));
    });
    return out;
  }
}

import { inject, injectable } from 'inversify';
import { duplicate } from '../shared/contracts.js';
import type { RoomAliasesTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { docId } from './ids.js';

interface AliasDoc {
  alias: string;
  roomID: string;
  creator: string;
  seq: number;
}

/**
 * room_aliases on Cosmos DB: one small tenant-wide partition `aliases` (a homeserver has thousands of aliases,
 * not millions), one document per alias. Creating it is the whole write, so an alias is never half-made; listing a
 * room's aliases is a single-partition query, in insertion order (a sequence number).
 */
@injectable()
export class CosmosRoomAliasesTable implements RoomAliasesTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private get pk() {
    return this.conn.pk('aliases');
  }

  private read(alias: string) {
    return this.conn.requests.read<AliasDoc>('roomAliases.select', docId(alias), this.pk);
  }

  async insertRoomAlias(_tx: Tx, alias: string, roomID: string, creatorUserID: string): Promise<void> {
    const seq = await this.conn.sequence('order').nextValue();
    const doc: AliasDoc = { alias, roomID, creator: creatorUserID, seq };
    if (!(await this.conn.requests.create('roomAliases.insert', { id: docId(alias), pk: this.pk, k: 'alias', ...doc }))) {
      throw duplicate('room alias', alias);
    }
  }

  async selectRoomIDFromAlias(_tx: Tx, alias: string): Promise<string | null> {
    return (await this.read(alias))?.roomID ?? null;
  }

  async selectAliasesFromRoomID(_tx: Tx, roomID: string): Promise<string[]> {
    const rows = await this.conn.requests.query<{ alias: string; seq: number }>('roomAliases.selectByRoom', this.pk,
      "SELECT c.alias, c.seq FROM c WHERE c.pk = @pk AND c.k = 'alias' AND c.roomID = @room", [{ name: '@room', value: roomID }]);
    return rows.sort((a, b) => a.seq - b.seq).map((r) => r.alias);
  }

  async selectCreatorIDFromAlias(_tx: Tx, alias: string): Promise<string | null> {
    return (await this.read(alias))?.creator ?? null;
  }

  async deleteRoomAlias(_tx: Tx, alias: string): Promise<void> {
    await this.conn.requests.delete('roomAliases.delete', docId(alias), this.pk);
  }

  /**
   * Each alias document rewritten in place (its seq kept): each move is whole, and a retry after a crash part-way
   * moves the aliases still naming the old room.
   */
  async moveRoomAliases(_tx: Tx, oldRoomID: string, newRoomID: string, creatorUserID: string): Promise<string[]> {
    const rows = await this.conn.requests.query<AliasDoc>('roomAliases.selectForMove', this.pk,
      "SELECT c.alias, c.roomID, c.creator, c.seq FROM c WHERE c.pk = @pk AND c.k = 'alias' AND c.roomID = @room", [{ name: '@room', value: oldRoomID }]);
    rows.sort((a, b) => a.seq - b.seq);
    await this.conn.requests.upsertMany('roomAliases.move', rows.map((d) => ({
      id: docId(d.alias), pk: this.pk, k: 'alias', alias: d.alias, roomID: newRoomID, creator: creatorUserID, seq: d.seq,
    })));
    return rows.map((d) => d.alias);
  }
}

import { inject, injectable } from 'inversify';
import type { EventStateKeyNID, RoomNID } from '../../types/nids.js';
import type { InviteRow, InvitesTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';
import { changed } from './values.js';

@injectable()
export class PostgresInvitesTable implements InvitesTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async insertInviteEvent(tx: Tx, invite: InviteRow): Promise<boolean> {
    const r = await this.conn.query(tx, `INSERT INTO roomserver_invites (invite_event_id, room_nid, target_nid, sender_nid, invite_event_json)
      VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
    [invite.inviteEventID, invite.roomNID, invite.targetUserNID, invite.senderUserNID, invite.inviteEventJSON]);
    return changed(r) > 0;
  }

  /** One statement: RETURNING has no defined order, so the CTE's rows are sorted by insertion afterwards. */
  async updateInviteRetired(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID): Promise<string[]> {
    const r = await this.conn.query<{ id: string }>(tx, `WITH retired AS (
        UPDATE roomserver_invites SET retired = true WHERE room_nid = $1 AND target_nid = $2 AND NOT retired
        RETURNING invite_event_id, insertion)
      SELECT invite_event_id AS id FROM retired ORDER BY insertion`, [roomNID, targetUserNID]);
    return r.rows.map((row) => row.id);
  }

  async selectInviteActiveForUserInRoom(tx: Tx, targetUserNID: EventStateKeyNID, roomNID: RoomNID) {
    const r = await this.conn.query<{ sender: EventStateKeyNID; id: string }>(tx, `SELECT sender_nid AS sender, invite_event_id AS id
      FROM roomserver_invites WHERE target_nid = $1 AND room_nid = $2 AND NOT retired ORDER BY insertion`, [targetUserNID, roomNID]);
    return { senderUserNIDs: r.rows.map((row) => row.sender), eventIDs: r.rows.map((row) => row.id) };
  }
}

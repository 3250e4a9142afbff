import { inject, injectable } from 'inversify';
import type { EventStateKeyNID, RoomNID } from '../../types/nids.js';
import type { InviteRow, InvitesTable, InviteWrite, Tx } from '../tables/index.js';
import { unique } from '../shared/contracts.js';
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

  async bulkSelectActiveInvites(tx: Tx, roomNID: RoomNID, targetUserNIDs: readonly EventStateKeyNID[]): Promise<Map<EventStateKeyNID, string[]>> {
    const out = new Map<EventStateKeyNID, string[]>();
    if (targetUserNIDs.length === 0) return this.conn.nothing(tx, out);
    const r = await this.conn.query<{ target: EventStateKeyNID; id: string }>(tx, `SELECT target_nid AS target, invite_event_id AS id
      FROM roomserver_invites WHERE target_nid = ANY($2::bigint[]) AND room_nid = $1 AND NOT retired ORDER BY insertion`, [roomNID, unique(targetUserNIDs)]);
    for (const row of r.rows) out.set(row.target, [...(out.get(row.target) ?? []), row.id]);
    return out;
  }

  async bulkSelectStoredInviteIDs(tx: Tx, inviteEventIDs: readonly string[]): Promise<Set<string>> {
    if (inviteEventIDs.length === 0) return this.conn.nothing(tx, new Set());
    const r = await this.conn.query<{ id: string }>(tx, `SELECT invite_event_id AS id FROM roomserver_invites WHERE invite_event_id = ANY($1::text[])`,
      [unique(inviteEventIDs)]);
    return new Set(r.rows.map((row) => row.id));
  }

  async bulkInsertInvites(tx: Tx, invites: readonly InviteWrite[]): Promise<void> {
    if (invites.length === 0) return this.conn.nothing(tx, undefined);
    // ORDER BY the input's position: the identity column numbers them in the order given.
    await this.conn.query(tx, `INSERT INTO roomserver_invites (invite_event_id, room_nid, target_nid, sender_nid, invite_event_json, retired)
      SELECT id, room, target, sender, json, retired FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::bool[])
        WITH ORDINALITY AS t(id, room, target, sender, json, retired, n) ORDER BY n
      ON CONFLICT DO NOTHING`, [invites.map((i) => i.inviteEventID), invites.map((i) => i.roomNID), invites.map((i) => i.targetUserNID),
      invites.map((i) => i.senderUserNID), invites.map((i) => i.inviteEventJSON), invites.map((i) => i.retired)]);
  }

  async bulkRetireInvites(tx: Tx, invites: readonly { roomNID: RoomNID; targetUserNID: EventStateKeyNID; inviteEventID: string }[]): Promise<void> {
    if (invites.length === 0) return this.conn.nothing(tx, undefined);
    await this.conn.query(tx, 'UPDATE roomserver_invites SET retired = true WHERE invite_event_id = ANY($1::text[])', [unique(invites.map((i) => i.inviteEventID))]);
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
    const r = await this.conn.query<{ sender: EventStateKeyNID; id: string; json: string }>(tx, `SELECT sender_nid AS sender, invite_event_id AS id,
      invite_event_json AS json FROM roomserver_invites WHERE target_nid = $1 AND room_nid = $2 AND NOT retired ORDER BY insertion`, [targetUserNID, roomNID]);
    return { senderUserNIDs: r.rows.map((row) => row.sender), eventIDs: r.rows.map((row) => row.id), inviteEventJSONs: r.rows.map((row) => row.json) };
  }
}

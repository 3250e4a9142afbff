import { inject, injectable } from 'inversify';
import type { EventStateKeyNID, RoomNID } from '../../types/nids.js';
import type { InviteRow, InvitesTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';

interface Invite {
  id: string;
  sender: EventStateKeyNID;
  retired: boolean;
  json: string;
}

/**
 * invites on Cosmos DB: one document per (room, user), `inv|<user NID>` in the room's partition, holding that
 * user's invites in insertion order. Every change is a read and an ETag-conditional replace, retried on a race,
 * so adding and retiring invites are atomic and need no query.
 */
@injectable()
export class CosmosInvitesTable implements InvitesTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private ref(roomNID: number, target: number) {
    return { id: `inv|${target}`, pk: this.conn.pk('room', roomNID) };
  }

  /** Reads the invite list, applies `change`, writes it back if it changed; again on a concurrent change. */
  private async update<T>(roomNID: RoomNID, target: EventStateKeyNID, change: (invites: Invite[]) => { result: T; changed: boolean }): Promise<T> {
    const { id, pk } = this.ref(roomNID, target);
    const r = this.conn.requests;
    for (;;) {
      const doc = await r.read<{ invites: Invite[] }>('invites.read', id, pk);
      const invites = doc ? doc.invites.map((i) => ({ ...i })) : [];
      const { result, changed } = change(invites);
      if (!changed) return result;
      const next = { id, pk, k: 'invites', room: roomNID, target, invites };
      if (doc ? await r.replaceIfMatch('invites.write', next, doc._etag) : await r.create('invites.write', next)) return result;
    }
  }

  /**
   * An invite ID is unique across rooms and users: a claim document `invid|<ID>` records where it belongs, and is
   * created first. Finding a claim for the same (room, user) means an earlier insert was interrupted: finish it.
   */
  async insertInviteEvent(_tx: Tx, invite: InviteRow): Promise<boolean> {
    const r = this.conn.requests;
    const claim = { id: 'invid', pk: this.conn.pk('invid', invite.inviteEventID) };
    if (!(await r.create('invites.claim', { ...claim, k: 'invite_id', room: invite.roomNID, target: invite.targetUserNID }))) {
      const owner = await r.read<{ room: number; target: number }>('invites.claim', claim.id, claim.pk);
      if (owner?.room !== invite.roomNID || owner.target !== invite.targetUserNID) return false;
    }
    return this.update(invite.roomNID, invite.targetUserNID, (invites) => {
      if (invites.some((i) => i.id === invite.inviteEventID)) return { result: false, changed: false };
      invites.push({ id: invite.inviteEventID, sender: invite.senderUserNID, retired: false, json: invite.inviteEventJSON });
      return { result: true, changed: true };
    });
  }

  updateInviteRetired(_tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID): Promise<string[]> {
    return this.update(roomNID, targetUserNID, (invites) => {
      const active = invites.filter((i) => !i.retired);
      for (const i of active) i.retired = true;
      return { result: active.map((i) => i.id), changed: active.length > 0 };
    });
  }

  async selectInviteActiveForUserInRoom(_tx: Tx, targetUserNID: EventStateKeyNID, roomNID: RoomNID) {
    const { id, pk } = this.ref(roomNID, targetUserNID);
    const doc = await this.conn.requests.read<{ invites: Invite[] }>('invites.selectActive', id, pk);
    const active = (doc?.invites ?? []).filter((i) => !i.retired);
    return { senderUserNIDs: active.map((i) => i.sender), eventIDs: active.map((i) => i.id) };
  }
}

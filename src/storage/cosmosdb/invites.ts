import { inject, injectable } from 'inversify';
import type { EventStateKeyNID, RoomNID } from '../../types/nids.js';
import type { InviteRow, InvitesTable, InviteWrite, Tx } from '../tables/index.js';
import { unique } from '../shared/contracts.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { Lru } from './lru.js';

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
  /**
   * Invite lists as this process last read or wrote them, with their ETags (null: there was none), by (room, user):
   * the write path reads a user's list before it changes it, and the change, conditional on the ETag, then needs
   * no read of its own. Taken once: a change that finds the list changed meanwhile reads it again.
   */
  private readonly lists = new Lru<string, { invites: Invite[]; _etag: string } | null>(10_000);

  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  /** The list as last seen (see `lists`), forgotten as it is taken; undefined if not seen. */
  private seen(roomNID: number, target: number): { invites: Invite[]; _etag: string } | null | undefined {
    const key = `${roomNID}|${target}`;
    const doc = this.lists.get(key);
    this.lists.delete(key);
    return doc;
  }

  private ref(roomNID: number, target: number) {
    return { id: `inv|${target}`, pk: this.conn.pk('room', roomNID) };
  }

  /** Reads the invite list, applies `change`, writes it back if it changed; again on a concurrent change. */
  private async update<T>(roomNID: RoomNID, target: EventStateKeyNID, change: (invites: Invite[]) => { result: T; changed: boolean }): Promise<T> {
    const { id, pk } = this.ref(roomNID, target);
    const r = this.conn.requests;
    let seen = this.seen(roomNID, target);
    // A list this process has not seen is first taken to be none (most lists changed are a new invitee's): a
    // create that finds one reads it, and changes what it read. A change that does nothing to no list is asked of
    // the list read.
    let assumed = seen === undefined;
    if (assumed) seen = null;
    for (; ; seen = undefined, assumed = false) {
      const doc = seen !== undefined ? seen : await r.read<{ invites: Invite[] }>('invites.read', id, pk);
      const invites = doc ? doc.invites.map((i) => ({ ...i })) : [];
      const { result, changed } = change(invites);
      if (!changed && assumed) continue;
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

  async bulkSelectActiveInvites(_tx: Tx, roomNID: RoomNID, targetUserNIDs: readonly EventStateKeyNID[]): Promise<Map<EventStateKeyNID, string[]>> {
    const out = new Map<EventStateKeyNID, string[]>();
    const targets = unique(targetUserNIDs);
    const docs = await this.conn.requests.readMany<{ invites: Invite[] }>('invites.selectActive', targets.map((t) => this.ref(roomNID, t)));
    targets.forEach((target, i) => {
      this.lists.set(`${roomNID}|${target}`, docs[i] ?? null);
      const active = (docs[i]?.invites ?? []).filter((inv) => !inv.retired).map((inv) => inv.id);
      if (active.length > 0) out.set(target, active);
    });
    return out;
  }

  async bulkSelectStoredInviteIDs(_tx: Tx, inviteEventIDs: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    const ids = unique(inviteEventIDs);
    const claims = await this.conn.requests.readMany<{ room: number; target: number }>('invites.claim', ids.map((id) => ({ id: 'invid', pk: this.conn.pk('invid', id) })));
    const claimed = ids.flatMap((id, i) => (claims[i] ? [{ id, claim: claims[i]! }] : []));
    if (claimed.length === 0) return out;
    // A claim whose invite list lacks the invite is an insert that was interrupted: not stored yet.
    const lists = await this.conn.requests.readMany<{ invites: Invite[] }>('invites.read', claimed.map((c) => this.ref(c.claim.room, c.claim.target)));
    claimed.forEach((c, i) => {
      if (lists[i]?.invites.some((inv) => inv.id === c.id)) out.add(c.id);
    });
    return out;
  }

  /** One by one, in order: each is its claim, then its (room, user) list, as insertInviteEvent writes them. */
  async bulkInsertInvites(tx: Tx, invites: readonly InviteWrite[]): Promise<void> {
    for (const invite of invites) {
      if ((await this.insertInviteEvent(tx, invite)) && invite.retired) await this.retire(invite.roomNID, invite.targetUserNID, [invite.inviteEventID]);
    }
  }

  async bulkRetireInvites(_tx: Tx, invites: readonly { roomNID: RoomNID; targetUserNID: EventStateKeyNID; inviteEventID: string }[]): Promise<void> {
    const byList = new Map<string, { roomNID: RoomNID; targetUserNID: EventStateKeyNID; ids: string[] }>();
    for (const i of invites) {
      const key = `${i.roomNID}|${i.targetUserNID}`;
      const list = byList.get(key) ?? { roomNID: i.roomNID, targetUserNID: i.targetUserNID, ids: [] };
      list.ids.push(i.inviteEventID);
      byList.set(key, list);
    }
    for (const l of byList.values()) await this.retire(l.roomNID, l.targetUserNID, l.ids);
  }

  private retire(roomNID: RoomNID, targetUserNID: EventStateKeyNID, ids: readonly string[]): Promise<void> {
    return this.update(roomNID, targetUserNID, (invites) => {
      let changed = false;
      for (const i of invites) {
        if (ids.includes(i.id) && !i.retired) {
          i.retired = true;
          changed = true;
        }
      }
      return { result: undefined, changed };
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
    return { senderUserNIDs: active.map((i) => i.sender), eventIDs: active.map((i) => i.id), inviteEventJSONs: active.map((i) => i.json) };
  }
}

import { inject, injectable } from 'inversify';
import type { EventStateKeyNID, RoomNID } from '../../types/nids.js';
import type { InviteRow, InvitesTable, InviteWrite, Tx } from '../tables/index.js';
import { unique } from '../shared/contracts.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { Lru } from './lru.js';

/** Where an invite ID belongs. `user`: the invited user's ID, where the claim's writer knew it. */
interface InviteClaim {
  id: string;
  room: number;
  target: number;
  user?: string;
  _etag: string;
}

/** The state key (the invited user) of an invite event's JSON; undefined if it has none to read. */
function invitedUser(json: string): string | undefined {
  try {
    const key = (JSON.parse(json) as { state_key?: unknown }).state_key;
    return typeof key === 'string' ? key : undefined;
  } catch {
    return undefined;
  }
}

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
   * An invite ID is unique across rooms and users: a claim document `invid|<ID>` records where it belongs (and the
   * invited user's ID, from the event). The claim and the change to the (room, user) list go out together, in one
   * request. A claim of the same room and user is this invite's: an earlier insert that was interrupted, or one made
   * under a NID for the user that its call then lost to another writer's (the claim is pointed at this NID). Any
   * other claim keeps the ID, and the invite is taken back out of the list.
   */
  async insertInviteEvent(_tx: Tx, invite: InviteRow): Promise<boolean> {
    const r = this.conn.requests;
    const claim = this.claimRef(invite.inviteEventID);
    const user = invitedUser(invite.inviteEventJSON);
    const claimDoc = { ...claim, k: 'invite_id', room: invite.roomNID, target: invite.targetUserNID, ...(user !== undefined ? { user } : {}) };
    const [claimed, added] = await Promise.all([
      r.create('invites.claim', claimDoc),
      this.update(invite.roomNID, invite.targetUserNID, (invites) => {
        if (invites.some((i) => i.id === invite.inviteEventID)) return { result: false, changed: false };
        invites.push({ id: invite.inviteEventID, sender: invite.senderUserNID, retired: false, json: invite.inviteEventJSON });
        return { result: true, changed: true };
      }),
    ]);
    if (claimed) return added;
    const owner = await r.read<InviteClaim>('invites.claim', claim.id, claim.pk);
    if (owner?.room === invite.roomNID && (owner.target === invite.targetUserNID || (user !== undefined && owner.user === user))) {
      if (owner.target !== invite.targetUserNID) await r.upsert('invites.claim', claimDoc);
      return added;
    }
    if (added) await this.remove(invite.roomNID, invite.targetUserNID, [invite.inviteEventID]);
    return false;
  }

  /**
   * Takes back invites written under user NIDs their call did not get to keep (another writer mapped the user
   * first): their claims, where they still name that NID, and the NIDs' lists, which nothing else can have written.
   */
  async withdrawInvites(invites: readonly InviteRow[]): Promise<void> {
    const r = this.conn.requests;
    const claims = await r.readMany<InviteClaim>('invites.claim', invites.map((i) => this.claimRef(i.inviteEventID)));
    await Promise.all([
      ...invites.map((i, n) => {
        const c = claims[n];
        return c && c.room === i.roomNID && c.target === i.targetUserNID ? r.deleteIfMatch('invites.claim', c.id, this.claimRef(i.inviteEventID).pk, c._etag) : undefined;
      }),
      ...invites.map((i) => this.remove(i.roomNID, i.targetUserNID, [i.inviteEventID])),
    ]);
  }

  private claimRef(inviteEventID: string) {
    return { id: 'invid', pk: this.conn.pk('invid', inviteEventID) };
  }

  private remove(roomNID: RoomNID, target: EventStateKeyNID, ids: readonly string[]): Promise<void> {
    return this.update(roomNID, target, (invites) => {
      const kept = invites.filter((i) => !ids.includes(i.id));
      const changed = kept.length !== invites.length;
      invites.splice(0, invites.length, ...kept);
      return { result: undefined, changed };
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
    const claims = await this.conn.requests.readMany<{ room: number; target: number }>('invites.claim', ids.map((id) => this.claimRef(id)));
    const claimed = ids.flatMap((id, i) => (claims[i] ? [{ id, claim: claims[i]! }] : []));
    if (claimed.length === 0) return out;
    // A claim whose invite list lacks the invite is an insert that was interrupted: not stored yet.
    const lists = await this.conn.requests.readMany<{ invites: Invite[] }>('invites.read', claimed.map((c) => this.ref(c.claim.room, c.claim.target)));
    claimed.forEach((c, i) => {
      if (lists[i]?.invites.some((inv) => inv.id === c.id)) out.add(c.id);
    });
    return out;
  }

  /** One by one, in order, each as insertInviteEvent writes it. */
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

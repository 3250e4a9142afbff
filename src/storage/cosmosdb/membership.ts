import { inject, injectable } from 'inversify';
import { MembershipState } from '../../types/membership.js';
import type { EventNID, EventStateKeyNID, RoomNID } from '../../types/nids.js';
import { notFound, unique } from '../shared/contracts.js';
import type { MembershipRow, MembershipTable, MembershipWrite, Tx } from '../tables/index.js';
import { mapLimit, READ_CONCURRENCY } from './bulk.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { Lru } from './lru.js';
import type { Doc } from './requests.js';
import { codePointCompare } from './order.js';

interface MembershipDoc {
  room: RoomNID;
  target: EventStateKeyNID;
  /** The target's user ID (its state key), kept here so room-scoped queries can match on it without a join. */
  userID: string | null;
  sender: EventStateKeyNID;
  membership: MembershipState;
  eventNID: EventNID;
  local: boolean;
  forgotten: boolean;
}

const JOIN = MembershipState.join;

/**
 * membership on Cosmos DB. The truth is `m|<user NID>` in the room's partition `room|<NID>`, so a room's member
 * lists are single-partition queries. Each user's partition `user|<NID>` mirrors (room, membership, forgotten)
 * as `rm|<room NID>`, so "rooms of a user" is a single-partition query too, never a scan of every room. The room
 * document is written first and the mirror after (in appendEvent's bulk writes, both at once, before the call's
 * commit point); every update rewrites the mirror, so a crash between the two is repaired by the next change (and,
 * inside appendEvent, by the retry of the interrupted call). The one exception is a change by the process that
 * wrote both last, found untouched since, which leaves the mirror as it is (see `mirrored`).
 */
@injectable()
export class CosmosMembershipTable implements MembershipTable {
  /**
   * What a membership document keeps of its user and never changes once written (the user ID, whether local), by
   * (room, user) as this process last read it; null: there was no document. An upsert after a read for update
   * needs no read of its own.
   */
  private readonly fixed = new Lru<string, Pick<MembershipDoc, 'userID' | 'local'> | null>(50_000);

  /**
   * By (room, user): the membership and event this process last committed with its mirror written (see `written`
   * in membershipDocs). A read for update that finds the document still so, untouched since (same event, not
   * forgotten), marks it `unchanged`: a change that leaves the mirror as it is (a profile change, join over join)
   * then need not write it again. Any other writer of the document writes its event's NID into it.
   */
  private readonly mirrored = new Lru<string, string>(50_000);
  /** Marks of reads whose call may never write (a duplicate, a refusal): bounded like the rest. */
  private readonly unchanged = new Lru<string, true>(50_000);

  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private remember(roomNID: number, target: number, doc: MembershipDoc | undefined): void {
    this.fixed.set(`${roomNID}|${target}`, doc ? { userID: doc.userID, local: doc.local } : null);
  }

  private ref(roomNID: number, target: number) {
    return { id: `m|${target}`, pk: this.conn.pk('room', roomNID) };
  }

  private mirrorDoc(doc: Pick<MembershipDoc, 'room' | 'target' | 'membership' | 'forgotten'>) {
    return {
      id: `rm|${doc.room}`, pk: this.conn.pk('user', doc.target), k: 'user_room',
      room: doc.room, target: doc.target, membership: doc.membership, forgotten: doc.forgotten,
    };
  }

  private async mirror(doc: Pick<MembershipDoc, 'room' | 'target' | 'membership' | 'forgotten'>): Promise<void> {
    await this.conn.requests.upsert('membership.mirror', this.mirrorDoc(doc));
  }

  private read(roomNID: number, target: number) {
    const { id, pk } = this.ref(roomNID, target);
    return this.conn.requests.read<MembershipDoc>('membership.read', id, pk);
  }

  async insertMembership(_tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID, localTarget: boolean): Promise<void> {
    const userDoc = await this.conn.requests.read<{ s: string }>('membership.insert', 'skn', this.conn.pk('skn', targetUserNID));
    const doc: MembershipDoc = {
      room: roomNID, target: targetUserNID, userID: userDoc?.s ?? null, sender: 0 as EventStateKeyNID,
      membership: MembershipState.leaveOrBan, eventNID: 0 as EventNID, local: localTarget, forgotten: false,
    };
    if (await this.conn.requests.create('membership.insert', { ...this.ref(roomNID, targetUserNID), k: 'membership', ...doc })) {
      await this.mirror(doc);
    }
  }

  async bulkSelectMembershipsForUpdate(_tx: Tx, roomNID: RoomNID, targetUserNIDs: readonly EventStateKeyNID[]): Promise<Map<EventStateKeyNID, MembershipRow>> {
    const out = new Map<EventStateKeyNID, MembershipRow>();
    const targets = unique(targetUserNIDs);
    const docs = await this.conn.requests.readMany<MembershipDoc>('membership.read', targets.map((t) => this.ref(roomNID, t)));
    targets.forEach((t, i) => {
      const doc = docs[i];
      this.remember(roomNID, t, doc);
      const key = `${roomNID}|${t}`;
      if (doc && !doc.forgotten && this.mirrored.get(key) === `${doc.membership}|${doc.eventNID}`) this.unchanged.set(key, true);
      else this.mirrored.delete(key);
      if (doc) out.set(t, { membership: doc.membership, eventNID: doc.eventNID });
    });
    return out;
  }

  /**
   * The mirrors of these writes in their users' partitions: what a write makes of them needs no read. With
   * `skipUnchanged`, those the write leaves as they are (see `mirrored`) are left out.
   */
  membershipMirrors(roomNID: RoomNID, writes: readonly MembershipWrite[], skipUnchanged = false): Doc[] {
    return [...new Map(writes.map((w) => [w.targetUserNID, w])).values()].filter((w) => {
      const key = `${roomNID}|${w.targetUserNID}`;
      const same = skipUnchanged && this.unchanged.get(key) === true && this.mirrored.get(key)?.startsWith(`${w.membership}|`) === true;
      this.unchanged.delete(key);
      return !same;
    }).map((w) => this.mirrorDoc({ room: roomNID, target: w.targetUserNID, membership: w.membership, forgotten: false }));
  }

  /**
   * The documents for these writes, and their users' mirrors: in bulk, what the documents keep of their users, from
   * what this process read (see `fixed`) or else read together. The last write of a user wins. `written` records
   * them as this process's once they are.
   */
  async membershipDocs(roomNID: RoomNID, writes: readonly MembershipWrite[]): Promise<{ docs: Doc[]; mirrors: Doc[]; written: () => void }> {
    const rows = [...new Map(writes.map((w) => [w.targetUserNID, w])).values()];
    if (rows.length === 0) return { docs: [], mirrors: [], written: () => {} };
    const r = this.conn.requests;
    const known = rows.map((w) => this.fixed.get(`${roomNID}|${w.targetUserNID}`));
    const unread = rows.filter((_, i) => known[i] === undefined);
    const unnamed = rows.filter((w, i) => !known[i]?.userID && !this.conn.stateKeyNames.get(w.targetUserNID));
    const [users, existing] = await Promise.all([
      r.readMany<{ s: string }>('membership.insert', unnamed.map((w) => ({ id: 'skn', pk: this.conn.pk('skn', w.targetUserNID) }))),
      r.readMany<MembershipDoc>('membership.read', unread.map((w) => this.ref(roomNID, w.targetUserNID))),
    ]);
    const names = new Map(unnamed.map((w, i) => [w.targetUserNID, users[i]?.s]));
    const read = new Map(unread.map((w, i) => [w.targetUserNID, existing[i]]));
    const docs = rows.map((w, i): MembershipDoc => {
      const had = known[i] !== undefined ? known[i] : read.get(w.targetUserNID);
      return {
        room: roomNID, target: w.targetUserNID, userID: had?.userID ?? this.conn.stateKeyNames.get(w.targetUserNID) ?? names.get(w.targetUserNID) ?? null,
        sender: w.senderUserNID, membership: w.membership, eventNID: w.eventNID, local: had?.local ?? w.targetLocal, forgotten: false,
      };
    });
    return {
      docs: docs.map((d) => ({ ...this.ref(roomNID, d.target), k: 'membership', ...d })),
      mirrors: this.membershipMirrors(roomNID, writes),
      written: () => {
        for (const d of docs) {
          this.remember(roomNID, d.target, d);
          this.mirrored.set(`${roomNID}|${d.target}`, `${d.membership}|${d.eventNID}`);
        }
      },
    };
  }

  /**
   * Every membership document and every mirror, sent together (outside the input path, whose room commit carries the
   * documents; see membershipDocs).
   */
  async bulkUpsertMemberships(_tx: Tx, roomNID: RoomNID, writes: readonly MembershipWrite[]): Promise<void> {
    const { docs, mirrors, written } = await this.membershipDocs(roomNID, writes);
    if (docs.length === 0) return;
    await Promise.all([this.conn.requests.upsertMany('membership.update', docs), this.conn.requests.upsertMany('membership.mirror', mirrors)]);
    written();
  }

  async selectMembershipForUpdate(tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID): Promise<MembershipState> {
    return (await this.selectMembershipFromRoomAndTarget(tx, roomNID, targetUserNID)).membership;
  }

  async selectMembershipFromRoomAndTarget(_tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID) {
    const doc = await this.read(roomNID, targetUserNID);
    if (!doc) throw notFound('membership of user NID', `${targetUserNID} in room NID ${roomNID}`);
    return { eventNID: doc.eventNID, membership: doc.membership, forgotten: doc.forgotten };
  }

  private async eventNIDs(roomNID: RoomNID, localOnly: boolean, membership?: MembershipState): Promise<EventNID[]> {
    const rows = await this.conn.requests.query<{ eventNID: EventNID }>('membership.selectFromRoom', this.conn.pk('room', roomNID),
      `SELECT c.eventNID FROM c WHERE c.pk = @pk AND c.k = 'membership' AND c.forgotten = false AND c.eventNID != 0
        AND (c.local = true OR @localOnly = false) AND (@membership = 0 OR c.membership = @membership)`,
      [{ name: '@localOnly', value: localOnly }, { name: '@membership', value: membership ?? 0 }]);
    return rows.map((r) => r.eventNID).sort((a, b) => a - b);
  }

  selectMembershipsFromRoom(_tx: Tx, roomNID: RoomNID, localOnly: boolean): Promise<EventNID[]> {
    return this.eventNIDs(roomNID, localOnly);
  }

  selectMembershipsFromRoomAndMembership(_tx: Tx, roomNID: RoomNID, membership: MembershipState, localOnly: boolean): Promise<EventNID[]> {
    return this.eventNIDs(roomNID, localOnly, membership);
  }

  async updateMembership(
    _tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID, senderUserNID: EventStateKeyNID,
    membership: MembershipState, eventNID: EventNID, forgotten: boolean,
  ): Promise<boolean> {
    const { id, pk } = this.ref(roomNID, targetUserNID);
    const updated = await this.conn.requests.patch<MembershipDoc>('membership.update', id, pk, [
      { op: 'set', path: '/sender', value: senderUserNID },
      { op: 'set', path: '/membership', value: membership },
      { op: 'set', path: '/eventNID', value: eventNID },
      { op: 'set', path: '/forgotten', value: forgotten },
    ]);
    if (!updated) return false;
    await this.mirror(updated);
    return true;
  }

  async selectRoomsWithMembership(_tx: Tx, userNID: EventStateKeyNID, membership: MembershipState): Promise<RoomNID[]> {
    const rows = await this.conn.requests.query<{ room: RoomNID }>('membership.roomsOfUser', this.conn.pk('user', userNID),
      "SELECT c.room FROM c WHERE c.pk = @pk AND c.k = 'user_room' AND c.membership = @m AND c.forgotten = false",
      [{ name: '@m', value: membership }]);
    return rows.map((r) => r.room).sort((a, b) => a - b);
  }

  private async joinedUserIDs(roomNID: number, search: string): Promise<{ target: EventStateKeyNID; userID: string | null; local: boolean }[]> {
    return this.conn.requests.query('membership.joined', this.conn.pk('room', roomNID),
      `SELECT c.target, c.userID, c.local FROM c WHERE c.pk = @pk AND c.k = 'membership' AND c.membership = ${JOIN}
        AND c.forgotten = false AND (@search = '' OR CONTAINS(c.userID, @search))`,
      [{ name: '@search', value: search }]);
  }

  async selectJoinedUsersSetForRooms(_tx: Tx, roomNIDs: readonly RoomNID[], userNIDs?: readonly EventStateKeyNID[], localOnly = false): Promise<Map<EventStateKeyNID, number>> {
    const counts = new Map<EventStateKeyNID, number>();
    if (userNIDs?.length === 0) return counts;
    const users = userNIDs === undefined ? undefined : new Set(userNIDs);
    const perRoom = await mapLimit(unique(roomNIDs), READ_CONCURRENCY, (room) => this.joinedUserIDs(room, ''));
    for (const rows of perRoom) {
      for (const r of rows) {
        if ((users && !users.has(r.target)) || (localOnly && !r.local)) continue;
        counts.set(r.target, (counts.get(r.target) ?? 0) + 1);
      }
    }
    return counts;
  }

  /** One single-partition query per user, in that user's mirror partition. */
  async selectJoinedUsers(_tx: Tx, userNIDs: readonly EventStateKeyNID[]): Promise<EventStateKeyNID[]> {
    const found = await mapLimit(unique(userNIDs), READ_CONCURRENCY, async (user) => {
      const rows = await this.conn.requests.query('membership.joinedUsers', this.conn.pk('user', user),
        `SELECT TOP 1 c.room FROM c WHERE c.pk = @pk AND c.k = 'user_room' AND c.membership > ${MembershipState.leaveOrBan}`);
      return rows.length > 0 ? user : undefined;
    });
    return found.filter((u): u is EventStateKeyNID => u !== undefined).sort((a, b) => a - b);
  }

  async selectRoomsWithLocalJoins(tx: Tx, roomNIDs: readonly RoomNID[]): Promise<Set<RoomNID>> {
    const rooms = unique(roomNIDs);
    const joined = await mapLimit(rooms, READ_CONCURRENCY, (room) => this.selectLocalServerInRoom(tx, room));
    return new Set(rooms.filter((_, i) => joined[i]));
  }

  /** The room's document first, then the user's mirror (a crash between leaves a mirror the next change rewrites). */
  async deleteMembership(_tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID): Promise<void> {
    const { id, pk } = this.ref(roomNID, targetUserNID);
    await this.conn.requests.delete('membership.delete', id, pk);
    await this.conn.requests.delete('membership.deleteMirror', `rm|${roomNID}`, this.conn.pk('user', targetUserNID));
  }

  async selectKnownUsers(_tx: Tx, userNID: EventStateKeyNID, search: string, limit: number): Promise<string[]> {
    // The rooms the user is joined to (forgotten or not, as the reference does), then their joined members.
    const rooms = await this.conn.requests.query<{ room: RoomNID }>('membership.knownUsers', this.conn.pk('user', userNID),
      `SELECT c.room FROM c WHERE c.pk = @pk AND c.k = 'user_room' AND c.membership = ${JOIN}`);
    const members = await mapLimit(rooms.map((r) => r.room), READ_CONCURRENCY, (room) => this.joinedUserIDs(room, search));
    const ids = new Set<string>();
    for (const rows of members) for (const r of rows) if (r.userID !== null && r.userID.includes(search)) ids.add(r.userID);
    return [...ids].sort(codePointCompare).slice(0, Math.max(0, Math.trunc(limit)));
  }

  async updateForgetMembership(_tx: Tx, roomNID: RoomNID, targetUserNID: EventStateKeyNID, forget: boolean): Promise<void> {
    const { id, pk } = this.ref(roomNID, targetUserNID);
    const updated = await this.conn.requests.patch<MembershipDoc>('membership.forget', id, pk, [{ op: 'set', path: '/forgotten', value: forget }]);
    if (updated) await this.mirror(updated);
  }

  async selectLocalServerInRoom(_tx: Tx, roomNID: RoomNID): Promise<boolean> {
    const rows = await this.conn.requests.query('membership.localServerInRoom', this.conn.pk('room', roomNID),
      `SELECT TOP 1 c.target FROM c WHERE c.pk = @pk AND c.k = 'membership' AND c.membership = ${JOIN} AND c.local = true`);
    return rows.length > 0;
  }

  async selectServerInRoom(_tx: Tx, roomNID: RoomNID, serverName: string): Promise<boolean> {
    const rows = await this.conn.requests.query('membership.serverInRoom', this.conn.pk('room', roomNID),
      `SELECT TOP 1 c.target FROM c WHERE c.pk = @pk AND c.k = 'membership' AND c.membership = ${JOIN} AND ENDSWITH(c.userID, @suffix)`,
      [{ name: '@suffix', value: `:${serverName}` }]);
    return rows.length > 0;
  }
}

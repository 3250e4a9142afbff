import { MembershipState } from '../../types/membership.js';
import type { EventNID, EventStateKeyNID, RoomNID } from '../../types/nids.js';
import { asEventNID } from '../../types/nids.js';
import { checkRoomEvent, type RoomEvent } from '../../types/event.js';
import { checkBoolean, checkEventID, checkUserID } from '../../types/input.js';
import { NotFoundError } from '../../types/errors.js';
import type { RoomserverTables, Tx } from '../tables/index.js';

/** Resolves a user ID to its state key NID inside the updater's transaction. */
export type UserNIDResolver = (tx: Tx, userID: string) => Promise<EventStateKeyNID>;

/**
 * Moves one user's membership of one room between invite, join, leave (or ban) and knock, retiring invites as it
 * goes. It reads the membership once, holding the row for its transaction; its predicates answer from that read.
 */
export class MembershipUpdater {
  private constructor(
    private readonly tx: Tx,
    private readonly tables: RoomserverTables,
    private readonly userNID: UserNIDResolver,
    readonly roomNID: RoomNID,
    readonly targetUserNID: EventStateKeyNID,
    private membership: MembershipState,
  ) {}

  static async open(
    tx: Tx, tables: RoomserverTables, userNID: UserNIDResolver, roomNID: RoomNID, targetUserNID: EventStateKeyNID, local: boolean,
  ): Promise<MembershipUpdater> {
    await tables.membership.insertMembership(tx, roomNID, targetUserNID, local);
    const membership = await tables.membership.selectMembershipForUpdate(tx, roomNID, targetUserNID);
    return new MembershipUpdater(tx, tables, userNID, roomNID, targetUserNID, membership);
  }

  isInvite(): boolean { return this.membership === MembershipState.invite; }
  isJoin(): boolean { return this.membership === MembershipState.join; }
  isLeave(): boolean { return this.membership === MembershipState.leaveOrBan; }
  isKnock(): boolean { return this.membership === MembershipState.knock; }

  /** Stores the invite; returns whether it was new. The membership keeps its previous event (0 if none). */
  async setToInvite(invite: RoomEvent): Promise<boolean> {
    checkRoomEvent(invite);
    const senderNID = await this.userNID(this.tx, invite.sender);
    const inserted = await this.tables.invites.insertInviteEvent(this.tx, {
      inviteEventID: invite.eventID, roomNID: this.roomNID, targetUserNID: this.targetUserNID,
      senderUserNID: senderNID, inviteEventJSON: invite.json,
    });
    if (!this.isInvite()) {
      const current = await this.tables.membership.selectMembershipFromRoomAndTarget(this.tx, this.roomNID, this.targetUserNID);
      await this.set(senderNID, MembershipState.invite, current.eventNID);
    }
    return inserted;
  }

  /**
   * Marks the user joined by `eventID`, retiring their invites unless this only updates an existing join (a
   * profile change). Returns the retired invite IDs.
   */
  async setToJoin(senderUserID: string, eventID: string, isUpdate: boolean): Promise<string[]> {
    checkUserID('sender user ID', senderUserID);
    checkEventID('event ID', eventID);
    checkBoolean('isUpdate', isUpdate);
    const retired = isUpdate ? [] : await this.tables.invites.updateInviteRetired(this.tx, this.roomNID, this.targetUserNID);
    if (!this.isJoin() || isUpdate) {
      await this.set(await this.userNID(this.tx, senderUserID), MembershipState.join, await this.eventNID(eventID));
    }
    return retired;
  }

  /** Marks the user gone (leave, kick or ban) by `eventID`; always retires invites. Returns their IDs. */
  async setToLeave(senderUserID: string, eventID: string): Promise<string[]> {
    checkUserID('sender user ID', senderUserID);
    checkEventID('event ID', eventID);
    const retired = await this.tables.invites.updateInviteRetired(this.tx, this.roomNID, this.targetUserNID);
    if (!this.isLeave()) {
      await this.set(await this.userNID(this.tx, senderUserID), MembershipState.leaveOrBan, await this.eventNID(eventID));
    }
    return retired;
  }

  /** Marks the user knocking. Returns false: a knock creates no invite. */
  async setToKnock(knock: RoomEvent): Promise<boolean> {
    checkRoomEvent(knock);
    if (!this.isKnock()) {
      await this.set(await this.userNID(this.tx, knock.sender), MembershipState.knock, await this.eventNID(knock.eventID));
    }
    return false;
  }

  /**
   * Deletes the user's membership of the room, retiring their invites first (Dendrite's updater Delete): the user is
   * then as if never seen in the room. Returns the retired invite IDs.
   */
  async delete(): Promise<string[]> {
    const retired = await this.tables.invites.updateInviteRetired(this.tx, this.roomNID, this.targetUserNID);
    await this.tables.membership.deleteMembership(this.tx, this.roomNID, this.targetUserNID);
    this.membership = MembershipState.leaveOrBan;
    return retired;
  }

  private async eventNID(eventID: string): Promise<EventNID> {
    const nids = await this.tables.events.bulkSelectEventNID(this.tx, [eventID]);
    const nid = nids.get(eventID);
    if (nid === undefined) throw new NotFoundError(`membership event ${eventID} is not stored`);
    return asEventNID(nid);
  }

  private async set(senderNID: EventStateKeyNID, membership: MembershipState, eventNID: EventNID): Promise<void> {
    await this.tables.membership.updateMembership(this.tx, this.roomNID, this.targetUserNID, senderNID, membership, eventNID, false);
    this.membership = membership;
  }
}

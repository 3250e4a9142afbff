import type { RoomEvent } from '../../types/event.js';
import { MembershipState } from '../../types/membership.js';
import { asEventStateKeyNID, type EventNID, type EventStateKeyNID } from '../../types/nids.js';
import type { MemberChange, NewInvite, RoomPlan, Writes } from './append-plan.js';

/** The membership a member event sets, if its content names one (undefined: not a membership change). */
export function membershipOf(event: RoomEvent, isRejected: boolean): string | undefined {
  if (event.type !== 'm.room.member' || event.stateKey === undefined || isRejected) return undefined;
  const m = event.content.membership;
  return typeof m === 'string' ? m : undefined;
}

/**
 * Moves a user's membership as the current state's member event for them says, as MembershipUpdater would,
 * recording the writes and invite changes (the user's row must have been read: `room.memberships` has the user).
 * `change` undefined: the user's member event left the current state with nothing in its place (a state
 * resolution dropped it): the user is no longer in the room.
 */
export function applyMembership(
  room: RoomPlan, target: EventStateKeyNID, targetLocal: boolean, change: MemberChange | undefined, writes: Writes, resultIndex: number,
  storedInvites: Set<string>,
): void {
  const membership = change ? membershipOf(change.event, false) : 'leave';
  if (membership === undefined) return;
  const senderUserNID = change?.senderUserNID ?? asEventStateKeyNID(0);
  let current = room.memberships.get(target);
  const set = (state: MembershipState, nid: EventNID) => {
    current = { membership: state, eventNID: nid };
    room.memberships.set(target, current);
    room.membershipWrites.set(target, { targetUserNID: target, targetLocal, senderUserNID, membership: state, eventNID: nid });
  };
  if (!current) {
    // A first membership event creates the row (leave, no event) before anything else, whatever it says.
    current = { membership: MembershipState.leaveOrBan, eventNID: 0 as EventNID };
    room.memberships.set(target, current);
    room.membershipWrites.set(target, {
      targetUserNID: target, targetLocal, senderUserNID: asEventStateKeyNID(0), membership: MembershipState.leaveOrBan, eventNID: current.eventNID,
    });
  }
  const active = room.invites.get(target) ?? [];
  const retire = () => {
    for (const id of active) {
      const fresh = writes.newInviteByID.get(id);
      if (fresh) fresh.retired = true;
      else writes.retiredInvites.push({ roomNID: room.roomNID, targetUserNID: target, inviteEventID: id });
    }
    writes.retiredBy.set(resultIndex, [...(writes.retiredBy.get(resultIndex) ?? []), ...active]);
    room.invites.set(target, []);
  };
  const eventNID = change?.eventNID ?? (0 as EventNID);
  switch (membership) {
    case 'invite': {
      const event = change!.event;
      // An invite ID stored already (by an earlier call, or earlier in this one) is left as it is.
      if (!storedInvites.has(event.eventID)) {
        const invite: NewInvite = { inviteEventID: event.eventID, roomNID: room.roomNID, targetUserNID: target, senderUserNID, inviteEventJSON: event.json, retired: false };
        storedInvites.add(event.eventID);
        writes.newInvites.push(invite);
        writes.newInviteByID.set(invite.inviteEventID, invite);
        room.invites.set(target, [...active, invite.inviteEventID]);
      }
      if (current.membership !== MembershipState.invite) set(MembershipState.invite, current.eventNID);
      return;
    }
    case 'join':
      // A join over a join is a profile change: it retires no invite.
      if (current.membership !== MembershipState.join) retire();
      set(MembershipState.join, eventNID);
      return;
    case 'leave':
    case 'ban':
      retire();
      if (current.membership !== MembershipState.leaveOrBan) set(MembershipState.leaveOrBan, eventNID);
      return;
    case 'knock':
      if (current.membership !== MembershipState.knock) set(MembershipState.knock, eventNID);
      return;
    default:
  }
}

/** Membership states as stored: leave and ban share a value, as in the reference. */
export const MembershipState = {
  leaveOrBan: 1,
  invite: 2,
  join: 3,
  knock: 4,
} as const;
export type MembershipState = (typeof MembershipState)[keyof typeof MembershipState];

export const isMembershipState = (n: number): n is MembershipState => n >= 1 && n <= 4 && Number.isInteger(n);

/** Maps the `membership` string of an m.room.member event, or of a query, to the stored state. */
export function membershipStateFromString(membership: string): MembershipState | undefined {
  switch (membership) {
    case 'join': return MembershipState.join;
    case 'invite': return MembershipState.invite;
    case 'leave':
    case 'ban': return MembershipState.leaveOrBan;
    case 'knock': return MembershipState.knock;
    default: return undefined;
  }
}

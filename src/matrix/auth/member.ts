import crypto from 'node:crypto';
import type { RoomEvent } from '../../types/event.js';
import { canonicalJSON } from '../canonical-json.js';
import type { RoomVersionRules } from '../room-versions.js';
import type { PowerLevels } from './power-levels.js';
import {
  ALLOWED, type AuthResult, type AuthState, isObject, JOIN_RULES, joinRuleOf, MEMBER, membershipOf, rejected, stringField, THIRD_PARTY_INVITE,
} from './views.js';

/** What the membership rules read besides the event: the state it is checked against, resolved once. */
export interface MemberContext {
  readonly rules: RoomVersionRules;
  readonly state: AuthState;
  readonly create: RoomEvent;
  readonly powerLevels: PowerLevels;
}

/**
 * The m.room.member rules. `join_authorised_via_users_server` is read but the signature it demands (the
 * authorising user's server must have signed the event) is not checked here: signatures are the homeserver's to
 * verify before it asks the auth rules.
 */
export function checkMemberEvent(ctx: MemberContext, event: RoomEvent): AuthResult {
  const membership = stringField(event.content, 'membership');
  if (event.stateKey === undefined || membership === undefined) return rejected('a member event needs a state key and content.membership');
  const target = event.stateKey;
  const { rules, state, powerLevels } = ctx;
  const senderMembership = membershipOf(state(MEMBER, event.sender));
  const targetMembership = membershipOf(state(MEMBER, target));
  const senderLevel = powerLevels.userLevel(event.sender);
  const targetLevel = powerLevels.userLevel(target);
  const joinRule = joinRuleOf(state(JOIN_RULES, ''));

  switch (membership) {
    case 'join':
      return checkJoin(ctx, event, joinRule, targetMembership);
    case 'invite':
      if (event.content.third_party_invite !== undefined) return checkThirdPartyInvite(state, event, targetMembership);
      if (senderMembership !== 'join') return rejected(`the inviter's membership is ${senderMembership}, not join`);
      if (targetMembership === 'join' || targetMembership === 'ban') return rejected(`the invitee's membership is ${targetMembership}`);
      return senderLevel >= powerLevels.invite ? ALLOWED : rejected(`the sender's level ${senderLevel} is below the invite level ${powerLevels.invite}`);
    case 'leave':
      if (event.sender === target) {
        const canLeave = targetMembership === 'invite' || targetMembership === 'join' || (rules.auth.knocking && targetMembership === 'knock');
        return canLeave ? ALLOWED : rejected(`a user whose membership is ${targetMembership} cannot leave`);
      }
      if (senderMembership !== 'join') return rejected(`the kicker's membership is ${senderMembership}, not join`);
      if (targetMembership === 'ban' && senderLevel < powerLevels.ban) return rejected('unbanning needs the ban level');
      return senderLevel >= powerLevels.kick && targetLevel < senderLevel ? ALLOWED
        : rejected(`kicking needs the kick level (${powerLevels.kick}) and a level above the target's (${targetLevel}); the sender has ${senderLevel}`);
    case 'ban':
      if (senderMembership !== 'join') return rejected(`the banner's membership is ${senderMembership}, not join`);
      return senderLevel >= powerLevels.ban && targetLevel < senderLevel ? ALLOWED
        : rejected(`banning needs the ban level (${powerLevels.ban}) and a level above the target's (${targetLevel}); the sender has ${senderLevel}`);
    case 'knock':
      if (!rules.auth.knocking) break;
      if (joinRule !== 'knock' && !(rules.auth.knockRestrictedJoins && joinRule === 'knock_restricted')) {
        return rejected(`the join rule ${joinRule} does not allow knocking`);
      }
      if (event.sender !== target) return rejected('a user can knock only for themselves');
      return senderMembership === 'ban' || senderMembership === 'invite' || senderMembership === 'join'
        ? rejected(`a user whose membership is ${senderMembership} cannot knock`) : ALLOWED;
  }
  return rejected(`unknown membership ${membership} in room version ${rules.id}`);
}

function checkJoin(ctx: MemberContext, event: RoomEvent, joinRule: string, membership: string): AuthResult {
  const { rules, create, state, powerLevels } = ctx;
  // The creator's own first join, right after the create event. Before v11 the creator is content.creator, from
  // v11 the create event's sender (v12's additional creators join like anyone else).
  const creator = rules.createContentHasCreator ? stringField(create.content, 'creator') : create.sender;
  if (event.prevEventIDs.length === 1 && event.prevEventIDs[0] === create.eventID && event.stateKey === creator) return ALLOWED;
  if (event.sender !== event.stateKey) return rejected('a user can join only themselves');
  if (membership === 'ban') return rejected('the user is banned');
  if (joinRule === 'invite' || (rules.auth.knocking && joinRule === 'knock')) {
    return membership === 'invite' || membership === 'join' ? ALLOWED : rejected(`the join rule is ${joinRule} and the user is not invited`);
  }
  if ((rules.auth.restrictedJoins && joinRule === 'restricted') || (rules.auth.knockRestrictedJoins && joinRule === 'knock_restricted')) {
    if (membership === 'join' || membership === 'invite') return ALLOWED;
    const authoriser = stringField(event.content, 'join_authorised_via_users_server');
    if (authoriser === undefined) return rejected(`the join rule is ${joinRule} and no user authorised the join`);
    // "A user with sufficient permission to invite other users": the invite level, and being joined, which
    // inviting needs too.
    if (membershipOf(state(MEMBER, authoriser)) !== 'join') return rejected(`the authorising user ${authoriser} is not joined`);
    const level = powerLevels.userLevel(authoriser);
    return level >= powerLevels.invite ? ALLOWED : rejected(`the authorising user ${authoriser} is below the invite level`);
  }
  return joinRule === 'public' ? ALLOWED : rejected(`the join rule ${joinRule} does not allow joining`);
}

/**
 * An invite for a third-party identifier. Checked: the target is not banned; `signed` has `mxid` (the target) and
 * `token`; the room has an m.room.third_party_invite under that token, sent by this event's sender; and one
 * ed25519 signature in `signed` verifies, over `signed`'s canonical JSON, against a public key of that event
 * (`public_key`, or `public_keys[].public_key`). Not checked: who signed (the signature's server and key ID are not
 * matched to anything, as the rule asks only that a signature matches a key), and `key_validity_url` is not
 * fetched (the rule does not ask it; a homeserver may).
 */
function checkThirdPartyInvite(state: AuthState, event: RoomEvent, targetMembership: string): AuthResult {
  if (targetMembership === 'ban') return rejected('the invitee is banned');
  const tpi = event.content.third_party_invite;
  const signed = isObject(tpi) ? tpi.signed : undefined;
  if (!isObject(signed)) return rejected('third_party_invite has no signed object');
  const mxid = signed.mxid;
  const token = signed.token;
  if (typeof mxid !== 'string' || typeof token !== 'string') return rejected('third_party_invite.signed needs mxid and token');
  if (mxid !== event.stateKey) return rejected('third_party_invite.signed.mxid is not the invitee');
  const invite = state(THIRD_PARTY_INVITE, token);
  if (!invite) return rejected(`no m.room.third_party_invite with the token ${token}`);
  if (invite.sender !== event.sender) return rejected('the m.room.third_party_invite was sent by someone else');
  return signedByInviteKey(signed, invite.content) ? ALLOWED : rejected('no signature in third_party_invite.signed matches a key of the m.room.third_party_invite');
}

function publicKeysOf(content: Readonly<Record<string, unknown>>): string[] {
  const keys: string[] = [];
  if (typeof content.public_key === 'string') keys.push(content.public_key);
  if (Array.isArray(content.public_keys)) {
    for (const k of content.public_keys) if (isObject(k) && typeof k.public_key === 'string') keys.push(k.public_key);
  }
  return keys;
}

/** Unpadded base64, standard or URL-safe (the spec uses the former; identity servers have sent both). */
function base64Bytes(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(text)) return undefined;
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

function ed25519Key(raw: Buffer): crypto.KeyObject | undefined {
  if (raw.length !== 32) return undefined;
  try {
    return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
  } catch {
    return undefined;
  }
}

function signedByInviteKey(signed: Record<string, unknown>, inviteContent: Readonly<Record<string, unknown>>): boolean {
  const signatures = signed.signatures;
  if (!isObject(signatures)) return false;
  const { signatures: _omitted, unsigned: _unsigned, ...body } = signed;
  let message: Buffer;
  try {
    message = Buffer.from(canonicalJSON(body, { lenientNumbers: true }), 'utf8');
  } catch {
    return false;
  }
  const keys = publicKeysOf(inviteContent).map((k) => base64Bytes(k)).flatMap((raw) => (raw ? [ed25519Key(raw)] : [])).filter((k) => k !== undefined);
  for (const byKey of Object.values(signatures)) {
    if (!isObject(byKey)) continue;
    for (const sig of Object.values(byKey)) {
      const bytes = typeof sig === 'string' ? base64Bytes(sig) : undefined;
      if (bytes?.length !== 64) continue;
      if (keys.some((key) => crypto.verify(null, message, key, bytes))) return true;
    }
  }
  return false;
}

import { InvalidInputError } from '../types/errors.js';
import { preview } from '../types/input.js';

/**
 * Room versions 1 to 12: every way the rules for events differ between versions, in one registry. Nothing else in
 * this package branches on a version number: it asks the version's rules.
 *
 * Sources: the Matrix specification's room version pages (rooms/v1 ... v12) and the server-server API.
 */
export interface RoomVersionRules {
  readonly id: string;
  /**
   * How an event's ID is known: `stated` (v1, v2: `$local:server`, carried in the PDU's `event_id`), or the
   * reference hash in unpadded standard base64 (v3) or unpadded URL-safe base64 (v4 and later), after `$`.
   */
  readonly eventID: 'stated' | 'base64' | 'base64url';
  /** prev_events and auth_events: `[id, {sha256}]` pairs (v1, v2) or plain IDs (v3 and later). */
  readonly eventReferences: 'pairs' | 'ids';
  /** Whether canonical JSON's number rules (integers within ±(2^53 - 1)) are enforced: from v6. */
  readonly enforcesCanonicalNumbers: boolean;
  /** Where a redaction names its target: top-level `redacts` before v11, `content.redacts` from v11. */
  readonly redactsIn: 'top-level' | 'content';
  /** v12: the create event has no `room_id`; the room ID is `!` + its reference hash (URL-safe base64). */
  readonly roomIDFromCreateEvent: boolean;
  /** The create event's content names the `creator` (before v11; from v11 the creator is its sender, MSC2175). */
  readonly createContentHasCreator: boolean;
  readonly redaction: RedactionRules;
  /** The authorization rules' differences. */
  readonly auth: AuthRuleFlags;
  /** The state resolution algorithm: v1 (room v1), v2 (v2 to v11), v2.1 (v12, MSC4297). */
  readonly stateResolution: 'v1' | 'v2' | 'v2.1';
}

/**
 * How the authorization rules changed over the versions. The v12 changes that concern the create event being
 * implied by the room ID (MSC4291) follow `roomIDFromCreateEvent`, and the creator named by the create event's
 * content (v1 to v10) follows `createContentHasCreator`.
 */
export interface AuthRuleFlags {
  /** m.room.aliases is allowed when its state key is the sender's server, whatever the power levels (v1 to v5). */
  readonly specialCaseAliases: boolean;
  /**
   * m.room.redaction is authorised by the redact level or by the redacted event ID's server being the
   * redaction's (v1, v2, where event IDs name a server); from v3 the check moves to the receiving server.
   */
  readonly redactionCheckedByAuthRules: boolean;
  /** Changes to `notifications` in m.room.power_levels are limited like those to `events` (from v6). */
  readonly limitNotificationsPowerLevels: boolean;
  /** The `knock` membership and join rule (from v7). */
  readonly knocking: boolean;
  /** The `restricted` join rule and `join_authorised_via_users_server` (from v8). */
  readonly restrictedJoins: boolean;
  /** The `knock_restricted` join rule (from v10). */
  readonly knockRestrictedJoins: boolean;
  /** Power level values must be JSON integers; before v10 a string holding an integer counts too. */
  readonly integerPowerLevels: boolean;
  /**
   * The room's creators (the create event's sender and its `additional_creators`) have an infinite power level
   * and may not be listed in m.room.power_levels' `users` (v12, MSC4289).
   */
  readonly privilegedCreators: boolean;
}

/** What the redaction algorithm keeps, as it changed over the versions. */
export interface RedactionRules {
  /** m.room.aliases keeps `aliases` (v1 to v5). */
  readonly keepsAliases: boolean;
  /** m.room.join_rules keeps `allow` (from v8, restricted rooms). */
  readonly keepsJoinRulesAllow: boolean;
  /** m.room.member keeps `join_authorised_via_users_server` (from v9). */
  readonly keepsJoinAuthorisedVia: boolean;
  /**
   * The v11 rules (MSC2176, MSC3821, MSC3989): top-level `origin`, `membership` and `prev_state` are no longer
   * kept; m.room.create keeps all its content; m.room.power_levels keeps `invite`; m.room.redaction keeps
   * `redacts`; m.room.member keeps `third_party_invite.signed`.
   */
  readonly updatedRules: boolean;
}

function version(id: number): RoomVersionRules {
  return {
    id: String(id),
    eventID: id <= 2 ? 'stated' : id === 3 ? 'base64' : 'base64url',
    eventReferences: id <= 2 ? 'pairs' : 'ids',
    enforcesCanonicalNumbers: id >= 6,
    redactsIn: id >= 11 ? 'content' : 'top-level',
    roomIDFromCreateEvent: id >= 12,
    createContentHasCreator: id <= 10,
    redaction: {
      keepsAliases: id <= 5,
      keepsJoinRulesAllow: id >= 8,
      keepsJoinAuthorisedVia: id >= 9,
      updatedRules: id >= 11,
    },
    auth: {
      specialCaseAliases: id <= 5,
      redactionCheckedByAuthRules: id <= 2,
      limitNotificationsPowerLevels: id >= 6,
      knocking: id >= 7,
      restrictedJoins: id >= 8,
      knockRestrictedJoins: id >= 10,
      integerPowerLevels: id >= 10,
      privilegedCreators: id >= 12,
    },
    stateResolution: id === 1 ? 'v1' : id <= 11 ? 'v2' : 'v2.1',
  };
}

/** Every room version this store knows, by ID. */
export const ROOM_VERSIONS: ReadonlyMap<string, RoomVersionRules> = new Map(
  Array.from({ length: 12 }, (_, i) => version(i + 1)).map((v) => [v.id, v]),
);

/** The rules of a room version. InvalidInputError, naming it and the known ones, for a version not in the registry. */
export function roomVersionRules(roomVersion: unknown): RoomVersionRules {
  const rules = typeof roomVersion === 'string' ? ROOM_VERSIONS.get(roomVersion) : undefined;
  if (!rules) {
    throw new InvalidInputError(`unknown room version ${preview(roomVersion)}: this store knows room versions ${[...ROOM_VERSIONS.keys()].join(', ')}`);
  }
  return rules;
}

/** The version an m.room.create event's content declares: `room_version`, "1" when absent (the spec's default). */
export function declaredRoomVersion(content: unknown): string {
  const v = (content as { room_version?: unknown } | null)?.room_version;
  if (v === undefined) return '1';
  if (typeof v !== 'string') throw new InvalidInputError(`content.room_version of an m.room.create event must be a string, got ${preview(v)}`);
  return v;
}

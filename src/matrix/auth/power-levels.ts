import type { RoomEvent } from '../../types/event.js';
import type { RoomVersionRules } from '../room-versions.js';
import { ALLOWED, type AuthResult, isObject, isUserID, rejected } from './views.js';

/** The power level properties a change to m.room.power_levels is checked on, one by one. */
const LEVEL_PROPERTIES = ['users_default', 'events_default', 'state_default', 'ban', 'redact', 'kick', 'invite'] as const;

/** The spec's defaults for a property a power levels event leaves out. */
const DEFAULTS = { users_default: 0, events_default: 0, state_default: 50, ban: 50, redact: 50, kick: 50, invite: 0 } as const;

/**
 * A power level as the version reads one: a JSON integer; before v10 also a string that holds one (optional
 * whitespace, sign and leading zeros; early implementations wrote those); before v6, whose events need not be
 * canonical JSON, also a fraction, truncated (50.57 is 50). Anything else is no level.
 */
export function levelValue(rules: RoomVersionRules, value: unknown): number | undefined {
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return value;
    return !rules.enforcesCanonicalNumbers && Number.isFinite(value) ? Math.trunc(value) : undefined;
  }
  if (!rules.auth.integerPowerLevels && typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value)) {
    const n = Number.parseInt(value, 10);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
}

/**
 * The levels of a room, read from its m.room.power_levels event (or the defaults when it has none). Without a
 * power levels event the creators have 100 and everyone else 0; from v12 the creators' level is infinite always.
 */
export class PowerLevels {
  constructor(
    private readonly rules: RoomVersionRules,
    readonly event: RoomEvent | undefined,
    private readonly creators: ReadonlySet<string>,
  ) {}

  private property(name: keyof typeof DEFAULTS): number {
    const v = this.event === undefined ? undefined : levelValue(this.rules, this.event.content[name]);
    if (v !== undefined) return v;
    // Without a power levels event, state events need no power at all (the spec's default for that case).
    return name === 'state_default' && this.event === undefined ? 0 : DEFAULTS[name];
  }

  private entry(map: string, key: string): number | undefined {
    const m = this.event?.content[map];
    return isObject(m) ? levelValue(this.rules, m[key]) : undefined;
  }

  userLevel(userID: string): number {
    if (this.rules.auth.privilegedCreators && this.creators.has(userID)) return Infinity;
    if (this.event === undefined) return this.creators.has(userID) ? 100 : 0;
    return this.entry('users', userID) ?? this.property('users_default');
  }

  /** The level an event of this type needs: `events[type]`, else `state_default` or `events_default`. */
  eventLevel(type: string, isState: boolean): number {
    return this.entry('events', type) ?? this.property(isState ? 'state_default' : 'events_default');
  }

  get ban(): number { return this.property('ban'); }
  get kick(): number { return this.property('kick'); }
  get invite(): number { return this.property('invite'); }
  get redact(): number { return this.property('redact'); }
}

function isLevelMap(rules: RoomVersionRules, value: unknown, keysAreUsers: boolean): boolean {
  if (!isObject(value)) return false;
  return Object.entries(value).every(([k, v]) => levelValue(rules, v) !== undefined && (!keysAreUsers || isUserID(k)));
}

/** The checks of a new m.room.power_levels event's own content (the first part of the spec's power levels rule). */
function checkShape(rules: RoomVersionRules, content: Readonly<Record<string, unknown>>, creators: ReadonlySet<string>): AuthResult {
  if (rules.auth.integerPowerLevels) {
    for (const p of LEVEL_PROPERTIES) {
      if (content[p] !== undefined && !Number.isInteger(content[p])) return rejected(`power levels: ${p} is not an integer`);
    }
    for (const m of ['events', 'notifications']) {
      if (content[m] !== undefined && !isLevelMap(rules, content[m], false)) return rejected(`power levels: ${m} is not an object of integers`);
    }
  }
  // Before v10, a `users` of null reads as none, as gomatrixserverlib reads it: Dendrite wrote such events.
  const users = !rules.auth.integerPowerLevels && content.users === null ? undefined : content.users;
  if (users !== undefined && !isLevelMap(rules, users, true)) {
    return rejected('power levels: users is not an object of user IDs to integer levels');
  }
  if (rules.auth.privilegedCreators && isObject(content.users)) {
    const listed = Object.keys(content.users).find((u) => creators.has(u));
    if (listed !== undefined) return rejected(`power levels: users lists ${listed}, a creator, whose level is infinite and fixed`);
  }
  return ALLOWED;
}

function levelsOf(rules: RoomVersionRules, map: unknown): Map<string, number> {
  const out = new Map<string, number>();
  if (isObject(map)) {
    for (const [k, v] of Object.entries(map)) {
      const level = levelValue(rules, v);
      if (level !== undefined) out.set(k, level);
    }
  }
  return out;
}

/**
 * The power levels rule: a new m.room.power_levels event, sent by `sender` at `senderLevel` in the current levels
 * (`current`, whose event is undefined for the room's first one).
 */
export function checkPowerLevelsEvent(
  rules: RoomVersionRules, event: RoomEvent, current: PowerLevels, senderLevel: number, creators: ReadonlySet<string>,
): AuthResult {
  const shape = checkShape(rules, event.content, creators);
  if (!shape.allowed || current.event === undefined) return shape;
  const oldContent = current.event.content;
  const newContent = event.content;
  const tooHigh = (what: string, level: number | undefined) => level !== undefined && level > senderLevel
    ? rejected(`power levels: ${what} is ${level}, above the sender's ${senderLevel}`) : undefined;

  for (const p of LEVEL_PROPERTIES) {
    const before = levelValue(rules, oldContent[p]);
    const after = levelValue(rules, newContent[p]);
    if (before === after) continue;
    const refusal = tooHigh(`the current ${p}`, before) ?? tooHigh(`the new ${p}`, after);
    if (refusal) return refusal;
  }
  const maps = rules.auth.limitNotificationsPowerLevels ? ['events', 'notifications'] : ['events'];
  for (const m of maps) {
    const before = levelsOf(rules, oldContent[m]);
    const after = levelsOf(rules, newContent[m]);
    for (const key of new Set([...before.keys(), ...after.keys()])) {
      if (before.get(key) === after.get(key)) continue;
      const refusal = tooHigh(`the current ${m}[${key}]`, before.get(key)) ?? tooHigh(`the new ${m}[${key}]`, after.get(key));
      if (refusal) return refusal;
    }
  }
  const beforeUsers = levelsOf(rules, oldContent.users);
  const afterUsers = levelsOf(rules, newContent.users);
  for (const user of new Set([...beforeUsers.keys(), ...afterUsers.keys()])) {
    const before = beforeUsers.get(user);
    const after = afterUsers.get(user);
    if (before === after) continue;
    if (user !== event.sender && before !== undefined && before >= senderLevel) {
      return rejected(`power levels: ${user}'s level ${before} is not below the sender's ${senderLevel}, so the sender cannot change it`);
    }
    const refusal = tooHigh(`the new level of ${user}`, after);
    if (refusal) return refusal;
  }
  return ALLOWED;
}

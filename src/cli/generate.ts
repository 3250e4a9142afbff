/**
 * A synthetic room generator for the `matrix-storage generate` command and the benchmarks.
 *
 * It writes a plausible Matrix room as one linear chain of events (each event's prev_events names the one
 * before), one JSON text per event, in room order:
 *
 *   m.room.create, the creator's join, m.room.power_levels, m.room.join_rules, m.room.history_visibility,
 *   m.room.name, m.room.topic,
 *
 * then a seeded mix of joins (front-loaded: when the state budget allows, almost every member has joined by
 * 60% of the room), leaves and re-joins, profile changes, invites followed later by the invitee's join, kicks
 * and bans by the creator, topic, name and power-level changes, messages from joined users and redactions
 * (about 1% of events).
 *
 * The output depends only on the options: the same options give byte-identical output on every run. Memory
 * is bounded by the number of members (a few typed arrays of one entry per user), not by the number of
 * events: lines are yielded as they are made, and only a small ring of recent messages is kept for redactions.
 *
 * The events are not signed and carry no hashes; event IDs are made-up room v4+ style IDs (base64url of a
 * SHA-256), not reference hashes. That is all the store needs: it never checks signatures.
 */
import { createHash } from 'node:crypto';
import { InvalidInputError } from '../types/errors.js';
import { MAX_ID_BYTES, preview } from '../types/input.js';

export interface GenerateOptions {
  /** Distinct users who join over the room's life, the creator included (default 2000 in the CLI). */
  members: number;
  /** Total events, the initial ones included (default 20000 in the CLI). */
  events: number;
  /** PRNG seed: the same options give byte-identical output. */
  seed: number;
  /** Default "!synthetic-<seed>:<first server name>". */
  roomID?: string;
  /** Servers users live on; default ["example.org", "matrix.org", "remote.net"]; the creator is on the first. */
  serverNames?: string[];
  /** Share of events that are state events, default 0.2 (one in five). */
  stateFraction?: number;
  /** Default "10". */
  roomVersion?: string;
}

export const DEFAULT_SERVER_NAMES: readonly string[] = Object.freeze(['example.org', 'matrix.org', 'remote.net']);

export const GENERATE_DEFAULTS = Object.freeze({
  members: 2000,
  events: 20_000,
  seed: 1,
  stateFraction: 0.2,
  roomVersion: '10',
});

/** create, the creator's join, power_levels, join_rules, history_visibility, name, topic. */
export const INITIAL_EVENTS = 7;
/** Bounds that keep the per-user arrays sane (a few bytes per member) and the counters exact. */
export const MAX_MEMBERS = 10_000_000;
export const MAX_EVENTS = 2_000_000_000;
/** Fraction of the room by which every member has joined (when the state budget allows it). */
const JOIN_HORIZON = 0.65;
/** Redactions as a share of all events (taken from the non-state events). */
const REDACTION_SHARE = 0.01;
/** How many recent messages are remembered as redaction targets. */
const RECENT_MESSAGES = 1024;
/** At most this many moderators (power level 50) besides the creator. */
const MAX_MODERATORS = 6;
const CREATOR = 1;

// ---------------------------------------------------------------------------------------------------------
// Options

function integerOption(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new InvalidInputError(`generate option ${name} must be an integer, got ${preview(value)}`);
  }
  if (value < min || value > max) {
    throw new InvalidInputError(`generate option ${name} must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

const SERVER_NAME = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::[0-9]{1,5})?$/;
const ROOM_VERSION = /^[A-Za-z0-9.-]{1,32}$/;

/**
 * Checks generate options and fills the defaults. Throws InvalidInputError naming the bad option.
 * Options other than those of GenerateOptions are ignored (and left out of the result).
 */
export function validateGenerateOptions(o: Partial<GenerateOptions>): Required<GenerateOptions> {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) {
    throw new InvalidInputError(`generate options must be an object, got ${preview(o)}`);
  }
  const members = integerOption('members', o.members ?? GENERATE_DEFAULTS.members, 1, MAX_MEMBERS);
  const events = integerOption('events', o.events ?? GENERATE_DEFAULTS.events, 1, MAX_EVENTS);
  const minEvents = members + INITIAL_EVENTS - 1;
  if (events < minEvents) {
    throw new InvalidInputError(
      `generate option events must be at least members + ${INITIAL_EVENTS - 1} = ${minEvents} ` +
        `(the ${INITIAL_EVENTS} initial events and one join for each of the other ${members - 1} members), got ${events}`,
    );
  }
  const seed = integerOption('seed', o.seed ?? GENERATE_DEFAULTS.seed, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);

  const stateFraction = o.stateFraction ?? GENERATE_DEFAULTS.stateFraction;
  if (typeof stateFraction !== 'number' || !Number.isFinite(stateFraction) || stateFraction < 0 || stateFraction > 1) {
    throw new InvalidInputError(`generate option stateFraction must be a number between 0 and 1, got ${preview(stateFraction)}`);
  }

  const roomVersion = o.roomVersion ?? GENERATE_DEFAULTS.roomVersion;
  if (typeof roomVersion !== 'string' || !ROOM_VERSION.test(roomVersion)) {
    throw new InvalidInputError(
      `generate option roomVersion must be 1 to 32 letters, digits, dots or dashes, got ${preview(roomVersion)}`,
    );
  }
  if (roomVersion === '1' || roomVersion === '2') {
    throw new InvalidInputError(
      `generate option roomVersion ${roomVersion} is not supported: the generator writes room v3+ events ` +
        `(event IDs without a server name, prev_events and auth_events as plain ID strings)`,
    );
  }

  const serverNamesRaw = o.serverNames ?? DEFAULT_SERVER_NAMES;
  if (!Array.isArray(serverNamesRaw) || serverNamesRaw.length === 0) {
    throw new InvalidInputError(`generate option serverNames must be a non-empty array of server names, got ${preview(serverNamesRaw)}`);
  }
  const serverNames: string[] = [];
  const longestUser = `@user${members}:`;
  for (const [i, name] of (serverNamesRaw as unknown[]).entries()) {
    if (typeof name !== 'string' || !SERVER_NAME.test(name)) {
      throw new InvalidInputError(`generate option serverNames[${i}] must be a server name like "example.org", got ${preview(name)}`);
    }
    if (Buffer.byteLength(longestUser + name, 'utf8') > MAX_ID_BYTES) {
      throw new InvalidInputError(
        `generate option serverNames[${i}] is too long: user IDs on it would exceed ${MAX_ID_BYTES} bytes: ${preview(name)}`,
      );
    }
    if (serverNames.includes(name)) {
      throw new InvalidInputError(`generate option serverNames[${i}] repeats ${preview(name)}`);
    }
    serverNames.push(name);
  }

  const roomID = o.roomID ?? `!synthetic-${seed}:${serverNames[0]}`;
  if (typeof roomID !== 'string' || !roomID.startsWith('!') || roomID.indexOf(':') < 2 || roomID.endsWith(':')) {
    throw new InvalidInputError(`generate option roomID must look like "!opaque:server", got ${preview(roomID)}`);
  }
  if (Buffer.byteLength(roomID, 'utf8') > MAX_ID_BYTES || /[\u0000-\u001f\s]/.test(roomID)) {
    throw new InvalidInputError(
      `generate option roomID must be at most ${MAX_ID_BYTES} bytes without spaces or control characters, got ${preview(roomID)}`,
    );
  }

  return { members, events, seed, roomID, serverNames, stateFraction, roomVersion };
}

/**
 * The number of state events a room with these (validated) options gets: stateFraction of the events, but
 * never fewer than the initial events plus one join for each member other than the creator.
 */
export function plannedStateEvents(o: Pick<GenerateOptions, 'members' | 'events' | 'stateFraction'>): number {
  const wanted = Math.round((o.stateFraction ?? GENERATE_DEFAULTS.stateFraction) * o.events);
  return Math.min(o.events, Math.max(INITIAL_EVENTS + o.members - 1, wanted));
}

// ---------------------------------------------------------------------------------------------------------
// Randomness: sfc32 (a small, fast, well-distributed 128-bit-state generator) seeded from SHA-256.
// Only +, *, bit operations and comparisons are used on its output, so results do not depend on how a
// JavaScript engine implements Math.log or Math.pow.

type Random = () => number;

function sfc32(seedBytes: Buffer): Random {
  let a = seedBytes.readUInt32LE(0);
  let b = seedBytes.readUInt32LE(4);
  let c = seedBytes.readUInt32LE(8);
  let d = seedBytes.readUInt32LE(12);
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 16; i++) next();
  return next;
}

/** murmur3's finaliser: a stateless 32-bit mix, for values derived from a user number (names, servers). */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A set of user numbers with O(1) add, remove and pick-by-position; one Int32Array pair, no objects. */
class UserSet {
  private readonly items: Int32Array;
  private readonly position: Int32Array;
  size = 0;

  constructor(maxUser: number) {
    this.items = new Int32Array(maxUser + 1);
    this.position = new Int32Array(maxUser + 1).fill(-1);
  }

  has(user: number): boolean {
    return this.position[user] !== -1;
  }

  add(user: number): void {
    if (this.has(user)) return;
    this.items[this.size] = user;
    this.position[user] = this.size;
    this.size++;
  }

  delete(user: number): void {
    const p = this.position[user] ?? -1;
    if (p === -1) return;
    this.size--;
    const last = this.items[this.size]!;
    this.items[p] = last;
    this.position[last] = p;
    this.position[user] = -1;
  }

  at(index: number): number {
    return this.items[index]!;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Words

const FIRST_NAMES = [
  'Alice', 'Bob', 'Carol', 'Dave', 'Erin', 'Frank', 'Grace', 'Heidi', 'Ivan', 'Judy', 'Mallory', 'Niaj',
  'Olivia', 'Peggy', 'Rupert', 'Sybil', 'Trent', 'Uma', 'Victor', 'Walter', 'Xena', 'Yusuf', 'Zoe', 'Amir',
  'Bea', 'Chen', 'Dmitri', 'Elif', 'Farah', 'Goran', 'Hana', 'Ines', 'Jonas', 'Kofi', 'Lena', 'Mateo',
];
const LAST_NAMES = [
  'Smith', 'Jones', 'Garcia', 'Müller', 'Rossi', 'Kowalski', 'Nakamura', 'Okafor', 'Silva', 'Dubois',
  'Novak', 'Larsen', 'Petrov', 'Haddad', 'Kim', 'Nguyen', 'Andersson', 'Moreau', 'Costa', 'Yilmaz',
];
const NICK_SUFFIXES = ['', '', '', ' (away)', ' 🌱', ' [bot]', ' | on holiday', ' (she/her)', ' (he/him)', ' ✨'];
const WORDS = [
  'the', 'a', 'to', 'and', 'of', 'is', 'it', 'that', 'this', 'we', 'you', 'I', 'on', 'for', 'with', 'but', 'not',
  'server', 'room', 'event', 'state', 'sync', 'federation', 'homeserver', 'client', 'bridge', 'bot', 'key',
  'backup', 'upgrade', 'release', 'bug', 'fix', 'patch', 'deploy', 'database', 'postgres', 'sqlite', 'cache',
  'latency', 'timeline', 'thread', 'reply', 'reaction', 'emoji', 'avatar', 'name', 'topic', 'invite', 'join',
  'leave', 'ban', 'kick', 'power', 'level', 'moderator', 'admin', 'works', 'broken', 'slow', 'fast', 'again',
  'today', 'tomorrow', 'yesterday', 'maybe', 'definitely', 'thanks', 'hello', 'hi', 'ok', 'lol', 'yes', 'no',
  'please', 'sorry', 'great', 'interesting', 'weird', 'really', 'just', 'now', 'later', 'soon', 'still',
  'anyone', 'everyone', 'here', 'there', 'know', 'think', 'seen', 'tried', 'restart', 'logs', 'error',
  'works-for-me', 'ETA', 'PR', 'issue', 'merged', 'review', 'test', 'tests', 'CI', 'green', 'red', 'coffee',
];
const TOPIC_PREFIXES = ['Discussion of', 'All about', 'Help and chat for', 'Announcements:', 'Off-topic chatter on', 'Planning'];
const TOPIC_SUBJECTS = [
  'homeserver operations', 'the storage layer', 'federation quirks', 'bridges and bots', 'release planning',
  'state resolution', 'performance work', 'the weekly meetup', 'client development', 'room upgrades',
];
const ROOM_NAMES = [
  'General', 'Synthetic Room', 'Storage Chat', 'Homeserver Ops', 'Federation Lounge', 'Dev Talk', 'Random',
  'Support', 'Announcements', 'Offtopic', 'Benchmarks', 'Watercooler',
];
const KICK_REASONS = ['Spam', 'Off-topic', 'Please read the rules', 'Inactive', ''];
const BAN_REASONS = ['Spam', 'Abuse', 'Repeated rule violations', 'Bot account'];
const REDACTION_REASONS = ['Spam', 'Posted by mistake', 'Wrong room', 'Off-topic', 'Duplicate', 'Contained personal data'];

const pick = <T>(list: readonly T[], r: number): T => list[Math.floor(r * list.length)]!;

// ---------------------------------------------------------------------------------------------------------
// The generator

/** A count of each kind of event a generator has made, for the CLI's summary and the benchmarks. */
export interface GenerateStats {
  create: number;
  /** The other initial events: the creator's join, power levels, join rules, history visibility, name, topic. */
  initialState: number;
  /** First joins of new users without an invite (the creator's is in initialState). */
  join: number;
  /** First joins of users who were invited. */
  inviteeJoin: number;
  /** Joins of users who had left or been kicked. */
  rejoin: number;
  /** A join of a user already joined, with a new displayname or avatar. */
  profileChange: number;
  /** A user leaving by themself. */
  leave: number;
  invite: number;
  /** Membership "leave" sent by the creator. */
  kick: number;
  ban: number;
  topic: number;
  name: number;
  powerLevels: number;
  message: number;
  redaction: number;
  /** All state events, the initial ones included. */
  state: number;
}

interface Draft {
  type: string;
  stateKey?: string;
  sender: number;
  content: Record<string, unknown>;
  /** Extra auth events besides create, power levels and the sender's membership. */
  joinRules?: boolean;
  target?: number;
  redacts?: string;
}

const NO_EVENT = -1;
const ID_CACHE_SIZE = 8192;

class RoomGenerator {
  readonly stats: GenerateStats = {
    create: 0, initialState: 0, join: 0, inviteeJoin: 0, rejoin: 0, profileChange: 0, leave: 0, invite: 0,
    kick: 0, ban: 0, topic: 0, name: 0, powerLevels: 0, message: 0, redaction: 0, state: 0,
  };

  private readonly random: Random;
  /** A digest of all the options, so that rooms made with different options never share an event ID. */
  private readonly idPrefix: string;
  private readonly roomIDJSON: string;
  private readonly idCacheIndex = new Float64Array(ID_CACHE_SIZE).fill(NO_EVENT);
  private readonly idCache: string[] = new Array<string>(ID_CACHE_SIZE).fill('');
  private readonly userMixSalt: number;
  /** Cumulative weights of the servers users live on (the first has the most). */
  private readonly serverCumulative: number[];
  private readonly redactsInContent: boolean;

  // Per-user state: one entry per user number (1 = the creator).
  private readonly membership: Uint8Array; // 0 none, 1 join, 2 leave, 3 invite, 4 ban
  private readonly memberEventIndex: Float64Array;
  private readonly profileVersion: Uint32Array;
  private readonly joined: UserSet;
  private readonly left: UserSet;
  private readonly invited: UserSet;
  /** Users 1 .. nextNew - 1 have joined or been invited; nextNew .. members have not appeared yet. */
  private nextNew = 2;

  // Room state.
  private index = 0;
  private ts: number;
  private previousID = '';
  private createID = '';
  private powerLevelsID = '';
  private joinRulesID = '';
  private moderators: number[] = [];
  private readonly recentMessages = new Float64Array(RECENT_MESSAGES).fill(NO_EVENT);
  private readonly recentSenders = new Int32Array(RECENT_MESSAGES);
  private recentCount = 0;

  private readonly stateTarget: number;
  private stateDone = 0;

  constructor(private readonly o: Required<GenerateOptions>) {
    const fingerprint = JSON.stringify(['matrix-storage generate v1', o.seed, o.roomID, o.members, o.events,
      o.stateFraction, o.roomVersion, o.serverNames]);
    this.idPrefix = createHash('sha256').update(fingerprint).digest('hex') + ':';
    this.roomIDJSON = JSON.stringify(o.roomID);
    this.random = sfc32(createHash('sha256').update(`matrix-storage generate seed ${o.seed}`).digest());
    this.userMixSalt = Math.floor(this.random() * 4294967296);
    this.ts = 1_577_836_800_000 + Math.floor(this.random() * 365 * 86_400) * 1000; // some time in 2020
    let total = 0;
    this.serverCumulative = o.serverNames.map((_, i) => (total += 1 / (i + 1)));
    this.serverCumulative = this.serverCumulative.map((w) => w / total);
    this.redactsInContent = /^\d+$/.test(o.roomVersion) && Number(o.roomVersion) >= 11;

    this.membership = new Uint8Array(o.members + 1);
    this.memberEventIndex = new Float64Array(o.members + 1).fill(NO_EVENT);
    this.profileVersion = new Uint32Array(o.members + 1);
    this.joined = new UserSet(o.members);
    this.left = new UserSet(o.members);
    this.invited = new UserSet(o.members);
    this.stateTarget = plannedStateEvents(o);
  }

  // --- identities ---

  /**
   * The ID of the event at `index`: "$" + base64url(SHA-256(options fingerprint, index)), 44 characters.
   * Member events are looked up again for auth_events, mostly those of the few most active users, so a small
   * direct-mapped cache saves most of the rehashing.
   */
  private eventID(index: number, cache = true): string {
    const slot = index & (ID_CACHE_SIZE - 1);
    if (this.idCacheIndex[slot] === index) return this.idCache[slot]!;
    const id = '$' + createHash('sha256').update(this.idPrefix + index).digest('base64url');
    if (cache) {
      this.idCacheIndex[slot] = index;
      this.idCache[slot] = id;
    }
    return id;
  }

  private userHash(user: number, salt: number): number {
    return fmix32(Math.imul(user, 0x9e3779b1) ^ this.userMixSalt ^ Math.imul(salt, 0x27d4eb2f));
  }

  private server(user: number): string {
    if (user === CREATOR) return this.o.serverNames[0]!;
    const r = this.userHash(user, 1) / 4294967296;
    const i = this.serverCumulative.findIndex((w) => r < w);
    return this.o.serverNames[i === -1 ? this.o.serverNames.length - 1 : i]!;
  }

  userID(user: number): string {
    return `@user${user}:${this.server(user)}`;
  }

  private profile(user: number): Record<string, unknown> {
    const v = this.profileVersion[user]!;
    const h1 = this.userHash(user, 2 + v * 4);
    const h2 = this.userHash(user, 3 + v * 4);
    const h3 = this.userHash(user, 4 + v * 4);
    const name = `${FIRST_NAMES[h1 % FIRST_NAMES.length]} ${LAST_NAMES[h2 % LAST_NAMES.length]}` +
      (v === 0 ? '' : NICK_SUFFIXES[h3 % NICK_SUFFIXES.length]);
    const content: Record<string, unknown> = { membership: 'join', displayname: name };
    if (h3 % 5 !== 0) {
      const media = h1.toString(36) + h2.toString(36) + h3.toString(36);
      content.avatar_url = `mxc://${this.server(user)}/${media}`;
    }
    return content;
  }

  // --- randomness helpers ---

  private chance(p: number): boolean {
    return this.random() < p;
  }

  private text(minWords: number, maxWords: number): string {
    const n = minWords + Math.floor(this.random() * (maxWords - minWords + 1));
    const words: string[] = [];
    for (let i = 0; i < n; i++) words.push(pick(WORDS, this.random()));
    const s = words.join(' ');
    return s.charAt(0).toUpperCase() + s.slice(1) + pick(['', '.', '!', '?', '...', ' :)'], this.random());
  }

  /** A joined user, skewed towards the front of the joined list (mostly early joiners): a few talk a lot. */
  private activeSender(): number {
    const r = this.random();
    return this.joined.at(Math.floor(r * r * this.joined.size));
  }

  /** A joined user other than the creator; the caller checks that there is one. */
  private joinedNonCreator(): number {
    const i = Math.floor(this.random() * this.joined.size);
    const user = this.joined.at(i);
    return user !== CREATOR ? user : this.joined.at((i + 1) % this.joined.size);
  }

  // --- event assembly ---

  private emit(d: Draft): string {
    const index = this.index;
    const id = this.eventID(index, d.type === 'm.room.member');
    const sender = this.userID(d.sender);
    const auth: string[] = [];
    if (index > 0) auth.push(this.createID);
    if (this.powerLevelsID) auth.push(this.powerLevelsID);
    if (d.joinRules && this.joinRulesID) auth.push(this.joinRulesID);
    const senderMember = this.memberEventIndex[d.sender]!;
    if (senderMember !== NO_EVENT) auth.push(this.eventID(senderMember));
    if (d.target !== undefined && d.target !== d.sender) {
      const targetMember = this.memberEventIndex[d.target]!;
      if (targetMember !== NO_EVENT) auth.push(this.eventID(targetMember));
    }

    // Times: mostly seconds to minutes apart, now and then a quiet hour. Strictly increasing.
    if (index > 0) {
      const r = this.random();
      this.ts += 1 + Math.floor(r * r * r * (this.chance(0.02) ? 3_600_000 : 240_000));
    }

    // The same text JSON.stringify would give for an object with these keys in this order, assembled by hand
    // (faster): IDs are base64url, and user IDs, types and state keys are built from checked parts.
    const line =
      `{"event_id":"${id}","room_id":${this.roomIDJSON},"type":"${d.type}"` +
      (d.stateKey !== undefined ? `,"state_key":"${d.stateKey}"` : '') +
      `,"sender":"${sender}","depth":${index + 1},"origin_server_ts":${this.ts}` +
      `,"prev_events":[${index > 0 ? `"${this.previousID}"` : ''}],"auth_events":[${auth.length > 0 ? `"${auth.join('","')}"` : ''}]` +
      (d.redacts !== undefined && !this.redactsInContent ? `,"redacts":"${d.redacts}"` : '') +
      `,"content":${JSON.stringify(d.content)}}`;

    this.previousID = id;
    this.index++;
    if (d.stateKey !== undefined) {
      this.stateDone++;
      this.stats.state++;
    }
    return line;
  }

  /** A member event for `target`; updates the membership tables after the event is made. */
  private member(sender: number, target: number, membership: 1 | 2 | 3 | 4, content: Record<string, unknown>): string {
    const joinRules = membership === 1 || membership === 3;
    const line = this.emit({ type: 'm.room.member', stateKey: this.userID(target), sender, target, content, joinRules });
    const before = this.membership[target]!;
    this.membership[target] = membership;
    this.memberEventIndex[target] = this.index - 1;
    if (before === 1) this.joined.delete(target);
    if (before === 2) this.left.delete(target);
    if (before === 3) this.invited.delete(target);
    if (membership === 1) this.joined.add(target);
    if (membership === 2) this.left.add(target);
    if (membership === 3) this.invited.add(target);
    return line;
  }

  private powerLevelsContent(): Record<string, unknown> {
    const users: Record<string, number> = { [this.userID(CREATOR)]: 100 };
    for (const m of this.moderators) users[this.userID(m)] = 50;
    return {
      users,
      users_default: 0,
      events: {
        'm.room.name': 50,
        'm.room.power_levels': 100,
        'm.room.history_visibility': 100,
        'm.room.canonical_alias': 50,
        'm.room.avatar': 50,
        'm.room.tombstone': 100,
        'm.room.server_acl': 100,
        'm.room.encryption': 100,
      },
      events_default: 0,
      state_default: 50,
      ban: 50,
      kick: 50,
      redact: 50,
      invite: 0,
      historical: 100,
      notifications: { room: 50 },
    };
  }

  private powerLevels(): string {
    const line = this.emit({ type: 'm.room.power_levels', stateKey: '', sender: CREATOR, content: this.powerLevelsContent() });
    this.powerLevelsID = this.previousID;
    return line;
  }

  // --- the kinds of event ---

  *initial(): Generator<string> {
    const creator = this.userID(CREATOR);
    this.stats.create++;
    yield this.emit({ type: 'm.room.create', stateKey: '', sender: CREATOR, content: { creator, room_version: this.o.roomVersion } });
    this.createID = this.previousID;
    yield this.member(CREATOR, CREATOR, 1, this.profile(CREATOR));
    yield this.powerLevels();
    yield this.emit({ type: 'm.room.join_rules', stateKey: '', sender: CREATOR, content: { join_rule: 'public' } });
    this.joinRulesID = this.previousID;
    yield this.emit({ type: 'm.room.history_visibility', stateKey: '', sender: CREATOR, content: { history_visibility: 'shared' } });
    yield this.emit({ type: 'm.room.name', stateKey: '', sender: CREATOR, content: { name: pick(ROOM_NAMES, this.random()) } });
    yield this.emit({ type: 'm.room.topic', stateKey: '', sender: CREATOR, content: { topic: this.topicText() } });
    this.stats.initialState += INITIAL_EVENTS - 1;
  }

  private topicText(): string {
    return `${pick(TOPIC_PREFIXES, this.random())} ${pick(TOPIC_SUBJECTS, this.random())}`;
  }

  private newJoin(): string {
    const user = this.nextNew++;
    this.stats.join++;
    return this.member(user, user, 1, this.profile(user));
  }

  private inviteeJoin(): string {
    const user = this.invited.at(Math.floor(this.random() * this.invited.size));
    this.stats.inviteeJoin++;
    return this.member(user, user, 1, this.profile(user));
  }

  private invite(): string {
    const user = this.nextNew++;
    const inviter = this.activeSender();
    this.stats.invite++;
    const content: Record<string, unknown> = { membership: 'invite', displayname: this.profile(user).displayname };
    return this.member(inviter, user, 3, content);
  }

  private rejoin(): string {
    const user = this.left.at(Math.floor(this.random() * this.left.size));
    this.stats.rejoin++;
    return this.member(user, user, 1, this.profile(user));
  }

  private leave(): string {
    const user = this.joinedNonCreator();
    this.stats.leave++;
    return this.member(user, user, 2, { membership: 'leave' });
  }

  private kick(): string {
    const user = this.joinedNonCreator();
    this.stats.kick++;
    const reason = pick(KICK_REASONS, this.random());
    return this.member(CREATOR, user, 2, reason ? { membership: 'leave', reason } : { membership: 'leave' });
  }

  private ban(): string {
    const user = this.joinedNonCreator();
    this.stats.ban++;
    this.moderators = this.moderators.filter((m) => m !== user);
    return this.member(CREATOR, user, 4, { membership: 'ban', reason: pick(BAN_REASONS, this.random()) });
  }

  private profileChange(): string {
    const user = this.activeSender();
    this.profileVersion[user] = this.profileVersion[user]! + 1;
    this.stats.profileChange++;
    return this.member(user, user, 1, this.profile(user));
  }

  private topic(): string {
    this.stats.topic++;
    return this.emit({ type: 'm.room.topic', stateKey: '', sender: CREATOR, content: { topic: this.topicText() } });
  }

  private roomName(): string {
    this.stats.name++;
    return this.emit({ type: 'm.room.name', stateKey: '', sender: CREATOR, content: { name: pick(ROOM_NAMES, this.random()) } });
  }

  private powerLevelChange(): string {
    const candidate = this.joined.size > 1 ? this.joinedNonCreator() : CREATOR;
    const canAdd = candidate !== CREATOR && !this.moderators.includes(candidate) && this.moderators.length < MAX_MODERATORS;
    if (canAdd && (this.moderators.length === 0 || this.chance(0.6))) {
      this.moderators.push(candidate);
    } else if (this.moderators.length > 0) {
      this.moderators.splice(Math.floor(this.random() * this.moderators.length), 1);
    }
    this.stats.powerLevels++;
    return this.powerLevels();
  }

  private message(): string {
    const sender = this.activeSender();
    this.stats.message++;
    const line = this.emit({ type: 'm.room.message', sender, content: { msgtype: 'm.text', body: this.text(1, 24) } });
    const slot = this.recentCount++ % RECENT_MESSAGES;
    this.recentMessages[slot] = this.index - 1;
    this.recentSenders[slot] = sender;
    return line;
  }

  /** A redaction of a recent, not yet redacted message; undefined when there is none to hand. */
  private redaction(): string | undefined {
    const filled = Math.min(this.recentCount, RECENT_MESSAGES);
    if (filled === 0) return undefined;
    const slot = Math.floor(this.random() * filled);
    const target = this.recentMessages[slot]!;
    if (target === NO_EVENT) return undefined;
    this.recentMessages[slot] = NO_EVENT;
    const author = this.recentSenders[slot]!;
    // The author takes back their own message, or the creator moderates it.
    const sender = this.membership[author] === 1 && this.chance(0.6) ? author : CREATOR;
    const redacts = this.eventID(target);
    const content: Record<string, unknown> = { reason: pick(REDACTION_REASONS, this.random()) };
    if (this.redactsInContent) content.redacts = redacts;
    this.stats.redaction++;
    return this.emit({ type: 'm.room.redaction', sender, content, redacts });
  }

  // --- the plan ---

  /** One event after the initial ones. */
  next(): string {
    const { events, members } = this.o;
    const remaining = events - this.index;
    const stateLeft = this.stateTarget - this.stateDone;
    // Spread the remaining state events evenly over the remaining events: exactly stateTarget in all.
    const isState = stateLeft >= remaining || (stateLeft > 0 && this.random() * remaining < stateLeft);
    if (!isState) {
      const redactionChance = Math.min(0.25, REDACTION_SHARE / Math.max(1e-9, 1 - this.o.stateFraction));
      if (this.chance(redactionChance)) {
        const line = this.redaction();
        if (line !== undefined) return line;
      }
      return this.message();
    }

    const untouched = members - this.nextNew + 1;
    const mandatory = untouched + this.invited.size; // joins still owed: one per user not yet joined
    const slack = stateLeft - mandatory;
    // Joins are front-loaded: the share of members seen by progress t follows 1 - (1 - t/H)², H = JOIN_HORIZON.
    const t = this.index / events;
    const curve = t >= JOIN_HORIZON ? 1 : 1 - (1 - t / JOIN_HORIZON) ** 2;
    const deficit = 1 + Math.ceil((members - 1) * curve) - (this.nextNew - 1);

    if (slack <= 0 || deficit > 0) {
      if (slack > 0 && untouched > 0 && this.chance(0.08)) return this.invite();
      if (this.invited.size > 0 && (untouched === 0 || this.chance(0.3))) return this.inviteeJoin();
      if (untouched > 0) return this.newJoin();
      // deficit > 0 implies untouched > 0, and slack <= 0 implies joins are owed, so this is unreachable.
    }

    const canRemove = this.joined.size > 1;
    const weights: [number, () => string][] = [
      [this.invited.size > 0 ? (t >= JOIN_HORIZON ? 200 : 30) : 0, () => this.inviteeJoin()],
      [untouched > 0 ? 10 : 0, () => this.newJoin()],
      [untouched > 0 && t < JOIN_HORIZON ? 4 : 0, () => this.invite()],
      [canRemove ? 14 : 0, () => this.leave()],
      [this.left.size > 0 ? 9 : 0, () => this.rejoin()],
      [24, () => this.profileChange()],
      [canRemove ? 2 : 0, () => this.kick()],
      [canRemove ? 1 : 0, () => this.ban()],
      [2, () => this.topic()],
      [1, () => this.roomName()],
      [1, () => this.powerLevelChange()],
    ];
    let total = 0;
    for (const [w] of weights) total += w;
    let r = this.random() * total;
    for (const [w, make] of weights) {
      if (r < w) return make();
      r -= w;
    }
    return this.profileChange();
  }

  get done(): boolean {
    return this.index >= this.o.events;
  }
}

/**
 * Generates a synthetic room: yields one event JSON text per event (no trailing newline), in room order.
 * The options are checked (and defaults filled) when this is called, not when the first line is pulled.
 */
export function generateRoom(options: GenerateOptions): Generator<string> {
  return generateRoomWithStats(options).lines;
}

/** As generateRoom, plus counters of each kind of event, complete once the lines have all been consumed. */
export function generateRoomWithStats(options: GenerateOptions): { lines: Generator<string>; stats: GenerateStats } {
  const o = validateGenerateOptions(options);
  const g = new RoomGenerator(o);
  function* lines(): Generator<string> {
    yield* g.initial();
    while (!g.done) yield g.next();
  }
  return { lines: lines(), stats: g.stats };
}

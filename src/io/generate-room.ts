/**
 * A synthetic room generator for the `matrix-storage generate` command and the benchmarks.
 *
 * It writes a plausible Matrix room as a chain of events (each event's prev_events names the one before), one JSON
 * text per event, in room order; with `forkShare`, some messages are sent on concurrent branches that the next event
 * merges (see GenerateOptions.forkShare):
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
 * The events are real PDUs of their room version, as `import` takes them: no `event_id` (from v3 an event's ID is
 * its reference hash), a correct content hash in `hashes.sha256`, and every reference to an earlier event by its
 * computed ID; in room version 12 the create event has no room_id and the room ID is computed from it. Their
 * `signatures` map is empty (the generator has no server key; the store never checks signatures). Each line is the
 * PDU as canonical JSON.
 */
import { createHash } from 'node:crypto';
import { canonicalJSON } from '../matrix/canonical-json.js';
import { computeEventID, computeRoomID, contentHash } from '../matrix/event-id.js';
import { ROOM_VERSIONS, type RoomVersionRules } from '../matrix/room-versions.js';
import { INITIAL_EVENTS, plannedStateEvents, validateGenerateOptions, type GenerateOptions } from './generate-options.js';
import { fmix32, pick, sfc32, type Random } from './generate-random.js';
import { UserSet } from './generate-user-set.js';
import {
  BAN_REASONS, FIRST_NAMES, KICK_REASONS, LAST_NAMES, NICK_SUFFIXES, REDACTION_REASONS, ROOM_NAMES, TOPIC_PREFIXES,
  TOPIC_SUBJECTS, WORDS,
} from './generate-words.js';

/** Fraction of the room by which every member has joined (when the state budget allows it). */
const JOIN_HORIZON = 0.65;
/** Redactions as a share of all events (taken from the non-state events). */
const REDACTION_SHARE = 0.01;
/** How many recent messages are remembered as redaction targets. */
const RECENT_MESSAGES = 1024;
/** At most this many moderators (power level 50) besides the creator. */
const MAX_MODERATORS = 6;
const CREATOR = 1;

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
  /** Messages sent on a concurrent branch (each merged by the next event). */
  fork: number;
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
  /** A message on a concurrent branch (see GenerateOptions.forkShare). */
  branch?: boolean;
}

/** An event ID's length after "$": 43 characters of unpadded base64 (a SHA-256). */
const ID_LENGTH = 43;

class RoomGenerator {
  readonly stats: GenerateStats = {
    create: 0, initialState: 0, join: 0, inviteeJoin: 0, rejoin: 0, profileChange: 0, leave: 0, invite: 0,
    kick: 0, ban: 0, topic: 0, name: 0, powerLevels: 0, message: 0, redaction: 0, fork: 0, state: 0,
  };

  private readonly random: Random;
  private readonly rules: RoomVersionRules;
  /** Known once the create event is made in room version 12, whose room ID is computed from it. */
  private roomID: string;
  private readonly userMixSalt: number;
  /** Cumulative weights of the servers users live on (the first has the most). */
  private readonly serverCumulative: number[];

  // Per-user state: one entry per user number (1 = the creator).
  private readonly membership: Uint8Array; // 0 none, 1 join, 2 leave, 3 invite, 4 ban
  /** Whether the user has a membership event yet, and its ID (the 43 characters after "$"), packed 43 bytes a user. */
  private readonly hasMemberEvent: Uint8Array;
  private readonly memberEventIDs: Uint8Array;
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
  /** The room's forward extremities: the latest event, and a concurrent branch's message until the next event merges it. */
  private extremities: string[] = [];
  /** The event before the latest on the main line, and the depths of the two (a branch starts after the former). */
  private beforeLatestID = '';
  private beforeLatestDepth = 0;
  private latestDepth = 0;
  /** The ID of the event emit() made last. */
  private lastID = '';
  private createID = '';
  private powerLevelsID = '';
  private joinRulesID = '';
  private moderators: number[] = [];
  private readonly recentMessages: string[] = new Array<string>(RECENT_MESSAGES).fill('');
  private readonly recentSenders = new Int32Array(RECENT_MESSAGES);
  private recentCount = 0;

  private readonly stateTarget: number;
  private stateDone = 0;

  constructor(private readonly o: Required<GenerateOptions>) {
    this.rules = ROOM_VERSIONS.get(o.roomVersion)!;
    this.roomID = o.roomID;
    this.random = sfc32(createHash('sha256').update(`matrix-storage generate seed ${o.seed}`).digest());
    this.userMixSalt = Math.floor(this.random() * 4294967296);
    this.ts = 1_577_836_800_000 + Math.floor(this.random() * 365 * 86_400) * 1000; // some time in 2020
    let total = 0;
    this.serverCumulative = o.serverNames.map((_, i) => (total += 1 / (i + 1)));
    this.serverCumulative = this.serverCumulative.map((w) => w / total);

    this.membership = new Uint8Array(o.members + 1);
    this.hasMemberEvent = new Uint8Array(o.members + 1);
    this.memberEventIDs = new Uint8Array((o.members + 1) * ID_LENGTH);
    this.profileVersion = new Uint32Array(o.members + 1);
    this.joined = new UserSet(o.members);
    this.left = new UserSet(o.members);
    this.invited = new UserSet(o.members);
    this.stateTarget = plannedStateEvents(o);
  }

  // --- identities ---

  /** The ID of the user's latest membership event (the user must have one). */
  private memberEventID(user: number): string {
    return `$${Buffer.from(this.memberEventIDs.subarray(user * ID_LENGTH, (user + 1) * ID_LENGTH)).toString('latin1')}`;
  }

  private setMemberEventID(user: number, id: string): void {
    this.memberEventIDs.set(Buffer.from(id.slice(1), 'latin1'), user * ID_LENGTH);
    this.hasMemberEvent[user] = 1;
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
    const sender = this.userID(d.sender);
    const auth: string[] = [];
    if (index > 0 && !this.rules.roomIDFromCreateEvent) auth.push(this.createID); // v12: the create event is implied
    if (this.powerLevelsID) auth.push(this.powerLevelsID);
    if (d.joinRules && this.joinRulesID) auth.push(this.joinRulesID);
    if (this.hasMemberEvent[d.sender]) auth.push(this.memberEventID(d.sender));
    if (d.target !== undefined && d.target !== d.sender && this.hasMemberEvent[d.target]) auth.push(this.memberEventID(d.target));

    // Times: mostly seconds to minutes apart, now and then a quiet hour. Strictly increasing.
    if (index > 0) {
      const r = this.random();
      this.ts += 1 + Math.floor(r * r * r * (this.chance(0.02) ? 3_600_000 : 240_000));
    }

    const pdu: Record<string, unknown> = {
      auth_events: auth,
      content: d.content,
      depth: (d.branch ? this.beforeLatestDepth : this.latestDepth) + 1,
      origin_server_ts: this.ts,
      prev_events: d.branch ? [this.beforeLatestID] : [...this.extremities],
      sender,
      type: d.type,
    };
    if (d.stateKey !== undefined) pdu.state_key = d.stateKey;
    if (d.redacts !== undefined && this.rules.redactsIn === 'top-level') pdu.redacts = d.redacts;
    const isCreate = d.type === 'm.room.create';
    if (!(isCreate && this.rules.roomIDFromCreateEvent)) pdu.room_id = this.roomID;
    pdu.hashes = { sha256: contentHash(pdu, this.o.roomVersion) };
    // The schema requires the field; neither hash covers it, so an empty map leaves every ID as it was.
    pdu.signatures = {};
    const id = computeEventID(pdu, this.o.roomVersion);
    if (isCreate && this.rules.roomIDFromCreateEvent) this.roomID = computeRoomID(pdu, this.o.roomVersion);

    this.lastID = id;
    this.index++;
    if (d.branch) {
      this.extremities = [this.previousID, id];
    } else {
      this.beforeLatestID = this.previousID;
      this.beforeLatestDepth = this.latestDepth;
      this.latestDepth = pdu.depth as number;
      this.previousID = id;
      this.extremities = [id];
    }
    if (d.stateKey !== undefined) {
      this.stateDone++;
      this.stats.state++;
    }
    return canonicalJSON(pdu);
  }

  /** A member event for `target`; updates the membership tables after the event is made. */
  private member(sender: number, target: number, membership: 1 | 2 | 3 | 4, content: Record<string, unknown>): string {
    const joinRules = membership === 1 || membership === 3;
    const line = this.emit({ type: 'm.room.member', stateKey: this.userID(target), sender, target, content, joinRules });
    const before = this.membership[target]!;
    this.membership[target] = membership;
    this.setMemberEventID(target, this.lastID);
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
    const content = this.rules.createContentHasCreator ? { creator, room_version: this.o.roomVersion } : { room_version: this.o.roomVersion };
    yield this.emit({ type: 'm.room.create', stateKey: '', sender: CREATOR, content });
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
    // On a concurrent branch: after the event before the latest, while no other branch waits to be merged.
    const branch = this.o.forkShare > 0 && this.extremities.length === 1 && this.beforeLatestID !== '' && this.chance(this.o.forkShare);
    if (branch) this.stats.fork++;
    const line = this.emit({ type: 'm.room.message', sender, content: { msgtype: 'm.text', body: this.text(1, 24) }, ...(branch ? { branch } : {}) });
    const slot = this.recentCount++ % RECENT_MESSAGES;
    this.recentMessages[slot] = this.lastID;
    this.recentSenders[slot] = sender;
    return line;
  }

  /** A redaction of a recent, not yet redacted message; undefined when there is none to hand. */
  private redaction(): string | undefined {
    const filled = Math.min(this.recentCount, RECENT_MESSAGES);
    if (filled === 0) return undefined;
    const slot = Math.floor(this.random() * filled);
    const target = this.recentMessages[slot]!;
    if (target === '') return undefined;
    this.recentMessages[slot] = '';
    const author = this.recentSenders[slot]!;
    // The author takes back their own message, or the creator moderates it.
    const sender = this.membership[author] === 1 && this.chance(0.6) ? author : CREATOR;
    const redacts = target;
    const content: Record<string, unknown> = { reason: pick(REDACTION_REASONS, this.random()) };
    if (this.rules.redactsIn === 'content') content.redacts = redacts;
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

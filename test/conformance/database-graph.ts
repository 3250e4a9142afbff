import { expect } from 'chai';
import { resolveState, stateMapKey, type Storage } from '../../src/index.js';
import type { AppendEventResult, StoreEventOptions } from '../../src/storage/shared/roomserver-database.js';
import { MissingPrevEventsError, MissingStateError, StateConflictError } from '../../src/types/errors.js';
import { parseEvent, type RoomEvent } from '../../src/types/event.js';
import { group, SUITE_SETTINGS, type DriverUnderTest, type TestFramework } from './harness.js';
import { rejects } from './fixtures.js';

interface Fields {
  readonly type?: string;
  readonly stateKey?: string;
  readonly sender?: string;
  readonly prev?: readonly string[];
  /** Short names of the event's auth events. */
  readonly auth?: readonly string[];
  readonly content?: Record<string, unknown>;
  readonly redacts?: string;
}

/**
 * A room of the scenarios: events made by short name (`$<tag>~<name>`, so that IDs sort alike in every room), each
 * with a later origin_server_ts than the one made before it and a depth one more than its deepest prev event; and
 * what the store says of them, by short name again, sorted.
 */
class Room {
  readonly events = new Map<string, RoomEvent>();
  private ts = 1_700_000_000_000;

  constructor(readonly storage: Storage, readonly tag: string, readonly roomVersion = '10', readonly roomID = `!${tag}:example.org`) {}

  id(short: string): string { return `$${this.tag}~${short}`; }
  short(id: string): string { return id.replace(`$${this.tag}~`, ''); }
  get db() { return this.storage.roomserver; }

  make(short: string, f: Fields = {}): RoomEvent {
    const prev = (f.prev ?? []).map((p) => this.id(p));
    const depth = 1 + Math.max(0, ...prev.map((p) => this.events.get(this.short(p))?.depth ?? 0));
    const o: Record<string, unknown> = {
      event_id: this.id(short), room_id: this.roomID, type: f.type ?? 'm.room.message', sender: f.sender ?? '@alice:example.org',
      depth, origin_server_ts: ++this.ts, prev_events: prev, auth_events: (f.auth ?? []).map((a) => this.id(a)),
      content: f.content ?? { body: `text of ${short}`, msgtype: 'm.text' },
    };
    if (f.stateKey !== undefined) o.state_key = f.stateKey;
    if (f.redacts !== undefined) o.redacts = this.id(f.redacts);
    const isCreate = o.type === 'm.room.create';
    const event = parseEvent(JSON.stringify(o), isCreate ? {} : { roomVersion: this.roomVersion });
    this.events.set(short, event);
    return event;
  }

  /** Makes the event and appends it. */
  add(short: string, f: Fields = {}, options?: StoreEventOptions): Promise<AppendEventResult> {
    return this.append(this.make(short, f), options);
  }

  append(event: RoomEvent, options?: StoreEventOptions): Promise<AppendEventResult> {
    return this.db.appendEvent(event, options && this.ownOptions(options));
  }

  /** Options whose stateBefore names short IDs. */
  ownOptions(options: StoreEventOptions): StoreEventOptions {
    return options.stateBefore ? { ...options, stateBefore: options.stateBefore.map((s) => this.id(s)) } : options;
  }

  /** The base of every scenario: alice creates the room, joins, gives herself and a moderator power, makes it public. */
  async base(users: Record<string, number> = {}): Promise<void> {
    await this.add('create', { type: 'm.room.create', stateKey: '', content: { creator: '@alice:example.org', room_version: this.roomVersion } });
    await this.add('alice', { type: 'm.room.member', stateKey: '@alice:example.org', prev: ['create'], auth: ['create'], content: { membership: 'join' } });
    await this.add('power', {
      type: 'm.room.power_levels', stateKey: '', prev: ['alice'], auth: ['create', 'alice'], content: { users: { '@alice:example.org': 100, ...users } },
    });
    await this.add('rules', { type: 'm.room.join_rules', stateKey: '', prev: ['power'], auth: ['create', 'alice', 'power'], content: { join_rule: 'public' } });
  }

  async names(nids: readonly number[]): Promise<string[]> {
    const ids = await this.db.eventIDs(nids as never);
    return nids.map((n) => this.short(ids.get(n as never)!)).sort();
  }

  async stateBefore(short: string): Promise<string[]> {
    return this.names((await this.db.loadStateAtEvent(this.id(short))).map((e) => e.eventNID));
  }

  async current(): Promise<string[]> {
    return this.names((await this.db.currentState(this.roomID)).map((e) => e.eventNID));
  }

  async latest(): Promise<string[]> {
    const info = (await this.db.roomInfo(this.roomID))!;
    return (await this.db.latestEventIDs(info.roomNID)).eventIDs.map((id) => this.short(id)).sort();
  }

  async roomNID() {
    return (await this.db.roomInfo(this.roomID))!.roomNID;
  }

  async content(short: string): Promise<Record<string, unknown>> {
    const [stored] = await this.db.eventsFromIDs([this.id(short)]);
    return { ...stored!.event.content };
  }

  /** The state the store's entries name, as resolveState takes it. */
  async stateMap(shorts: readonly string[]): Promise<Map<string, string>> {
    return new Map(shorts.map((s) => {
      const e = this.events.get(s)!;
      return [stateMapKey(e.type, e.stateKey!), e.eventID];
    }));
  }
}

const member = (user: string, membership: string, prev: string, auth: readonly string[], sender = user): Fields =>
  ({ type: 'm.room.member', stateKey: user, sender, prev: [prev], auth, content: { membership } });

/**
 * The input path as a graph: forks and merges, events before their parents, unknown prev events, rejected,
 * soft-failed and outlier events, joining with state from send_join, a rejoin that rewrites state, redactions
 * and who may apply them, and the room updater writing inside its transaction. Every expected state was worked out
 * by hand from the spec (the state before an event from its prev events; v2 state resolution at the fork).
 */
export function databaseGraphTests(fw: TestFramework, driver: DriverUnderTest): void {
  group(fw, driver, 'Database: the input path as a graph', (test) => {
    test('a fork: the state before an event comes from its prev events, never the tip; the fork and its merge are resolved', async ({ storage }) => {
      const r = new Room(storage, 'fork');
      await r.base();
      await r.add('T1', { type: 'm.room.topic', stateKey: '', prev: ['rules'], auth: ['create', 'alice', 'power'], content: { topic: 'one' } });
      await r.add('T2', { type: 'm.room.topic', stateKey: '', prev: ['T1'], auth: ['create', 'alice', 'power'], content: { topic: 'two' } });
      await r.add('bob', member('@bob:remote.net', 'join', 'T2', ['create', 'power', 'rules']));
      const f = await r.add('F', { prev: ['T1'], auth: ['create', 'alice', 'power'] });
      // F's state is T1's: neither T2 nor bob, who came after T1 on the other branch.
      expect(await r.stateBefore('F')).to.deep.equal(['T1', 'alice', 'create', 'power', 'rules']);
      expect(await r.latest()).to.deep.equal(['F', 'bob']);
      // The current state resolves the branches (v2): the topics and bob's join are conflicted, none is a power event;
      // by mainline order (all name the same power levels) then timestamp, T1, T2 and bob pass their auth checks in
      // turn: T2 is the topic and bob stays joined. So F changed nothing current.
      expect(await r.current()).to.deep.equal(['T2', 'alice', 'bob', 'create', 'power', 'rules']);
      expect(f.applied).to.equal(true);
      expect(f.stateDelta).to.deep.equal({ added: [], removed: [], rewritten: false });
      // The store's resolution is resolveState's, on the same events.
      const loader = async (ids: readonly string[]) => new Map([...r.events.values()].filter((e) => ids.includes(e.eventID)).map((e) => [e.eventID, e]));
      const resolved = await resolveState('10', [await r.stateMap(['create', 'alice', 'power', 'rules', 'T2', 'bob']),
        await r.stateMap(['create', 'alice', 'power', 'rules', 'T1'])], loader);
      expect([...resolved.values()].map((id) => r.short(id)).sort()).to.deep.equal(await r.current());
      const info = await r.roomNID();
      expect((await storage.roomserver.getMembership(info, '@bob:remote.net')).stillInRoom).to.equal(true);
      // The merge's state before is that resolution; it is the only forward extremity.
      await r.add('M', { prev: ['bob', 'F'], auth: ['create', 'alice', 'power'] });
      expect(await r.stateBefore('M')).to.deep.equal(['T2', 'alice', 'bob', 'create', 'power', 'rules']);
      expect(await r.latest()).to.deep.equal(['M']);
    });

    test('a branch that wins: an older topic set again on a fork resolves by mainline and timestamp', async ({ storage }) => {
      const r = new Room(storage, 'branch');
      await r.base();
      await r.add('T1', { type: 'm.room.topic', stateKey: '', prev: ['rules'], auth: ['create', 'alice', 'power'], content: { topic: 'one' } });
      // Two branches from T1: T2 on one, T3 (made later) on the other; then a merge.
      await r.add('T2', { type: 'm.room.topic', stateKey: '', prev: ['T1'], auth: ['create', 'alice', 'power'], content: { topic: 'two' } });
      const t3 = await r.add('T3', { type: 'm.room.topic', stateKey: '', prev: ['T1'], auth: ['create', 'alice', 'power'], content: { topic: 'three' } });
      expect(await r.stateBefore('T3')).to.deep.equal(['T1', 'alice', 'create', 'power', 'rules']);
      // T2 and T3 share a mainline position: the later timestamp wins, T3. The current state moved from T2 to T3.
      expect(await r.current()).to.deep.equal(['T3', 'alice', 'create', 'power', 'rules']);
      const ids = async (entries: readonly { eventNID: number }[]) => r.names(entries.map((e) => e.eventNID));
      expect(await ids(t3.stateDelta.added)).to.deep.equal(['T3']);
      expect(await ids(t3.stateDelta.removed)).to.deep.equal(['T2']);
    });

    test('a child before its parent: the child comes with its state; the parent gets its own and is no forward extremity', async ({ storage }) => {
      const r = new Room(storage, 'late');
      await r.base();
      // A message first: the refused event's type is known already (see the conflict case).
      await r.add('hello', { prev: ['rules'] });
      await r.add('T1', { type: 'm.room.topic', stateKey: '', prev: ['hello'], auth: ['create', 'alice', 'power'], content: { topic: 'one' } });
      await r.add('T2', { type: 'm.room.topic', stateKey: '', prev: ['T1'], auth: ['create', 'alice', 'power'], content: { topic: 'two' } });
      const parent = r.make('parent', { prev: ['T2'], auth: ['create', 'alice', 'power'] });
      const child = r.make('child', { prev: ['parent'], auth: ['create', 'alice', 'power'] });
      // Without its state, the child cannot be placed: its parent is not stored.
      const before = await storage.stats.fingerprint();
      const e = await rejects(r.append(child), MissingPrevEventsError, /parent/) as MissingPrevEventsError;
      expect(e.eventIDs).to.deep.equal([parent.eventID]);
      expect(await storage.stats.fingerprint()).to.equal(before);
      await r.append(child, { stateBefore: ['create', 'alice', 'power', 'rules', 'T2'] });
      expect(await r.stateBefore('child')).to.deep.equal(['T2', 'alice', 'create', 'power', 'rules']);
      expect(await r.latest()).to.deep.equal(['T2', 'child']);
      // The parent is what a homeserver backfills from.
      expect(await storage.roomserver.backwardExtremities(r.roomID)).to.deep.equal([parent.eventID]);
      const p = await r.append(parent);
      expect(await r.stateBefore('parent')).to.deep.equal(['T2', 'alice', 'create', 'power', 'rules']);
      // The parent named T2, which goes; the child names the parent, which so never becomes an extremity.
      expect(await r.latest()).to.deep.equal(['child']);
      expect(p.applied).to.equal(true);
      expect(await r.current()).to.deep.equal(['T2', 'alice', 'create', 'power', 'rules']);
      expect(await storage.roomserver.backwardExtremities(r.roomID)).to.deep.equal([]);
      expect(await storage.roomserver.backwardExtremities('!unknown:example.org')).to.deep.equal([]);
    });

    test('output bookkeeping: each event input into the room is the last sent and marked sent; rejected and soft-failed ones are not', async ({ storage }) => {
      const r = new Room(storage, 'output');
      const db = storage.roomserver;
      await r.base();
      const roomNID = await r.roomNID();
      const sent = async () => db.updateLatestEvents(roomNID, async (u) => r.short(u.lastEventIDSent));
      expect(await sent()).to.equal('rules');
      const m = await r.add('m', { prev: ['rules'] });
      const rejected = await r.add('x', { prev: ['m'] }, { isRejected: true });
      const soft = await r.add('s', { prev: ['m'] }, { isSoftFailed: true });
      expect(await sent()).to.equal('m');
      const flags = await db.updateLatestEvents(roomNID, (u) => Promise.all([m, rejected, soft].map((x) => u.hasEventBeenSent(x.stateAtEvent.eventNID))));
      expect(flags).to.deep.equal([true, false, false]);
      // An outlier is not sent when stored, but is once input into the room.
      const o = r.make('o', { prev: ['m'] });
      const stored = await db.storeEvent(o);
      expect(await db.updateLatestEvents(roomNID, (u) => u.hasEventBeenSent(stored.stateAtEvent.eventNID))).to.equal(false);
      await r.append(o);
      expect(await db.updateLatestEvents(roomNID, (u) => u.hasEventBeenSent(stored.stateAtEvent.eventNID))).to.equal(true);
      expect(await sent()).to.equal('o');
    });

    test('unknown or stateless prev events are a MissingPrevEventsError listing them, and nothing is written', async ({ storage }) => {
      const r = new Room(storage, 'gap');
      await r.base();
      const outlier = r.make('outlier', { prev: ['rules'], auth: ['create', 'alice', 'power'] });
      await storage.roomserver.storeEvent(outlier);
      const before = await storage.stats.fingerprint();
      const gap = await rejects(r.add('gap', { prev: ['never-seen', 'rules'] }), MissingPrevEventsError) as MissingPrevEventsError;
      expect(gap.eventIDs).to.deep.equal([r.id('never-seen')]);
      const onOutlier = await rejects(r.add('on-outlier', { prev: ['outlier'] }), MissingPrevEventsError) as MissingPrevEventsError;
      expect(onOutlier.eventIDs).to.deep.equal([outlier.eventID]);
      // In a batch, the whole call is refused, with the event's index.
      const batch = await rejects(storage.roomserver.appendEvents([r.make('fine', { prev: ['rules'] }), r.make('gap2', { prev: ['never-seen'] })]), MissingPrevEventsError);
      expect((batch as MissingPrevEventsError).eventIndex).to.equal(1);
      expect(await storage.stats.fingerprint()).to.equal(before);
      expect(await r.latest()).to.deep.equal(['rules']);
    });

    test('an outlier appended later as a timeline event gets its state from its prev events (de-outliering)', async ({ storage }) => {
      const r = new Room(storage, 'outlier');
      await r.base();
      const o = r.make('O', { prev: ['rules'], auth: ['create', 'alice', 'power'] });
      const stored = await storage.roomserver.storeEvent(o);
      expect(stored.stateAtEvent.beforeStateSnapshotNID).to.equal(0);
      await rejects(storage.roomserver.loadStateAtEvent(o.eventID), MissingStateError);
      expect(await r.latest()).to.deep.equal(['rules']);
      const appended = await r.append(o);
      expect(appended.duplicate).to.equal(true);
      expect(appended.applied).to.equal(true);
      expect(await r.stateBefore('O')).to.deep.equal(['alice', 'create', 'power', 'rules']);
      expect(await r.latest()).to.deep.equal(['O']);
    });

    test('rejected events: stored and flagged, in no state, never an extremity, no membership; stored again accepted, they count', async ({ storage }) => {
      const r = new Room(storage, 'rejected');
      await r.base();
      const db = storage.roomserver;
      const name = r.make('N', { type: 'm.room.name', stateKey: '', prev: ['rules'], auth: ['create', 'alice', 'power'], content: { name: 'x' } });
      const rejected = await r.append(name, { isRejected: true });
      expect(rejected.applied).to.equal(false);
      expect(rejected.stateAtEvent.isRejected).to.equal(true);
      // The state after a rejected event is the state before it.
      expect(rejected.stateAfterSnapshotNID).to.equal(rejected.stateAtEvent.beforeStateSnapshotNID);
      await r.add('mallory', member('@mallory:evil.org', 'join', 'rules', ['create', 'power', 'rules']), { isRejected: true });
      expect(await r.latest()).to.deep.equal(['rules']);
      expect(await r.current()).to.deep.equal(['alice', 'create', 'power', 'rules']);
      const roomNID = await r.roomNID();
      expect(await db.isEventRejected(roomNID, name.eventID)).to.equal(true);
      expect(await db.isEventRejected(roomNID, r.id('rules'))).to.equal(false);
      expect((await db.getMembership(roomNID, '@mallory:evil.org')).stillInRoom).to.equal(false);
      // Dendrite's send_join and backfill paths: rejected events are left out silently.
      const rules = await db.stateEntriesForEventIDs([r.id('rules')]);
      expect(await db.stateEntriesForEventIDs([r.id('rules'), name.eventID], true)).to.deep.equal(rules);
      // Stored again without the flag: accepted, in the state, the room's extremity.
      const accepted = await r.append(name);
      expect(accepted.stateAtEvent.isRejected).to.equal(false);
      expect(accepted.applied).to.equal(true);
      expect(await db.isEventRejected(roomNID, name.eventID)).to.equal(false);
      expect(await r.latest()).to.deep.equal(['N']);
      expect(await r.current()).to.deep.equal(['N', 'alice', 'create', 'power', 'rules']);
    });

    test('checkAuth: the auth rules of the room version on the state before the event, the answer the homeserver acts on', async ({ storage }) => {
      const r = new Room(storage, 'auth');
      await r.base();
      const db = storage.roomserver;
      const asked = async (short: string, f: Fields) => {
        const event = r.make(short, f);
        // Stored soft-failed (its state kept, nothing current moved) so that only the answer matters here.
        const answer = (await db.appendEvents([{ event, options: { checkAuth: true, isSoftFailed: true } }]))[0]!.auth!;
        return answer;
      };
      // The homeserver's own flow: input with checkAuth, and reject or soft-fail what fails.
      expect(await asked('topic', { type: 'm.room.topic', stateKey: '', prev: ['rules'], content: { topic: 'ok' } })).to.deep.equal({ allowed: true });
      const bob = await r.add('bob', { ...member('@bob:remote.net', 'join', 'rules', ['create', 'power', 'rules']) }, { checkAuth: true });
      expect(bob.auth).to.deep.equal({ allowed: true });
      // Bob has level 0; a topic needs the state default, 50.
      const low = await asked('bob-topic', { type: 'm.room.topic', stateKey: '', sender: '@bob:remote.net', prev: ['bob'], content: { topic: 'no' } });
      expect(low.allowed).to.equal(false);
      // Someone who never joined cannot send.
      const stranger = await asked('eve-says', { sender: '@eve:evil.org', prev: ['bob'] });
      expect(stranger.allowed).to.equal(false);
      if (!stranger.allowed) expect(stranger.reason).to.match(/eve|join|member/i);
      // The answer is given for a rejected event too; the store keeps it as the caller said.
      const rejected = await r.append(r.make('eve-again', { sender: '@eve:evil.org', prev: ['bob'] }), { checkAuth: true, isRejected: true });
      expect(rejected.auth?.allowed).to.equal(false);
      expect(rejected.stateAtEvent.isRejected).to.equal(true);
      expect(await r.latest()).to.deep.equal(['bob']);
    });

    test('a soft-failed event keeps its state before, but is no extremity and changes nothing current', async ({ storage }) => {
      const r = new Room(storage, 'soft');
      await r.base();
      const s = await r.add('S', { type: 'm.room.topic', stateKey: '', prev: ['rules'], auth: ['create', 'alice', 'power'], content: { topic: 'soft' } }, { isSoftFailed: true });
      expect(s.applied).to.equal(false);
      expect(await r.stateBefore('S')).to.deep.equal(['alice', 'create', 'power', 'rules']);
      expect(await r.latest()).to.deep.equal(['rules']);
      expect(await r.current()).to.deep.equal(['alice', 'create', 'power', 'rules']);
      expect((await storage.roomserver.latestEventIDs(await r.roomNID())).eventIDs).to.deep.equal([r.id('rules')]);
    });

    test('joining a remote room with the state from send_join: every remote member is in the membership table', async ({ storage }) => {
      const db = storage.roomserver;
      const r = new Room(storage, 'remote');
      const creator = '@creator:remote.net';
      const state = ['create', 'creator', 'power', 'rules'];
      const events = [
        r.make('create', { type: 'm.room.create', stateKey: '', sender: creator, content: { creator, room_version: '10' } }),
        r.make('creator', member(creator, 'join', 'create', ['create'])),
        r.make('power', { type: 'm.room.power_levels', stateKey: '', sender: creator, prev: ['creator'], auth: ['create', 'creator'], content: { users: { [creator]: 100 } } }),
        r.make('rules', { type: 'm.room.join_rules', stateKey: '', sender: creator, prev: ['power'], auth: ['create', 'creator', 'power'], content: { join_rule: 'public' } }),
      ];
      let prev = 'rules';
      for (let i = 1; i <= 50; i++) {
        events.push(r.make(`u${i}`, member(`@u${i}:remote.net`, 'join', prev, ['create', 'power', 'rules'])));
        state.push(`u${i}`);
        prev = `u${i}`;
      }
      // The state from send_join, stored as outliers (the create event first: it gives the room its version).
      for (const e of events) await db.storeEvent(e);
      const join = await r.add('join', member('@alice:example.org', 'join', prev, ['create', 'power', 'rules']), { stateBefore: state, rewritesState: true });
      expect(join.stateDelta.rewritten).to.equal(true);
      expect(join.stateDelta.added).to.have.length(55);
      expect(join.stateDelta.removed).to.deep.equal([]);
      expect(await r.current()).to.deep.equal([...state, 'join'].sort());
      expect(await r.latest()).to.deep.equal(['join']);
      const roomNID = await r.roomNID();
      expect(await db.getServerInRoom(roomNID, 'remote.net')).to.equal(true);
      expect(await db.getLocalServerInRoom(roomNID)).to.equal(true);
      expect(await db.getMembershipEventNIDsForRoom(roomNID, true, false)).to.have.length(52);
      expect(await db.getMembershipEventNIDsForRoom(roomNID, true, true)).to.have.length(1);
      const joined = await db.joinedUsersSetInRooms([r.roomID]);
      expect(joined.size).to.equal(52);
      expect(joined.get('@u17:remote.net')).to.equal(1);
      expect(await db.getKnownUsers('@alice:example.org', 'u4', 100)).to.include.members(['@u4:remote.net', '@u40:remote.net', '@u49:remote.net']);
      // The room goes on as any other: a remote member's message on our join.
      await r.add('hello', { sender: '@u1:remote.net', prev: ['join'], auth: ['create', 'power', 'u1'] });
      expect(await r.stateBefore('hello')).to.deep.equal([...state, 'join'].sort());

      // Alice leaves; meanwhile u2 leaves and the topic is set, which we learn from the state of our rejoin.
      await r.add('leave', member('@alice:example.org', 'leave', 'hello', ['create', 'power', 'join']));
      expect((await db.getMembership(roomNID, '@alice:example.org')).stillInRoom).to.equal(false);
      const u2leave = r.make('u2-leave', member('@u2:remote.net', 'leave', 'leave', ['create', 'power', 'u2']));
      const topic = r.make('topic', { type: 'm.room.topic', stateKey: '', sender: creator, prev: ['u2-leave'], auth: ['create', 'power', 'creator'], content: { topic: 'new' } });
      await db.storeEvent(u2leave);
      await db.storeEvent(topic);
      const newState = [...state.filter((s) => s !== 'u2'), 'u2-leave', 'topic', 'leave'];
      const rejoin = await r.add('rejoin', member('@alice:example.org', 'join', 'topic', ['create', 'power', 'rules', 'leave']), { stateBefore: newState, rewritesState: true });
      expect(rejoin.stateDelta.rewritten).to.equal(true);
      expect(await r.names(rejoin.stateDelta.added.map((e) => e.eventNID))).to.deep.equal(['rejoin', 'topic', 'u2-leave']);
      expect(await r.names(rejoin.stateDelta.removed.map((e) => e.eventNID))).to.deep.equal(['leave', 'u2']);
      expect(await r.latest()).to.deep.equal(['rejoin']);
      expect(await r.current()).to.deep.equal([...newState.filter((s) => s !== 'leave'), 'rejoin'].sort());
      expect((await db.getMembership(roomNID, '@u2:remote.net')).stillInRoom).to.equal(false);
      expect((await db.getMembership(roomNID, '@alice:example.org')).stillInRoom).to.equal(true);
      expect(await db.getMembershipEventNIDsForRoom(roomNID, true, false)).to.have.length(51);
    });

    test('redactions apply only when authorised: by the target\'s server or by the redact power; otherwise they stay pending', async ({ storage }) => {
      const r = new Room(storage, 'redact');
      const db = storage.roomserver;
      await r.base({ '@mod:mods.org': 50 });
      const auth = ['create', 'power'];
      await r.add('bob', member('@bob:remote.net', 'join', 'rules', [...auth, 'rules']));
      await r.add('mallory', member('@mallory:evil.org', 'join', 'bob', [...auth, 'rules']));
      await r.add('mod', member('@mod:mods.org', 'join', 'mallory', [...auth, 'rules']));
      await r.add('m1', { prev: ['mod'], auth: [...auth, 'alice'] });
      await r.add('m2', { prev: ['m1'], auth: [...auth, 'alice'] });
      await r.add('m3', { sender: '@bob:remote.net', prev: ['m2'], auth: [...auth, 'bob'] });
      const redaction = (short: string, sender: string, target: string, prev: string) =>
        r.add(short, { type: 'm.room.redaction', sender, prev: [prev], auth, redacts: target, content: {} });
      // Mallory has no power and is of another server than alice: stored, pending, nothing redacted.
      const r1 = await redaction('r1', '@mallory:evil.org', 'm1', 'm3');
      expect(r1.redaction).to.equal(undefined);
      expect(await db.redactionOf(r.id('m1'))).to.deep.equal({ redactionEventID: r.id('r1'), applied: false });
      expect((await r.content('m1')).body).to.equal('text of m1');
      // Someone of bob's own server: applied, whatever their power.
      const r2 = await redaction('r2', '@admin:remote.net', 'm3', 'r1');
      expect(r2.redaction?.redactedEventID).to.equal(r.id('m3'));
      expect(await r.content('m3')).to.deep.equal({});
      // The moderator, of a third server, with the redact level (50): applied.
      const r3 = await redaction('r3', '@mod:mods.org', 'm2', 'r2');
      expect(r3.redaction?.redactedEventID).to.equal(r.id('m2'));
      expect(await r.content('m2')).to.deep.equal({});
      expect(await db.redactionOf(r.id('m2'))).to.deep.equal({ redactionEventID: r.id('r3'), applied: true });
      // Before their targets: decided when the target arrives, on the redaction's own state.
      await redaction('r4', '@mallory:evil.org', 'm5', 'r3');
      const m5 = await r.add('m5', { prev: ['r4'], auth: [...auth, 'alice'] });
      expect(m5.redaction).to.equal(undefined);
      expect((await r.content('m5')).body).to.equal('text of m5');
      await redaction('r5', '@mod:mods.org', 'm6', 'm5');
      const m6 = await r.add('m6', { prev: ['r5'], auth: [...auth, 'alice'] });
      expect(m6.redaction?.redactionEvent.eventID).to.equal(r.id('r5'));
      expect(await r.content('m6')).to.deep.equal({});
      // Mallory's pending redaction still pending; the unredacted events read as stored.
      expect(await db.redactionOf(r.id('m1'))).to.deep.equal({ redactionEventID: r.id('r1'), applied: false });
      expect(await db.redactionOf(r.id('m4'))).to.equal(null);
    });

    test('the room updater stores events, adds and sets state and moves memberships inside its own transaction', async ({ storage }) => {
      const r = new Room(storage, 'updater');
      const db = storage.roomserver;
      await r.base();
      const roomNID = await r.roomNID();
      const topic = r.make('topic', { type: 'm.room.topic', stateKey: '', prev: ['rules'], auth: ['create', 'alice', 'power'], content: { topic: 'set' } });
      const bob = r.make('bob', member('@bob:remote.net', 'join', 'topic', ['create', 'power', 'rules']));
      await db.updateLatestEvents(roomNID, async (u) => {
        // Dendrite's resolve-and-commit: every write below joins the updater's transaction (on SQLite a second
        // transaction would wait for this one forever).
        const t = await db.storeEvent(topic);
        const b = await db.storeEvent(bob);
        const current = u.currentStateSnapshotNID;
        await db.setState(t.stateAtEvent.eventNID, current);
        const afterTopic = await db.addState(roomNID, await db.stateBlockNIDs([current]).then((l) => l[0]!.stateBlockNIDs), [t.stateAtEvent]);
        await db.setState(b.stateAtEvent.eventNID, afterTopic);
        const afterBob = await db.addState(roomNID, (await db.stateBlockNIDs([afterTopic]))[0]!.stateBlockNIDs, [b.stateAtEvent]);
        const m = await u.membershipUpdater(b.stateAtEvent.eventStateKeyNID, false);
        await m.setToJoin('@bob:remote.net', bob.eventID, false);
        await u.setLatestEvents([b.stateAtEvent.eventNID], b.stateAtEvent.eventNID, afterBob);
      });
      expect(await r.current()).to.deep.equal(['alice', 'bob', 'create', 'power', 'rules', 'topic']);
      expect(await r.latest()).to.deep.equal(['bob']);
      expect((await db.getMembership(roomNID, '@bob:remote.net')).stillInRoom).to.equal(true);
      expect(await r.stateBefore('bob')).to.deep.equal(['alice', 'create', 'power', 'rules', 'topic']);
    });

    test('without a resolver, states that differ are a StateConflictError naming the keys, and nothing is written', async () => {
      const storage = await driver.open({ ...SUITE_SETTINGS, state: { resolver: 'none' } });
      try {
        const r = new Room(storage, 'conflict');
        await r.base();
        // A message first: the refused event's type is known already (a new one would be assigned a NID, which an
        // engine without transactions keeps).
        await r.add('hello', { prev: ['rules'] });
        await r.add('T1', { type: 'm.room.topic', stateKey: '', prev: ['hello'], auth: ['create', 'alice', 'power'], content: { topic: 'one' } });
        await r.add('T2', { type: 'm.room.topic', stateKey: '', prev: ['T1'], auth: ['create', 'alice', 'power'], content: { topic: 'two' } });
        await r.add('bob', member('@bob:remote.net', 'join', 'T2', ['create', 'power', 'rules']));
        const before = await storage.stats.fingerprint();
        const e = await rejects(r.add('F', { prev: ['T1'], auth: ['create', 'alice', 'power'] }), StateConflictError, /m\.room\.topic/) as StateConflictError;
        expect(e.conflicts.map((c) => `${c.type}|${c.stateKey}`).sort()).to.deep.equal(['m.room.member|@bob:remote.net', 'm.room.topic|']);
        expect(await storage.stats.fingerprint()).to.equal(before);
        // Equal states need no resolver: a merge of branches that agree.
        await r.add('A', { prev: ['bob'] });
        await r.add('B', { prev: ['bob'] });
        await r.add('AB', { prev: ['A', 'B'] });
        expect(await r.stateBefore('AB')).to.deep.equal(['T2', 'alice', 'bob', 'create', 'power', 'rules']);
        expect(await r.latest()).to.deep.equal(['AB']);
      } finally {
        await storage.close();
      }
    });
  });
}

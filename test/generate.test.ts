import { expect } from 'chai';
import { generateRoom, generateRoomWithStats } from '../src/io/generate-room.js';
import { plannedStateEvents, validateGenerateOptions, type GenerateOptions } from '../src/io/generate-options.js';
import { InvalidInputError } from '../src/types/errors.js';
import { parsePDU, type RoomEvent } from '../src/types/event.js';

/** A generated line read as the federation PDU it is: its ID computed, its content hash checked. */
function parseEvent(line: string, roomVersion = '10'): RoomEvent {
  const { event, contentHashMatched } = parsePDU(line, roomVersion);
  expect(contentHashMatched, 'the generated content hash').to.equal(true);
  return event;
}

const small: GenerateOptions = { members: 300, events: 3000, seed: 42 };

/** Every line of a room, generated once per options object and shared by the tests that only read it. */
const cache = new Map<GenerateOptions, string[]>();
function linesOf(o: GenerateOptions): string[] {
  let lines = cache.get(o);
  if (!lines) {
    lines = [...generateRoom(o)];
    cache.set(o, lines);
  }
  return lines;
}
const eventsOf = (o: GenerateOptions): RoomEvent[] => linesOf(o).map((l) => parseEvent(l, o.roomVersion));

/** Replays membership through a room, calling check(event, membership before the event) on every event. */
function replay(events: RoomEvent[], check: (e: RoomEvent, membership: ReadonlyMap<string, string>) => void): Map<string, string> {
  const membership = new Map<string, string>();
  for (const e of events) {
    check(e, membership);
    if (e.type === 'm.room.member') membership.set(e.stateKey!, e.content.membership as string);
  }
  return membership;
}

function expectInvalid(o: Partial<GenerateOptions>, option: string): void {
  let caught: unknown;
  try {
    validateGenerateOptions(o);
  } catch (e) {
    caught = e;
  }
  expect(caught, `options ${JSON.stringify(o)} should be rejected`).to.be.instanceOf(InvalidInputError);
  expect((caught as Error).message).to.include(option);
}

describe('generateRoom', () => {
  it('is deterministic: the same options give the same lines, another seed other lines', () => {
    const a = linesOf(small);
    const b = [...generateRoom({ ...small })];
    expect(b).to.deep.equal(a);
    const c = [...generateRoom({ ...small, seed: 43 })];
    expect(c).to.have.length(a.length);
    expect(c[0]).to.not.equal(a[0]);
    expect(c.filter((line, i) => line === a[i])).to.have.length(0);
  });

  it('yields the requested number of lines, each a valid event of the room with no trailing newline', () => {
    const lines = linesOf(small);
    expect(lines).to.have.length(small.events);
    const roomID = validateGenerateOptions(small).roomID;
    expect(roomID).to.equal('!synthetic-42:example.org');
    for (const line of lines) {
      expect(line.endsWith('\n')).to.equal(false);
      const e = parseEvent(line);
      expect(e.roomID).to.equal(roomID);
      expect(e.eventID).to.match(/^\$[A-Za-z0-9_-]{43}$/);
      expect(e.sender).to.match(/^@user\d+:(example\.org|matrix\.org|remote\.net)$/);
    }
  });

  it('makes one linear chain: depth 1, 2, 3, ..., prev_events naming the line before, unique IDs, rising timestamps', () => {
    const events = eventsOf(small);
    const ids = new Set<string>();
    events.forEach((e, i) => {
      expect(e.depth).to.equal(i + 1);
      expect(e.prevEventIDs).to.deep.equal(i === 0 ? [] : [events[i - 1]!.eventID]);
      if (i > 0) expect(e.originServerTS).to.be.greaterThan(events[i - 1]!.originServerTS);
      ids.add(e.eventID);
    });
    expect(ids.size).to.equal(events.length);
  });

  it('starts with create, the creator joining, power levels, join rules, history visibility, name and topic', () => {
    const events = eventsOf(small);
    const creator = '@user1:example.org';
    expect(events.slice(0, 7).map((e) => e.type)).to.deep.equal([
      'm.room.create',
      'm.room.member',
      'm.room.power_levels',
      'm.room.join_rules',
      'm.room.history_visibility',
      'm.room.name',
      'm.room.topic',
    ]);
    const [create, join, power, rules, visibility] = events;
    expect(create!.stateKey).to.equal('');
    expect(create!.content).to.deep.equal({ creator, room_version: '10' });
    expect(create!.authEventIDs).to.deep.equal([]);
    expect(join!.stateKey).to.equal(creator);
    expect(join!.sender).to.equal(creator);
    expect(join!.content.membership).to.equal('join');
    expect(join!.authEventIDs).to.deep.equal([create!.eventID]);
    expect((power!.content.users as Record<string, number>)[creator]).to.equal(100);
    expect(power!.authEventIDs).to.deep.equal([create!.eventID, join!.eventID]);
    expect(rules!.content).to.deep.equal({ join_rule: 'public' });
    expect(visibility!.content).to.deep.equal({ history_visibility: 'shared' });
    for (const e of events.slice(0, 7)) expect(e.stateKey).to.equal(e.type === 'm.room.member' ? creator : '');
  });

  it('has auth_events naming create, the current power levels and the sender\'s current membership', () => {
    const events = eventsOf(small);
    const createID = events[0]!.eventID;
    // The first three were checked above.
    let powerLevelsID = events[2]!.eventID;
    const memberEvent = new Map<string, string>([[events[1]!.sender, events[1]!.eventID]]);
    const seen = new Set(events.slice(0, 3).map((e) => e.eventID));
    for (const e of events.slice(3)) {
      expect(e.authEventIDs[0]).to.equal(createID);
      expect(e.authEventIDs).to.include(powerLevelsID);
      const own = memberEvent.get(e.sender);
      if (own) expect(e.authEventIDs).to.include(own);
      expect(new Set(e.authEventIDs).size).to.equal(e.authEventIDs.length);
      for (const id of e.authEventIDs) expect(seen.has(id), `auth event ${id} is earlier`).to.equal(true);
      if (e.type === 'm.room.power_levels') powerLevelsID = e.eventID;
      if (e.type === 'm.room.member') memberEvent.set(e.stateKey!, e.eventID);
      seen.add(e.eventID);
    }
  });

  it('makes about stateFraction of the events state events', () => {
    for (const stateFraction of [0.2, 0.05, 0.5]) {
      const o = { ...small, stateFraction };
      const events = [...generateRoom(o)].map((l) => parseEvent(l));
      const state = events.filter((e) => e.stateKey !== undefined).length;
      expect(state, `stateFraction ${stateFraction}`).to.equal(plannedStateEvents(o));
      expect(Math.abs(state / events.length - Math.max(stateFraction, (300 + 6) / 3000))).to.be.lessThan(0.01);
    }
  });

  it('has exactly `members` distinct users ever join, most of them by 60% of the room', () => {
    const events = eventsOf(small);
    const everJoined = new Set<string>();
    let joinedBy60 = 0;
    events.forEach((e, i) => {
      if (e.type === 'm.room.member' && e.content.membership === 'join') everJoined.add(e.stateKey!);
      if (i === Math.floor(events.length * 0.6)) joinedBy60 = everJoined.size;
    });
    expect(everJoined.size).to.equal(small.members);
    expect(joinedBy60).to.be.greaterThan(small.members * 0.9);
    // Also when the state budget is only just enough for the joins.
    const tight = { members: 50, events: 60, seed: 7, stateFraction: 0 };
    const tightJoined = new Set(
      [...generateRoom(tight)]
        .map((l) => parseEvent(l))
        .filter((e) => e.type === 'm.room.member' && e.content.membership === 'join')
        .map((e) => e.stateKey),
    );
    expect(tightJoined.size).to.equal(50);
  });

  it('has senders joined when they send, members change their own joins and leaves, the creator moderates', () => {
    const events = eventsOf(small);
    const creator = events[0]!.sender;
    const kinds = new Map<string, number>();
    const count = (k: string) => kinds.set(k, (kinds.get(k) ?? 0) + 1);
    const invited = new Set<string>();
    replay(events.slice(1), (e, membership) => {
      if (e.type !== 'm.room.member') {
        expect(membership.get(e.sender), `${e.type} sender ${e.sender} at depth ${e.depth}`).to.equal('join');
        count(e.type);
        if (e.stateKey !== undefined && e.type !== 'm.room.member') expect(e.sender).to.equal(creator);
        return;
      }
      const target = e.stateKey!;
      const before = membership.get(target);
      const m = e.content.membership;
      expect(target).to.match(/^@user\d+:/);
      if (m === 'join') {
        expect(e.sender).to.equal(target);
        expect(before).to.not.equal('ban');
        count(before === 'join' ? 'profile' : before === 'invite' ? 'invitee join' : before === 'leave' ? 'rejoin' : 'join');
        if (before === 'invite') invited.delete(target);
      } else if (m === 'invite') {
        expect(before).to.equal(undefined);
        expect(membership.get(e.sender)).to.equal('join');
        invited.add(target);
        count('invite');
      } else if (m === 'leave' || m === 'ban') {
        expect(before).to.equal('join');
        expect(target).to.not.equal(creator);
        expect(e.sender === target || e.sender === creator).to.equal(true);
        if (m === 'ban') expect(e.sender).to.equal(creator);
        count(m === 'ban' ? 'ban' : e.sender === target ? 'leave' : 'kick');
      } else {
        expect.fail(`unexpected membership ${String(m)}`);
      }
    });
    expect(invited.size, 'every invitee joins later').to.equal(0);
    for (const k of ['m.room.message', 'm.room.redaction', 'join', 'rejoin', 'profile', 'invite', 'invitee join', 'leave', 'kick']) {
      expect(kinds.get(k) ?? 0, k).to.be.greaterThan(0);
    }
  });

  it('has messages with a body and msgtype m.text, and about 1% redactions of earlier messages', () => {
    const events = eventsOf(small);
    const byID = new Map<string, RoomEvent>();
    const redacted = new Set<string>();
    let redactions = 0;
    for (const e of events) {
      if (e.type === 'm.room.message') {
        expect(e.content.msgtype).to.equal('m.text');
        expect(e.content.body).to.be.a('string').and.not.equal('');
      }
      if (e.type === 'm.room.redaction') {
        redactions++;
        expect(e.stateKey).to.equal(undefined);
        expect(JSON.parse(e.json).redacts).to.equal(e.redacts);
        expect(e.content.reason).to.be.a('string');
        const target = byID.get(e.redacts!);
        expect(target, 'redacts an earlier event').to.not.equal(undefined);
        expect(target!.type).to.equal('m.room.message');
        expect(redacted.has(e.redacts!), 'redacted once').to.equal(false);
        redacted.add(e.redacts!);
      }
      byID.set(e.eventID, e);
    }
    expect(redactions / events.length).to.be.within(0.004, 0.02);
  });

  it('uses the given room ID, servers and room version (redacts in content from v11)', () => {
    const o: GenerateOptions = {
      members: 40,
      events: 400,
      seed: 3,
      roomID: '!custom:host.test',
      serverNames: ['host.test', 'other.test:8448'],
      roomVersion: '11',
    };
    const events = [...generateRoom(o)].map((l) => parseEvent(l, '11'));
    // From v11 the creator is the create event's sender (MSC2175): content names no creator.
    expect(events[0]!.content).to.deep.equal({ room_version: '11' });
    expect(events[0]!.sender).to.equal('@user1:host.test');
    const servers = new Set(events.map((e) => e.sender.slice(e.sender.indexOf(':') + 1)));
    expect([...servers].sort()).to.deep.equal(['host.test', 'other.test:8448']);
    for (const e of events) {
      expect(e.roomID).to.equal('!custom:host.test');
      if (e.type === 'm.room.redaction') {
        expect(JSON.parse(e.json).redacts).to.equal(undefined);
        expect(e.content.redacts).to.equal(e.redacts);
      }
    }
    // Other options, other event IDs, even with the same seed.
    const ids = new Set(events.map((e) => e.eventID));
    const other = [...generateRoom({ ...o, roomID: '!other:host.test' })].map((l) => parseEvent(l, '11').eventID);
    expect(other.filter((id) => ids.has(id))).to.have.length(0);
  });

  it('handles the edge cases: one member, the fewest events, every event a state event', () => {
    const one = [...generateRoom({ members: 1, events: 7, seed: 1 })];
    expect(one).to.have.length(7);
    const alone = [...generateRoom({ members: 1, events: 200, seed: 1, stateFraction: 1 })].map((l) => parseEvent(l));
    expect(alone.every((e) => e.stateKey !== undefined && e.sender === '@user1:example.org')).to.equal(true);
    const none = [...generateRoom({ members: 5, events: 200, seed: 1, stateFraction: 0 })].map((l) => parseEvent(l));
    expect(none.filter((e) => e.stateKey !== undefined)).to.have.length(7 + 4);
  });

  it('counts each kind of event', () => {
    const { lines, stats } = generateRoomWithStats(small);
    const all = [...lines];
    expect(all).to.deep.equal(linesOf(small));
    const { state, ...kinds } = stats;
    expect(Object.values(kinds).reduce((a, b) => a + b, 0)).to.equal(small.events);
    expect(state).to.equal(all.filter((l) => parseEvent(l).stateKey !== undefined).length);
    expect(stats.join + stats.inviteeJoin + 1).to.equal(small.members);
  });

  it('streams a medium room with bounded memory work', function () {
    const o = { members: 3000, events: 30_000, seed: 9 };
    let n = 0;
    let last = '';
    for (const line of generateRoom(o)) {
      n++;
      last = line;
    }
    expect(n).to.equal(30_000);
    expect(parseEvent(last).depth).to.equal(30_000);
  });
});

describe('validateGenerateOptions', () => {
  it('fills the defaults', () => {
    expect(validateGenerateOptions({})).to.deep.equal({
      members: 2000,
      events: 20_000,
      seed: 1,
      roomID: '!synthetic-1:example.org',
      serverNames: ['example.org', 'matrix.org', 'remote.net'],
      stateFraction: 0.2,
      roomVersion: '10',
      forkShare: 0,
    });
    expect(validateGenerateOptions({ seed: 5, serverNames: ['a.test'] }).roomID).to.equal('!synthetic-5:a.test');
  });

  it('rejects bad options with InvalidInputError naming the option', () => {
    expectInvalid({ members: 1.5 }, 'members');
    expectInvalid({ members: 0 }, 'members');
    expectInvalid({ members: '10' as unknown as number }, 'members');
    expectInvalid({ events: Number.NaN }, 'events');
    expectInvalid({ members: 100, events: 105 }, 'events');
    expectInvalid({ seed: 0.5 }, 'seed');
    expectInvalid({ seed: Number.POSITIVE_INFINITY }, 'seed');
    expectInvalid({ stateFraction: -0.1 }, 'stateFraction');
    expectInvalid({ stateFraction: 1.5 }, 'stateFraction');
    expectInvalid({ stateFraction: Number.NaN }, 'stateFraction');
    expectInvalid({ roomID: 'synthetic:example.org' }, 'roomID');
    expectInvalid({ roomID: '!nocolon' }, 'roomID');
    expectInvalid({ roomID: `!${'x'.repeat(300)}:example.org` }, 'roomID');
    expectInvalid({ serverNames: [] }, 'serverNames');
    expectInvalid({ serverNames: ['ok.test', 'bad server'] }, 'serverNames[1]');
    expectInvalid({ serverNames: ['a.test', 'a.test'] }, 'serverNames[1]');
    expectInvalid({ roomVersion: '' }, 'roomVersion');
    expectInvalid({ roomVersion: '1' }, 'roomVersion');
    expect(() => generateRoom({ members: 10, events: 5, seed: 1 }), 'generateRoom checks eagerly').to.throw(InvalidInputError, /events/);
  });

  it('accepts the smallest room and the boundaries of stateFraction', () => {
    expect(validateGenerateOptions({ members: 10, events: 16 }).events).to.equal(16);
    expect(validateGenerateOptions({ stateFraction: 0 }).stateFraction).to.equal(0);
    expect(validateGenerateOptions({ stateFraction: 1 }).stateFraction).to.equal(1);
    expect(validateGenerateOptions({ seed: -3 }).roomID).to.equal('!synthetic--3:example.org');
  });
});

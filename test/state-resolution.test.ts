import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { authEventTypes, checkEventAuth, InvalidInputError, resolveState, type RoomEvent, stateMapKey, UnknownEventsError } from '../src/index.js';
import { compareCodePoints } from '../src/matrix/canonical-json.js';
import { roomVersionRules } from '../src/matrix/room-versions.js';
import {
  authChain, authDifference, conflictedSubgraph, EventCache, powerOrderCompare, splitStateSets, topologicalSort,
} from '../src/matrix/state-resolution/index.js';
import { senderPowerFromAuthEvents } from '../src/matrix/state-resolution/iterative-auth.js';
import { authEventIDsOf } from '../src/matrix/auth/views.js';
import {
  type FixtureEvent, fixtureEvent, type ResolutionCase, readJSONL, recordingLoader, referenceID, shuffled, toMap, toObject, vectorsDir,
} from './support/matrix-fixtures.js';

/**
 * State resolution against the public known-answer cases of Synapse, ruma, gomatrixserverlib and continuwuity
 * (33 resolutions, 25 component vectors), their DAGs walked where a case has one, and properties every
 * resolution has: the order of the state sets does not matter, one set resolves to itself.
 */


interface Prepared {
  c: ResolutionCase;
  events: Map<string, RoomEvent>;
  stateSets: Map<string, string>[];
  expected: Record<string, string>;
}

/**
 * The case's inputs as resolveState takes them. gomatrixserverlib's v1 case resolves with extra auth events given
 * beside the state (`v1_auth_event_ids`); resolveState takes states only, so those events join every state set
 * (unconflicted there) and the expected state.
 */
function prepare(c: ResolutionCase): Prepared {
  const events = new Map(c.events.map((e) => [e.event_id, fixtureEvent(e, c.room_version, c.dag?.prev_events_are_node_ids)]));
  const seeds = new Map((c.v1_auth_event_ids ?? []).map((id) => {
    const e = events.get(id)!;
    return [stateMapKey(e.type, e.stateKey!), id] as const;
  }));
  const stateSets = c.state_sets.map((s) => new Map([...seeds, ...toMap(s)]));
  return { c, events, stateSets, expected: toObject(new Map([...seeds, ...toMap(c.expected)])) };
}

const STATERES = vectorsDir('stateres');
const FILES = ['synapse.jsonl', 'ruma.jsonl', 'gomatrixserverlib.jsonl', 'continuwuity.jsonl'];
const cases = STATERES ? FILES.flatMap((f) => readJSONL<ResolutionCase>(path.join(STATERES, f))).map(prepare) : [];

/** Walks a `dag` case: the state before and after each event in file order, merges resolved. */
async function walkDAG(p: Prepared): Promise<{ before: Map<string, Map<string, string>>; after: Map<string, Map<string, string>> }> {
  const before = new Map<string, Map<string, string>>();
  const after = new Map<string, Map<string, string>>();
  const { load } = recordingLoader(p.events);
  for (const raw of p.c.events) {
    const prevs = (Array.isArray(raw.prev_events) ? raw.prev_events : []).map(referenceID)
      .map((id) => (p.c.dag!.prev_events_are_node_ids ? `$${id}:example.com` : id));
    const states = prevs.map((id) => {
      const s = after.get(id);
      if (!s) throw new Error(`${raw.event_id}'s prev event ${id} comes later in the file`);
      return s;
    });
    const state = states.length === 0 ? new Map<string, string>() : states.length === 1 ? new Map(states[0]) : await resolveState(p.c.room_version, states, load);
    before.set(raw.event_id, state);
    const next = new Map(state);
    if (typeof raw.state_key === 'string') next.set(stateMapKey(raw.type, raw.state_key), raw.event_id);
    after.set(raw.event_id, next);
  }
  return { before, after };
}

describe('state resolution', () => {
  if (STATERES) {
    describe('known answers (vectors/stateres)', () => {
      it('holds the 33 cases the vectors README lists, by room version', () => {
        const byVersion: Record<string, number> = {};
        for (const { c } of cases) byVersion[c.room_version] = (byVersion[c.room_version] ?? 0) + 1;
        expect(cases).to.have.length(33);
        expect(byVersion).to.deep.equal({ 1: 1, 2: 9, 6: 8, 10: 9, 11: 2, 12: 4 });
      });

      for (const p of cases) {
        it(`v${p.c.room_version} ${p.c.id}`, async () => {
          const { load, calls } = recordingLoader(p.events);
          const resolved = await resolveState(p.c.room_version, p.stateSets, load);
          expect(toObject(resolved)).to.deep.equal(p.expected);
          // Batched: no event asked for twice, a call per auth chain generation at most.
          const asked = calls.flat();
          expect(new Set(asked).size, 'an event was asked for twice').to.equal(asked.length);
          expect(calls.length).to.be.at.most(p.events.size);
        });
      }

      const dagCases = cases.filter((p) => p.c.dag);
      for (const p of dagCases) {
        it(`DAG walk: v${p.c.room_version} ${p.c.id}`, async () => {
          const { before, after } = await walkDAG(p);
          expect(toObject(before.get(p.c.dag!.resolve_at)!)).to.deep.equal(p.expected);
          expect(p.c.dag!.state_sets_are_after.map((id) => toObject(after.get(id)!))).to.deep.equal(p.c.state_sets.map((s) => toObject(toMap(s))));
        });
      }
    });

    describe('properties, on the known-answer cases', () => {
      it('the order of the state sets does not change the result (every case, 6 orders each)', async () => {
        for (const p of cases) {
          const { load } = recordingLoader(p.events);
          const reference = toObject(await resolveState(p.c.room_version, p.stateSets, load));
          for (let seed = 1; seed <= 6; seed++) {
            const again = await resolveState(p.c.room_version, shuffled(p.stateSets, seed * 7919), load);
            expect(toObject(again), `${p.c.id}, order seed ${seed}`).to.deep.equal(reference);
          }
        }
      });

      it('one state set resolves to itself, without loading anything', async () => {
        const noLoads = async () => {
          throw new Error('one state set needs no events');
        };
        for (const p of cases) {
          for (const set of p.stateSets) {
            expect(toObject(await resolveState(p.c.room_version, [set], noLoads))).to.deep.equal(toObject(set));
            expect(toObject(await resolveState(p.c.room_version, [set, new Map(set)], noLoads))).to.deep.equal(toObject(set));
          }
        }
      });

      it('an event the loader lacks is an UnknownEventsError naming it, for v1, v2 and v2.1', async () => {
        for (const version of ['1', '2', '10', '12']) {
          const p = cases.find((x) => x.c.room_version === version && x.stateSets.length > 1)!;
          const conflictedID = [...splitStateSets(p.stateSets, version === '1' ? 'v1' : 'v2').conflicted.values()][0]!.values().next().value!;
          const partial = new Map(p.events);
          partial.delete(conflictedID);
          const { load } = recordingLoader(partial);
          const err = await resolveState(version, p.stateSets, load).then(() => undefined, (e: unknown) => e);
          expect(err, `v${version} ${p.c.id}`).to.be.instanceOf(UnknownEventsError);
          expect((err as UnknownEventsError).eventIDs).to.deep.equal([conflictedID]);
          expect((err as Error).message).to.include(conflictedID);
        }
      });

      it('auth chains load a generation per call: as many calls as the deepest chain is long, plus one', async () => {
        const p = cases.find((x) => x.c.id.endsWith('test_ban_vs_pl'))!;
        const { load, calls } = recordingLoader(p.events);
        await resolveState('2', p.stateSets, load);
        const rules = roomVersionRules('2');
        const depthOf = (id: string): number => {
          const auth = authEventIDsOf(rules, p.events.get(id)!);
          return auth.length === 0 ? 1 : 1 + Math.max(...auth.map(depthOf));
        };
        const deepest = Math.max(...p.stateSets.flatMap((s) => [...s.values()]).map(depthOf));
        expect(calls.length).to.be.at.most(deepest + 1);
        expect(calls[0]!.length).to.be.greaterThan(1);
      });
    });

    describe('component vectors (vectors/stateres/aux-*.jsonl)', () => {
      type Aux = Record<string, unknown> & { kind: string; id: string };
      const aux = ['aux-synapse.jsonl', 'aux-ruma.jsonl', 'aux-gomatrixserverlib.jsonl'].flatMap((f) => readJSONL<Aux>(path.join(STATERES, f)));
      const sorted = (xs: Iterable<unknown>) => [...xs].map(String).sort();
      const graphOf = (g: Record<string, string[]>) => (id: string) => g[id] ?? [];

      it('holds the 25 vectors the README lists', () => expect(aux).to.have.length(25));

      for (const v of aux) {
        it(`${v.kind}: ${v.id}`, async () => {
          switch (v.kind) {
            case 'full_auth_chain':
              expect(sorted(authChain(graphOf(v.auth_graph as Record<string, string[]>), v.start_event_ids as string[]))).to.deep.equal(sorted(v.expected_full_auth_chain as string[]));
              break;
            case 'conflicted_subgraph': {
              const graph = graphOf(v.auth_graph as Record<string, string[]>);
              expect(sorted(authChain(graph, v.start_event_ids as string[]))).to.deep.equal(sorted(v.expected_full_auth_chain as string[]));
              expect(sorted(conflictedSubgraph(graph, new Set(v.conflicted_event_ids as string[])))).to.deep.equal(sorted(v.expected_conflicted_subgraph as string[]));
              break;
            }
            case 'auth_difference': {
              const sets = (v.state_sets as Record<string, string>[]).map((s) => Object.values(s));
              expect(sorted(authDifference(graphOf(v.auth_graph as Record<string, string[]>), sets))).to.deep.equal(sorted(v.expected_auth_difference as string[]));
              break;
            }
            case 'lexicographical_topological_sort': {
              const graph = v.graph as Record<string, string[]>;
              expect(topologicalSort(Object.keys(graph), graphOf(graph), compareCodePoints)).to.deep.equal(v.expected_order);
              break;
            }
            case 'power_tiebreak_sort': {
              const input = v.input as { event_id: string; power_level: number; origin_server_ts: number }[];
              const facts = new Map(input.map((i) => [i.event_id, { power: i.power_level, originServerTS: i.origin_server_ts }]));
              const ids = shuffled(input.map((i) => i.event_id), 3);
              expect(topologicalSort(ids, () => [], powerOrderCompare((id) => facts.get(id)!))).to.deep.equal(v.expected_order);
              break;
            }
            case 'reverse_topological_power_ordering': {
              const version = v.room_version as string;
              const rules = roomVersionRules(version);
              const events = new Map((v.events as FixtureEvent[]).map((e) => [e.event_id, fixtureEvent(e, version)]));
              const cache = new EventCache(recordingLoader(events).load, 'the test');
              await cache.fetch(events.keys());
              const compare = powerOrderCompare((id) => {
                const e = cache.get(id);
                return { power: senderPowerFromAuthEvents(rules, cache, e), originServerTS: e.originServerTS };
              });
              const order = topologicalSort(shuffled([...events.keys()], 5), (id) => authEventIDsOf(rules, cache.get(id)), compare);
              expect(order).to.deep.equal(v.expected_order);
              break;
            }
            case 'split_conflicted': {
              const { unconflicted, conflicted } = splitStateSets((v.state_sets as Record<string, string>[]).map(toMap), v.algorithm as 'v1' | 'v2');
              expect(sorted(unconflicted.values())).to.deep.equal(sorted(v.expected_unconflicted as string[]));
              expect(sorted([...conflicted.values()].flatMap((s) => [...s]))).to.deep.equal(sorted(v.expected_conflicted as string[]));
              break;
            }
            case 'split_conflicted_map': {
              const sets = (v.state_sets as Record<string, number>[]).map((s) => new Map(Object.entries(s)));
              const { unconflicted, conflicted } = splitStateSets(sets, v.algorithm as 'v1' | 'v2');
              expect(Object.fromEntries(unconflicted)).to.deep.equal(v.expected_unconflicted);
              const asLists = Object.fromEntries([...conflicted].map(([k, s]) => [k, [...s].sort((a, b) => a - b)]));
              const expected = Object.fromEntries(Object.entries(v.expected_conflicted as Record<string, number[]>).map(([k, s]) => [k, [...s].sort((a, b) => a - b)]));
              expect(asLists).to.deep.equal(expected);
              break;
            }
            default:
              throw new Error(`a vector kind this test does not know: ${v.kind}`);
          }
        });
      }
    });
  }

  describe('without vectors', () => {
    it('resolves no state sets to the empty state, and refuses an unknown room version by name', async () => {
      const noLoads = async () => new Map<string, RoomEvent>();
      expect((await resolveState('10', [], noLoads)).size).to.equal(0);
      const err = await resolveState('13', [], noLoads).then(() => undefined, (e: unknown) => e);
      expect((err as Error).message).to.match(/unknown room version "13"/);
    });

    it('auth events that cite each other in a cycle are an InvalidInputError naming them, not a hang', () => {
      const graph: Record<string, string[]> = { $a: ['$b'], $b: ['$c'], $c: ['$a'], $d: [] };
      expect(() => topologicalSort(Object.keys(graph), (id) => graph[id]!, compareCodePoints)).to.throw(InvalidInputError, /cycle.*\$a/);
    });

    it('refuses state sets that are not Maps, and a loader that is not a function, naming them', async () => {
      const err = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as Error);
      expect((await err(resolveState('10', [{}] as never, async () => new Map())))!.message).to.match(/stateSets\[0\] must be a Map/);
      expect((await err(resolveState('10', [], 'no' as never)))!.message).to.match(/loadEvents must be a function/);
    });

    it('v1 by hand: power levels replayed by ascending depth until one is refused; another key takes the deepest allowed event', async () => {
      let depth = 0;
      const ev = (type: string, sender: string, content: Record<string, unknown>, stateKey = ''): RoomEvent => {
        depth++;
        return {
          eventID: `$v1e${depth}:a.example`, roomID: '!r:a.example', type, stateKey, sender, depth, originServerTS: depth, prevEventIDs: [],
          authEventIDs: [], content, redacts: undefined, roomVersion: '1', json: '{}',
        };
      };
      const alice = '@alice:a.example';
      const bob = '@bob:b.example';
      const base = [
        ev('m.room.create', alice, { creator: alice }), ev('m.room.member', alice, { membership: 'join' }, alice),
        ev('m.room.join_rules', alice, { join_rule: 'public' }), ev('m.room.member', bob, { membership: 'join' }, bob),
      ];
      const p1 = ev('m.room.power_levels', alice, { users: { [alice]: 100, [bob]: 50 } });
      const p2 = ev('m.room.power_levels', bob, { users: { [alice]: 100, [bob]: 100 } }); // Bob raises himself above his 50
      const t1 = ev('m.room.topic', alice, { topic: 'by alice' });
      const t2 = ev('m.room.topic', bob, { topic: 'by bob' }); // deeper, and allowed: Bob has 50 in P1, the topic needs 50
      const n1 = ev('m.room.name', alice, { name: 'a' });
      const n2 = ev('m.room.name', '@carol:c.example', { name: 'c' }); // deeper, by a non-member: refused
      const all = new Map([...base, p1, p2, t1, t2, n1, n2].map((e) => [e.eventID, e]));
      const stateOf = (events: RoomEvent[]) => new Map(events.map((e) => [stateMapKey(e.type, e.stateKey!), e.eventID]));
      const s1 = stateOf([...base, p1, t1, n1]);
      const s2 = stateOf([...base, p2, t2, n2]);
      const { load } = recordingLoader(all);
      for (const sets of [[s1, s2], [s2, s1]]) {
        const resolved = await resolveState('1', sets, load);
        expect(resolved.get(stateMapKey('m.room.power_levels', ''))).to.equal(p1.eventID);
        expect(resolved.get(stateMapKey('m.room.topic', ''))).to.equal(t2.eventID);
        expect(resolved.get(stateMapKey('m.room.name', ''))).to.equal(n1.eventID);
        expect(resolved.size).to.equal(base.length + 3);
      }
      // A key only one set has is no conflict in v1 (it is in v2): it is kept as it is, with no load.
      const noLoads = async () => {
        throw new Error('no load expected');
      };
      const partial = await resolveState('1', [stateOf([...base, t1]), stateOf(base)], noLoads);
      expect(partial.get(stateMapKey('m.room.topic', ''))).to.equal(t1.eventID);
    });

    it('random state maps: one set resolves to itself, and agreeing sets to that set, for every room version', async () => {
      const noLoads = async () => {
        throw new Error('no load expected');
      };
      for (let seed = 1; seed <= 20; seed++) {
        const keys = shuffled(['m.room.name\u0000', 'm.room.topic\u0000', 'm.room.member\u0000@a:x', 'm.room.member\u0000@b:x', 'x.custom\u0000k'], seed).slice(0, 1 + (seed % 5));
        const set = new Map(keys.map((k, i) => [k, `$e${seed}_${i}`]));
        for (let v = 1; v <= 12; v++) {
          expect(toObject(await resolveState(String(v), [set], noLoads))).to.deep.equal(toObject(set));
          expect(toObject(await resolveState(String(v), [set, new Map([...set].reverse())], noLoads))).to.deep.equal(toObject(set));
        }
      }
    });
  });
});

/**
 * A random room: events on random branches of a DAG (each event's prev events one or two earlier events, merges
 * resolved), each kept only when the auth rules allow it against the state before it, as a server would.
 */
async function randomRoom(version: string, seed: number, size: number) {
  let s = seed;
  const rand = (n: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % n;
  };
  const users = ['@alice:a.example', '@bob:b.example', '@carol:c.example', '@dave:d.example'];
  const v12 = version === '12';
  const events = new Map<string, RoomEvent>();
  const after = new Map<string, Map<string, string>>();
  const { load } = recordingLoader(events);
  const roomID = v12 ? '!create' : '!room:a.example';
  const make = (n: number, type: string, sender: string, content: Record<string, unknown>, stateKey: string | undefined, prevs: string[], state: Map<string, string>): RoomEvent => {
    const base: RoomEvent = {
      eventID: n === 0 && v12 ? '$create' : `$r${n}:a.example`, roomID, type, stateKey, sender, depth: n + 1, originServerTS: 1000 + rand(50),
      prevEventIDs: prevs, authEventIDs: [], content, redacts: undefined, roomVersion: version, json: JSON.stringify({ type, content }),
    };
    const authEventIDs = authEventTypes(version, base).flatMap(({ type: t, stateKey: k }) => state.get(stateMapKey(t, k)) ?? []);
    return { ...base, authEventIDs };
  };
  const add = (e: RoomEvent, state: Map<string, string>) => {
    events.set(e.eventID, e);
    const next = new Map(state);
    if (e.stateKey !== undefined) next.set(stateMapKey(e.type, e.stateKey), e.eventID);
    after.set(e.eventID, next);
  };
  const creator = users[0]!;
  const create = make(0, 'm.room.create', creator, { room_version: version, ...(v12 ? {} : { creator }) }, '', [], new Map());
  add(create, new Map());
  const join = make(1, 'm.room.member', creator, { membership: 'join' }, creator, [create.eventID], after.get(create.eventID)!);
  add(join, after.get(create.eventID)!);
  const ids = () => [...after.keys()];
  for (let n = 2; events.size < size && n < size * 20; n++) {
    const all = ids();
    const prevs = [...new Set([all[all.length - 1 - rand(Math.min(4, all.length))]!, ...(rand(3) === 0 ? [all[rand(all.length)]!] : [])])];
    const states = prevs.map((p) => after.get(p)!);
    const state = states.length === 1 ? new Map(states[0]) : await resolveState(version, states, load);
    const sender = users[rand(users.length)]!;
    const target = users[rand(users.length)]!;
    const level = () => [0, 50, 100][rand(3)]!;
    const choices: [string, Record<string, unknown>, string | undefined][] = [
      ['m.room.member', { membership: 'join' }, sender],
      ['m.room.member', { membership: ['ban', 'leave', 'invite'][rand(3)] }, target],
      ['m.room.power_levels', { users: Object.fromEntries(users.filter((u) => !(v12 && u === creator)).map((u) => [u, level()])) }, ''],
      ['m.room.join_rules', { join_rule: rand(2) ? 'public' : 'invite' }, ''],
      ['m.room.topic', { topic: `t${n}` }, ''],
      ['m.room.message', { body: `m${n}` }, undefined],
    ];
    const [type, content, stateKey] = choices[rand(choices.length)]!;
    const e = make(n, type, sender, content, stateKey, prevs, state);
    const lookup = (t: string, k: string) => {
      const id = state.get(stateMapKey(t, k));
      return id === undefined ? undefined : events.get(id);
    };
    if (checkEventAuth(version, e, lookup).allowed) add(e, state);
  }
  return { events, after, load };
}

describe('state resolution: random rooms (v1, v2, v10, v12)', () => {
  it('the states after random events resolve the same in every order, and each alone to itself', async function () {
    this.timeout(120_000);
    let merges = 0;
    for (const version of ['1', '2', '10', '12']) {
      for (let seed = 1; seed <= 6; seed++) {
        const { after, load } = await randomRoom(version, seed * 31 + Number(version), 40);
        const stateIDs = [...after.keys()];
        for (let pick = 0; pick < 4; pick++) {
          const sets = shuffled(stateIDs, seed * 100 + pick).slice(0, 2 + (pick % 3)).map((id) => after.get(id)!);
          const reference = toObject(await resolveState(version, sets, load));
          for (let order = 1; order <= 3; order++) {
            expect(toObject(await resolveState(version, shuffled(sets, order * 17 + pick), load)), `v${version} seed ${seed} pick ${pick}`).to.deep.equal(reference);
          }
          merges++;
        }
        for (const id of stateIDs.slice(-5)) expect(toObject(await resolveState(version, [after.get(id)!], load))).to.deep.equal(toObject(after.get(id)!));
      }
    }
    expect(merges).to.equal(96);
  });
});

// The vectors folder is read, never written: this guards against a test copying data into the repository.
if (STATERES) expect(fs.existsSync(path.resolve(import.meta.dirname, 'fixtures/stateres'))).to.equal(false);

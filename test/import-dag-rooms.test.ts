import { expect } from 'chai';
import path from 'node:path';
import { resolveState, stateMapKey, type RoomEvent, type Storage } from '../src/index.js';
import type { DriverUnderTest } from './conformance/harness.js';
import { SUITE_SETTINGS } from './conformance/harness.js';
import { cosmosEmulatorDriver } from './support/drivers-cosmos.js';
import { postgres, sqliteMemory } from './support/drivers.js';
import { type FixtureEvent, fixtureEvent, readJSONL, type ResolutionCase, recordingLoader, referenceID, toObject, vectorsDir } from './support/matrix-fixtures.js';

/**
 * Rooms with forks, through the store's input path on every driver: the public state resolution cases that come
 * with their DAG (Synapse's and continuwuity's graphs: forks on power levels, bans, join rules and topics, merged
 * at the end). Each event is appended in file order as a homeserver would input it, with no state given: the
 * store works out the state before every event from its prev events and resolves where they differ. The state
 * before the case's last event must be the published answer, and the states after the branches' tips the
 * published state sets.
 */


const STATERES = vectorsDir('stateres');
const cases = STATERES
  ? ['synapse.jsonl', 'continuwuity.jsonl', 'ruma.jsonl', 'gomatrixserverlib.jsonl']
    .flatMap((f) => readJSONL<ResolutionCase>(path.join(STATERES, f))).filter((c) => c.dag !== undefined)
  : [];

/** The case's events as the store takes them: Synapse's harness names prev events by node (`PA`), whose IDs are `$PA:example.com`. */
function eventsOf(c: ResolutionCase): RoomEvent[] {
  return withDepths(c.events).map((raw0) => {
    // The harnesses' create events leave room_version out (their rooms are made with the version given beside
    // them); a store reads a room's version from its create event, so it is written in, as a real one has it.
    let raw = raw0.type === 'm.room.create' && raw0.content.room_version === undefined
      ? { ...raw0, content: { ...raw0.content, room_version: c.room_version } } : raw0;
    if (c.dag!.prev_events_are_node_ids) {
      raw = { ...raw, prev_events: (Array.isArray(raw.prev_events) ? raw.prev_events : []).map((p) => [`$${referenceID(p)}:example.com`, {}]) };
    }
    return fixtureEvent(raw, c.room_version);
  });
}

/** Real rooms (vectors/realdata), each one DAG: ruma's bootstrap rooms and MSC4297's problem A (a fork), Dendrite's v1 room. */
const REALDATA = vectorsDir('realdata');
const REAL_ROOMS: readonly [file: string, roomVersion: string][] = [
  ['ruma-bootstrap-public-chat.jsonl', '10'], ['ruma-bootstrap-private-chat.jsonl', '10'],
  ['ruma-MSC4297-problem-A-pdus-v11.jsonl', '11'], ['ruma-MSC4297-problem-A-pdus-v12.jsonl', '12'],
  ['dendrite-transactionrequest-v1.jsonl', '1'],
];

/**
 * ruma's fixtures leave `depth` out (its harness does not read it); a store reads every event back as a PDU, which
 * has one: each gets one more than its deepest prev event, as a server would have given it.
 */
function withDepths(raws: readonly FixtureEvent[]): FixtureEvent[] {
  const depths = new Map<string, number>();
  return raws.map((raw) => {
    const depth = typeof raw.depth === 'number' ? raw.depth
      : 1 + Math.max(0, ...(Array.isArray(raw.prev_events) ? raw.prev_events : []).map((p) => depths.get(referenceID(p)) ?? 0));
    depths.set(raw.event_id, depth);
    return raw.depth === undefined ? { ...raw, depth } : raw;
  });
}

/** The state before each event by walking the DAG with resolveState alone (no store): what the store must agree with. */
async function walk(events: readonly RoomEvent[], roomVersion: string): Promise<Map<string, Record<string, string>>> {
  const { load } = recordingLoader(new Map(events.map((e) => [e.eventID, e])));
  const after = new Map<string, Map<string, string>>();
  const before = new Map<string, Record<string, string>>();
  for (const e of events) {
    const states = e.prevEventIDs.map((id) => after.get(id)!);
    const state = states.length === 0 ? new Map<string, string>() : states.length === 1 ? new Map(states[0]) : await resolveState(roomVersion, states, load);
    before.set(e.eventID, toObject(state));
    const next = new Map(state);
    if (e.stateKey !== undefined) next.set(stateMapKey(e.type, e.stateKey), e.eventID);
    after.set(e.eventID, next);
  }
  return before;
}

/** A state the store holds, as the vectors write one: `type\u0000state_key` -> event ID. */
async function stateMap(storage: Storage, entries: readonly { eventNID: number }[], byID: ReadonlyMap<string, RoomEvent>): Promise<Record<string, string>> {
  const ids = await storage.roomserver.eventIDs(entries.map((e) => e.eventNID) as never);
  return toObject(new Map([...ids.values()].map((id) => {
    const e = byID.get(id)!;
    return [stateMapKey(e.type, e.stateKey!), id];
  })));
}

describe('rooms with forks, input on every driver (vectors/stateres DAG cases)', function () {
  this.timeout(120_000);
  if (!STATERES) {
    it('cannot run: the public vectors are not beside the repository (../shared/vectors/stateres)', function () {
      console.log('    the known-answer DAG rooms live outside the repository, in ../shared/vectors; without them these cases cannot run');
      this.skip();
    });
    return;
  }
  const drivers: DriverUnderTest[] = [sqliteMemory, postgres, cosmosEmulatorDriver()];
  it(`holds the vectors' DAG cases: ${cases.length}`, () => {
    expect(cases.length).to.be.at.least(14);
  });
  for (const driver of drivers) {
    describe(driver.name, () => {
      for (const [file, roomVersion] of REALDATA ? REAL_ROOMS : []) {
        it(`the real room ${file}: the state before every event is the DAG's`, async () => {
          const events = withDepths(readJSONL<FixtureEvent>(path.join(REALDATA!, file))).map((raw) => fixtureEvent(raw, roomVersion));
          const byID = new Map(events.map((e) => [e.eventID, e]));
          const expected = await walk(events, roomVersion);
          const storage = await driver.open(SUITE_SETTINGS);
          try {
            for (const e of events) await storage.roomserver.appendEvent(e);
            for (const e of events) {
              expect(await stateMap(storage, await storage.roomserver.loadStateAtEvent(e.eventID), byID), `before ${e.eventID}`).to.deep.equal(expected.get(e.eventID));
            }
          } finally {
            await storage.close();
          }
        });
      }
      for (const c of cases) {
        it(`v${c.room_version} ${c.id}`, async () => {
          const storage = await driver.open(SUITE_SETTINGS);
          try {
            const events = eventsOf(c);
            const byID = new Map(events.map((e) => [e.eventID, e]));
            for (const e of events) await storage.roomserver.appendEvent(e);
            const before = await storage.roomserver.loadStateAtEvent(c.dag!.resolve_at);
            expect(await stateMap(storage, before, byID), 'the state before the last event').to.deep.equal(toObject(new Map(Object.entries(c.expected))));
            for (const [i, tip] of c.dag!.state_sets_are_after.entries()) {
              const after = await storage.roomserver.loadStateAfterEvent(tip);
              expect(await stateMap(storage, after, byID), `the state after ${tip}`).to.deep.equal(toObject(new Map(Object.entries(c.state_sets[i]!))));
            }
          } finally {
            await storage.close();
          }
        });
      }
    });
  }
});

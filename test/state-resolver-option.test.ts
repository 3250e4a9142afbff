import { expect } from 'chai';
import { createStorage, parseEvent, type RoomEvent } from '../src/index.js';
import type { StateResolver } from '../src/storage/shared/state-resolver.js';

/**
 * A homeserver's own resolver, passed to createStorage: the input path hands it the states that differ (whole, by
 * type and state key) and a loader of the events they name, and stores what it answers as the state.
 */
describe('a state resolver passed to createStorage', () => {
  it('gets the differing states and a loader, and its answer is the state stored', async () => {
    const calls: { roomVersion: string; sets: Record<string, string>[]; loaded: string[] }[] = [];
    // Picks the set holding the lexically greatest topic event ID: not the spec's rule, which shows it is this one that ran.
    const resolver: StateResolver = async (roomVersion, sets, load) => {
      const loaded = await load([...new Set(sets.flatMap((s) => [...s.values()]))]);
      calls.push({ roomVersion, sets: sets.map((s) => Object.fromEntries(s)), loaded: [...loaded.keys()].sort() });
      const topic = (s: ReadonlyMap<string, string>) => s.get('m.room.topic\u0000') ?? '';
      return new Map([...sets].sort((a, b) => (topic(a) < topic(b) ? 1 : -1))[0]!);
    };
    const storage = await createStorage({ backend: 'sqlite', sqlite: { path: ':memory:' }, server_name: 'example.org' }, { stateResolver: resolver });
    try {
      const db = storage.roomserver;
      let ts = 0;
      const ev = (id: string, prev: string[], fields: Record<string, unknown>): RoomEvent => parseEvent(JSON.stringify({
        event_id: id, room_id: '!r:example.org', sender: '@alice:example.org', depth: ++ts, origin_server_ts: ts, prev_events: prev,
        auth_events: [], content: {}, ...fields,
      }), { roomVersion: '10' });
      await db.appendEvents([
        ev('$create', [], { type: 'm.room.create', state_key: '', content: { creator: '@alice:example.org', room_version: '10' } }),
        ev('$alice', ['$create'], { type: 'm.room.member', state_key: '@alice:example.org', content: { membership: 'join' } }),
        ev('$z-topic', ['$alice'], { type: 'm.room.topic', state_key: '', content: { topic: 'z' } }),
        ev('$a-topic', ['$alice'], { type: 'm.room.topic', state_key: '', content: { topic: 'a' } }),
      ]);
      // The fork's two ends differ in the topic: the resolver ran once, on both states, and chose $z-topic.
      expect(calls).to.have.length(1);
      expect(calls[0]!.roomVersion).to.equal('10');
      expect(calls[0]!.sets.map((s) => s['m.room.topic\u0000']).sort()).to.deep.equal(['$a-topic', '$z-topic']);
      expect(calls[0]!.sets.every((s) => s['m.room.create\u0000'] === '$create' && s['m.room.member\u0000@alice:example.org'] === '$alice')).to.equal(true);
      expect(calls[0]!.loaded).to.deep.equal(['$a-topic', '$alice', '$create', '$z-topic']);
      const state = await db.currentState('!r:example.org');
      expect([...(await db.eventIDs(state.map((e) => e.eventNID))).values()].sort()).to.deep.equal(['$alice', '$create', '$z-topic']);
    } finally {
      await storage.close();
    }
  });
});

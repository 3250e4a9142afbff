import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { canonicalJSON, computeEventID, createStorage, type Storage } from '../src/index.js';
import { runCli, runCliReported } from './support/cli.js';
import { sharedEmulator } from './support/drivers-cosmos.js';
import { emulatorConfig } from './support/cosmos-emulator.js';
import { adminPool, dropSchema, freshSchemaName, testDatabaseURL } from './support/postgres.js';
import { vectorsDir } from './support/matrix-fixtures.js';

/**
 * Importing real rooms: PDUs that other servers wrote, as published in public Matrix implementations' test suites
 * (the public vectors beside the repository, ../shared/vectors/real-events, each file naming its source; without them
 * the run says these cases cannot run, and registers none), of room versions 1, 6, 9, 10 and 12. Every PDU gets
 * its published event ID; `state` then gives what the events imply; every file format gives the same store;
 * the three drivers give the same state; and the refusals (a tampered hash, no create event, client-format
 * events) are as documented.
 */

interface Case { kind: string; roomVersion?: string; input: Record<string, unknown>; expected: unknown }
interface RoomSet { roomId: string; roomVersion: string; events: (string | null)[] }
interface Fixture { source: { repository: string; path: string | string[] }; cases: Case[]; roomSets?: RoomSet[] }

const DIR = vectorsDir('real-events');

/** A real room: its PDUs in the order its source gives them, with their published IDs (null where unpublished). */
interface RealRoom { name: string; source: string; roomID: string; roomVersion: string; pdus: Record<string, unknown>[]; ids: (string | null)[] }

function realRooms(): RealRoom[] {
  const rooms: RealRoom[] = [];
  if (!DIR) return rooms;
  for (const file of fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort()) {
    const f = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')) as Fixture;
    for (const set of f.roomSets ?? []) {
      const withID = new Map(f.cases.filter((c) => c.kind === 'event-id' && typeof c.expected === 'string').map((c) => [c.expected as string, c.input]));
      // A room's events whose ID its source does not publish: the PDUs of the file's content-hash cases that are
      // no event-id case, in file order (the source publishes their content hash only).
      const known = new Set([...withID.values()].map((p) => canonicalJSON(p)));
      const unpublished = f.cases.filter((c) => c.kind === 'content-hash' && c.roomVersion === set.roomVersion && !known.has(canonicalJSON(c.input))
        && (c.input.room_id === set.roomId || c.input.room_id === undefined)).map((c) => c.input);
      const pdus = set.events.map((id) => (id === null ? unpublished.shift() : withID.get(id)));
      if (pdus.some((p) => p === undefined)) throw new Error(`${file}: a PDU of room ${set.roomId} is missing`);
      rooms.push({ name: `${file} (room version ${set.roomVersion})`, source: f.source.repository, roomID: set.roomId, roomVersion: set.roomVersion, pdus: pdus as Record<string, unknown>[], ids: set.events });
    }
  }
  return rooms;
}

/** The index of the first PDU naming a prev event the file does not hold before it, or -1: the room's DAG is whole. */
function firstGap(room: RealRoom): number {
  const seen = new Set<string>();
  return room.pdus.findIndex((p, i) => {
    const gap = ((p.prev_events ?? []) as unknown[]).some((prev) => !seen.has((Array.isArray(prev) ? prev[0] : prev) as string));
    seen.add(room.ids[i] ?? computeEventID(p, room.roomVersion));
    return gap;
  });
}

/**
 * The state the events imply, in file order: the last event of each (type, state key), as `state` prints it. Right
 * for these rooms because each is one chain (no event names a prev event another names too): no fork to resolve.
 */
function impliedState(room: RealRoom): string[] {
  const state = new Map<string, string>();
  room.pdus.forEach((p, i) => { if (p.state_key !== undefined) state.set(`${p.type}\u0000${p.state_key}`, room.ids[i] ?? computeEventID(p, room.roomVersion)); });
  return [...state.values()].sort();
}

const FORMATS = {
  'json-lines': (pdus: unknown[]) => `${pdus.map((p) => JSON.stringify(p)).join('\n')}\n`,
  'json-array': (pdus: unknown[]) => JSON.stringify(pdus, null, 2),
  transaction: (pdus: unknown[]) => JSON.stringify({ origin: 'example.org', origin_server_ts: 1, pdus, edus: [] }, null, 1),
  concatenated: (pdus: unknown[]) => pdus.map((p) => JSON.stringify(p, null, 2)).join('\n'),
} as const;

if (DIR) describe('importing real rooms of room versions 1 to 12', function () {
  this.timeout(120_000);
  const rooms = realRooms();
  let dir: string;
  let n = 0;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-real-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string) => { const f = path.join(dir, name); fs.writeFileSync(f, text); return f; };
  const sqliteConfig = () => write(`sqlite-${++n}.yaml`, `backend: sqlite\nserver_name: example.org\nsqlite:\n  path: ${JSON.stringify(path.join(dir, `store-${n}.db`))}\n`);
  const stateIDs = async (config: string, roomID: string, ...args: string[]) =>
    (JSON.parse((await runCli(['--config', config, 'state', roomID, ...args])).out) as { event_id: string }[]).map((e) => e.event_id).sort();

  it(`holds ${rooms.length} rooms from ${new Set(rooms.map((r) => r.source)).size} sources, of room versions ${[...new Set(rooms.map((r) => r.roomVersion))].join(', ')}`, () => {
    expect(rooms.length).to.be.at.least(6);
    for (const v of ['1', '10', '12']) expect(rooms.some((r) => r.roomVersion === v), `a room of version ${v}`).to.equal(true);
  });

  it('event-id prints the published ID of every PDU, in every format', async () => {
    for (const room of rooms) {
      for (const [format, render] of Object.entries(FORMATS)) {
        const file = write(`${format}.json`, render(room.pdus));
        const printed = (await runCli(['event-id', file])).out.split('\n');
        expect(printed, `${room.name}, ${format}`).to.have.length(room.pdus.length);
        room.ids.forEach((id, i) => { if (id !== null) expect(printed[i], `${room.name}, ${format}, PDU ${i + 1}`).to.equal(id); });
      }
    }
  });

  it('a room whose DAG has a gap is refused at the event that names an event the file lacks; what comes before it is stored', async () => {
    const gapped = rooms.filter((r) => firstGap(r) >= 0);
    expect(gapped.map((r) => r.name)).to.have.length.at.least(1);
    for (const room of gapped) {
      const at = firstGap(room);
      const config = sqliteConfig();
      const failed = await runCliReported(['--config', config, 'import', write('gap.jsonl', FORMATS['json-lines'](room.pdus))]);
      expect(failed.code, room.name).to.equal(1);
      expect(failed.err, room.name).to.match(new RegExp(`line ${at + 1}: the state before event .* is not known: its prev events .* are not stored`));
      const s = await createStorage({ sqlite: { path: path.join(dir, `store-${n}.db`) } });
      try {
        expect((await s.stats.collect()).events, room.name).to.equal(at);
      } finally {
        await s.close();
      }
    }
  });

  it('import then state gives what the events imply, and each format gives the same store', async () => {
    for (const room of rooms.filter((r) => firstGap(r) < 0)) {
      const prints: string[] = [];
      for (const [format, render] of Object.entries(FORMATS)) {
        const config = sqliteConfig();
        const file = write(`${format}.json`, render(room.pdus));
        const { out } = await runCli(['--config', config, 'import', file]);
        expect(out, `${room.name}, ${format}`).to.match(new RegExp(`imported ${room.pdus.length} new events? in .*, ${format}\\)`)).and.not.match(/stored redacted/);
        expect(await stateIDs(config, room.roomID), `${room.name}, ${format}`).to.deep.equal(impliedState(room));
        const s = await createStorage({ sqlite: { path: path.join(dir, `store-${n}.db`) } });
        try {
          expect((await s.roomserver.roomInfo(room.roomID))!.roomVersion).to.equal(room.roomVersion);
          prints.push(await s.stats.fingerprint());
        } finally {
          await s.close();
        }
      }
      expect(new Set(prints).size, `${room.name}: one store whatever the format`).to.equal(1);
    }
  });

  it('the three drivers store the same state for every real room, at every event', async () => {
    const emulator = await sharedEmulator();
    const schema = freshSchemaName('real');
    const configs = {
      sqlite: sqliteConfig(),
      postgres: write('pg.yaml', `backend: postgres\nserver_name: example.org\npostgres:\n  url: ${testDatabaseURL()}\n  schema: ${schema}\n`),
      cosmosdb: write('cosmos.yaml', JSON.stringify({ server_name: 'example.org', ...emulatorConfig(emulator, 'real-rooms', `c${process.pid}`, 'real') })),
    };
    try {
      for (const room of rooms.filter((r) => firstGap(r) < 0)) {
        const file = write('room.jsonl', FORMATS['json-lines'](room.pdus));
        for (const config of Object.values(configs)) await runCli(['--config', config, 'import', file]);
        const ids = room.ids.map((id, i) => id ?? computeEventID(room.pdus[i]!, room.roomVersion));
        for (const at of [undefined, ...ids]) {
          const args = at === undefined ? [] : ['--after', at];
          const [sqlite, postgres, cosmosdb] = await Promise.all(Object.values(configs).map((c) => stateIDs(c, room.roomID, ...args)));
          expect(postgres, `${room.name} ${at ?? 'now'}`).to.deep.equal(sqlite);
          expect(cosmosdb, `${room.name} ${at ?? 'now'}`).to.deep.equal(sqlite);
        }
      }
    } finally {
      await dropSchema(schema);
      void adminPool;
    }
  });

  it('a PDU whose content hash does not match is stored redacted, and the summary counts it', async () => {
    const room = rooms.find((r) => r.roomVersion === '10')!;
    const tampered = room.pdus.map((p) => ({ ...p }));
    const member = tampered.findIndex((p) => p.type === 'm.room.member');
    tampered[member] = { ...tampered[member]!, content: { ...(tampered[member]!.content as object), displayname: 'Mallory' } };
    const config = sqliteConfig();
    const { out } = await runCli(['--config', config, 'import', write('tampered.jsonl', FORMATS['json-lines'](tampered))]);
    expect(out).to.match(/1 event stored redacted: the content hash did not match/);
    const s = await createStorage({ sqlite: { path: path.join(dir, `store-${n}.db`) } });
    try {
      // Its ID is what the untampered event's was: the ID covers only what redaction keeps.
      const [stored] = await s.roomserver.eventsFromIDs([room.ids[member]!]);
      expect(stored!.event.content).to.deep.equal({ membership: (room.pdus[member]!.content as { membership: string }).membership });
      expect(JSON.parse(stored!.event.json)).to.not.have.property('unsigned');
    } finally {
      await s.close();
    }
  });

  it('a room whose create event is neither stored nor first needs --room-version, and nothing is written without it', async () => {
    const room = rooms.find((r) => r.roomVersion === '10')!;
    const file = write('no-create.jsonl', FORMATS['json-lines'](room.pdus.slice(1)));
    const config = sqliteConfig();
    const failed = await runCliReported(['--config', config, 'import', file]);
    expect(failed.code).to.equal(1);
    expect(failed.err).to.match(/line 1: room "!uTqsSSWabZzthsSCNf:hs1" is not in the store and its m\.room\.create event does not come before this event in the file.*--room-version V/);
    const s = await createStorage({ sqlite: { path: path.join(dir, `store-${n}.db`) } });
    try {
      expect(await s.stats.collect()).to.include({ rooms: 0, events: 0 });
    } finally {
      await s.close();
    }
    // With the version given, the room is known; its first event still names the create event, which is not stored.
    const versioned = await runCliReported(['--config', config, 'import', file, '--room-version', '10']);
    expect(versioned.err).to.match(new RegExp(`line 1: the state before event .* is not known: its prev events ${room.ids[0]!.replace('$', '\\$')} are not stored`));
    const bad = await runCliReported(['--config', config, 'import', file, '--room-version', '99']);
    expect(bad.code).to.equal(2);
    expect(bad.err).to.match(/unknown room version "99": this store knows room versions 1, 2, .*, 12/);
  });

  it('client-format events are refused, saying that import takes federation PDUs', async () => {
    const clientEvent = { event_id: '$x', room_id: '!r:example.org', type: 'm.room.message', sender: '@a:example.org', origin_server_ts: 1, content: { body: 'hi' }, unsigned: { age: 5 } };
    const failed = await runCliReported(['--config', sqliteConfig(), 'import', write('client.json', JSON.stringify([clientEvent]))]);
    expect(failed.code).to.equal(1);
    expect(failed.err).to.match(/PDU 1: this is a client-format event .* import takes federation PDUs/);
  });

  it('a v12 room: the create event has no room_id, the room ID is computed, and a create event with one is refused', async () => {
    const room = rooms.find((r) => r.roomVersion === '12')!;
    expect(room.pdus[0]).to.not.have.property('room_id');
    const config = sqliteConfig();
    await runCli(['--config', config, 'import', write('v12.jsonl', FORMATS['json-lines'](room.pdus))]);
    expect(await stateIDs(config, room.roomID)).to.include(room.ids[0]);
    const withRoomID = { ...room.pdus[0]!, room_id: room.roomID };
    const failed = await runCliReported(['--config', sqliteConfig(), 'import', write('bad-v12.jsonl', JSON.stringify(withRoomID))]);
    expect(failed.err).to.match(/a room version 12 create event has no room_id/);
  });
});

// The suite's stores are closed by each case; a Storage left open would hold the SQLite file.
export type { Storage };

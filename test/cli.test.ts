import { expect } from 'chai';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CliError } from '../src/cli/output.js';
import { progress } from '../src/cli/progress.js';
import { computeEventID, contentHash, createStorage, parsePDU } from '../src/index.js';
import { formatPurgeReport } from '../src/cli/commands/rooms.js';
import { expectedKeysOutput, KEYS_USER, runCli, runCliReported, writeKeysFixture } from './support/cli.js';
import { MIGRATIONS as SQLITE_MIGRATIONS } from '../src/storage/sqlite/migrations.js';

const BIN = path.resolve(import.meta.dirname, '../bin/matrix-storage.js');

const cli = runCli;

async function cliError(args: string[]): Promise<CliError> {
  try {
    await cli(args);
  } catch (e) {
    expect(e).to.be.instanceOf(CliError);
    return e as CliError;
  }
  throw new Error('expected the command to fail');
}

/**
 * A PDU of room version 1 (whose PDUs state their own event IDs, so the tests can choose them) as a JSON line, with
 * its content hash, as import takes PDUs.
 */
const line = (o: Record<string, unknown>) => {
  const pdu: Record<string, unknown> = { room_id: '!r:example.org', sender: '@a:example.org', origin_server_ts: 1, auth_events: [], prev_events: [], content: {}, signatures: {}, ...o };
  try { pdu.hashes = { sha256: contentHash(pdu, '1') }; } catch { /* a deliberately broken PDU */ }
  return JSON.stringify(pdu);
};

describe('the matrix-storage command', () => {
  let dir: string;
  let configFile: string;
  let dbFile: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-cli-'));
    dbFile = path.join(dir, 'store.db');
    configFile = path.join(dir, 'matrix-storage.yaml');
    fs.writeFileSync(configFile, `backend: sqlite\nserver_name: example.org\nsqlite:\n  path: ${JSON.stringify(dbFile)}\n`);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const withConfig = (...args: string[]) => ['--config', configFile, ...args];

  it('generate | import | state: the imported room has the state the file describes', async () => {
    const roomFile = path.join(dir, 'room.jsonl');
    await cli(['generate', '--members', '40', '--events', '400', '--seed', '3', '--out', roomFile]);
    // Room version 10 PDUs carry no event_id: their IDs are computed from them.
    const events = fs.readFileSync(roomFile, 'utf8').trim().split('\n').map((l) => {
      const pdu = JSON.parse(l) as Record<string, unknown>;
      return { ...pdu, event_id: computeEventID(pdu, '10') } as Record<string, unknown>;
    });
    expect(events).to.have.length(400);
    const imported = await cli(withConfig('import', roomFile));
    expect(imported.out).to.match(/imported 400 new events in /).and.match(/state tuples stored: [\d,]+/).and.match(/database size: /);
    // Replay the file in plain JS: the current state is the last event per (type, state_key).
    const expected = new Map<string, string>();
    for (const e of events) if (e.state_key !== undefined) expected.set(`${e.type}\u0000${e.state_key}`, e.event_id as string);
    const roomID = events[0]!.room_id as string;
    const state = JSON.parse((await cli(withConfig('state', roomID))).out) as Record<string, unknown>[];
    expect(state.map((e) => e.event_id).sort()).to.deep.equal([...expected.values()].sort());
    // --at: the state right after an event, and --before it.
    const at = events[100]!;
    const after = JSON.parse((await cli(withConfig('state', roomID, '--after', at.event_id as string))).out) as Record<string, unknown>[];
    const before = JSON.parse((await cli(withConfig('state', roomID, '--before', at.event_id as string))).out) as Record<string, unknown>[];
    // The library and the command name the same side: --before is loadStateBeforeEvent, which loadStateAtEvent is.
    const s = await createStorage({ backend: 'sqlite', sqlite: { path: dbFile } });
    try {
      const ids = async (entries: Awaited<ReturnType<typeof s.roomserver.loadStateAtEvent>>) => (await s.roomserver.events(entries.map((e) => e.eventNID))).map((e) => e.event.eventID).sort();
      expect(await ids(await s.roomserver.loadStateAtEvent(at.event_id as string))).to.deep.equal(before.map((e) => e.event_id).sort());
      expect(await ids(await s.roomserver.loadStateBeforeEvent(at.event_id as string))).to.deep.equal(before.map((e) => e.event_id).sort());
      expect(await ids(await s.roomserver.loadStateAfterEvent(at.event_id as string))).to.deep.equal(after.map((e) => e.event_id).sort());
    } finally {
      await s.close();
    }
    const ambiguous = await runCliReported(withConfig('state', roomID, '--at', at.event_id as string));
    expect(ambiguous.code).to.equal(2);
    expect(ambiguous.err).to.contain('--at is ambiguous').and.contain(`Fix: use --after ${at.event_id as string} for the state including it`);
    const replay = (n: number) => { const m = new Map<string, string>(); for (const e of events.slice(0, n)) if (e.state_key !== undefined) m.set(`${e.type}\u0000${e.state_key}`, e.event_id as string); return [...m.values()].sort(); };
    expect(after.map((e) => e.event_id).sort()).to.deep.equal(replay(101));
    expect(before.map((e) => e.event_id).sort()).to.deep.equal(replay(100));
    // A second import of the same file changes nothing and says so.
    expect((await cli(withConfig('import', roomFile))).out).to.match(/imported 0 new events \(400 already stored\)/);
  });

  it('import commits in batches (--batch N): a bad line deep in a batch stops it there, every line before it stored, whatever N', async () => {
    // Room version 1, whose PDUs carry their IDs: line 173 can then be valid on its own and refused by the store (an
    // event ID stored in another room), which refuses its whole batch.
    const ids = Array.from({ length: 260 }, (_, i) => `$e${i + 1}`);
    const lines = ids.map((id, i) => (i === 0
      ? line({ event_id: id, type: 'm.room.create', state_key: '', depth: 1, content: { room_version: '1' } })
      : i % 10 === 1
        ? line({ event_id: id, type: 'm.room.member', state_key: `@u${i}:example.org`, depth: i + 1, prev_events: [ids[i - 1]], content: { membership: 'join' } })
        : line({ event_id: id, type: 'm.room.message', depth: i + 1, prev_events: [ids[i - 1]], content: { body: `${i}` } })));
    const broken = [...lines.slice(0, 172), line({ event_id: '$e40', room_id: '!elsewhere:example.org', type: 'm.room.message', depth: 3 }), ...lines.slice(172)];
    const badFile = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(badFile, broken.join('\n'));
    const prints: string[] = [];
    for (const batch of ['1', '7', '100', '1000']) {
      fs.rmSync(dbFile, { force: true });
      const err = await cliError(withConfig('import', badFile, '--room-version', '1', '--batch', batch));
      expect(err.message, `--batch ${batch}`).to.match(/line 173: event \$e40 is already stored in another room/);
      const s = await createStorage({ sqlite: { path: dbFile } });
      try {
        expect((await s.stats.collect()).events, `--batch ${batch}`).to.equal(172);
        expect((await s.roomserver.eventNIDs(ids)).size).to.equal(172);
        expect(await s.roomserver.roomInfo('!elsewhere:example.org')).to.equal(null);
        prints.push(await s.stats.fingerprint());
      } finally {
        await s.close();
      }
    }
    // The batch size changes how the import commits, never what it stores (NIDs included).
    expect(new Set(prints).size).to.equal(1);
    // The fixed file goes on from there.
    fs.writeFileSync(badFile, lines.join('\n'));
    expect((await cli(withConfig('import', badFile, '--batch', '50'))).out).to.match(/imported 88 new events \(172 already stored\)/);
    for (const bad of ['0', '1001', 'ten', '-3']) {
      const e = await cliError(withConfig('import', badFile, '--batch', bad));
      expect(e.message).to.match(/--batch takes a whole number/);
      expect(e.exitCode).to.equal(2);
    }
  });

  it('import stops at a bad line with its number; lines before it are stored, nothing of it is', async () => {
    const good1 = line({ event_id: '$c', type: 'm.room.create', state_key: '', depth: 1, content: { room_version: '1' } });
    const good2 = line({ event_id: '$j', type: 'm.room.member', state_key: '@a:example.org', depth: 2, prev_events: ['$c'], content: { membership: 'join' } });
    const bad = [
      ['{"event_id": "$broken"', /line 3: not valid JSON/],
      [line({ event_id: '$nodepth', type: 'm.room.message' }), /line 3: depth is missing/],
      [line({ event_id: `$${'x'.repeat(10_240)}`, type: 'm.room.message', depth: 3 }), /line 3: event_id is 10241 bytes long/],
      [line({ event_id: '$nul', type: 'm.room.message', depth: 3, state_key: 'a\u0000b' }), /line 3: state_key contains a NUL/],
      // Valid on its own, refused by the store: its new room must not be left behind either.
      [line({ event_id: '$c', room_id: '!elsewhere:example.org', type: 'm.room.message', depth: 3 }), /line 3: event \$c is already stored in another room/],
    ] as const;
    for (const [text, pattern] of bad) {
      fs.rmSync(dbFile, { force: true });
      const file = path.join(dir, 'bad.jsonl');
      fs.writeFileSync(file, [good1, good2, text, line({ event_id: '$after', type: 'm.room.message', depth: 4 })].join('\n'));
      const err = await cliError(withConfig('import', file, '--room-version', '1'));
      expect(err.message).to.match(pattern);
      expect(err.message.length).to.be.lessThan(400);
      const s = await createStorage({ sqlite: { path: dbFile } });
      try {
        expect([...(await s.roomserver.eventNIDs(['$c', '$j', '$broken', '$nodepth', '$nul', '$after'])).keys()].sort()).to.deep.equal(['$c', '$j']);
        expect(await s.stats.collect()).to.include({ events: 2, rooms: 1 });
      } finally {
        await s.close();
      }
    }
  });

  it('import refuses a PDU without a field its schema requires, naming the line and the field, before any content hash', async () => {
    const good1 = line({ event_id: '$c', type: 'm.room.create', state_key: '', depth: 1, content: { room_version: '1' } });
    const good2 = line({ event_id: '$j', type: 'm.room.member', state_key: '@a:example.org', depth: 2, prev_events: ['$c'], content: { membership: 'join' } });
    const topic = JSON.parse(line({ event_id: '$topic', type: 'm.room.topic', state_key: '', depth: 3, prev_events: ['$j'], content: { topic: 'kept' } })) as Record<string, unknown>;
    const without = (field: string) => { const { [field]: _, ...rest } = topic; return JSON.stringify(rest); };
    // Without content or hashes, the topic used to fail its content hash and become room state, redacted to content {}.
    for (const field of ['content', 'hashes', 'signatures', 'prev_events', 'auth_events', 'origin_server_ts', 'event_id', 'sender', 'room_id']) {
      fs.rmSync(dbFile, { force: true });
      const file = path.join(dir, 'missing.jsonl');
      fs.writeFileSync(file, [good1, good2, without(field)].join('\n'));
      const err = await cliError(withConfig('import', file, '--room-version', '1'));
      expect(err.message, field).to.match(new RegExp(`line 3: ${field} is missing: `));
      const s = await createStorage({ sqlite: { path: dbFile } });
      try {
        expect(await s.stats.collect(), field).to.include({ events: 2 });
        expect(await s.roomserver.getStateEvent('!r:example.org', 'm.room.topic', ''), field).to.equal(null);
      } finally {
        await s.close();
      }
    }
    // The whole file once the line is whole: the topic is state, with its content.
    fs.writeFileSync(path.join(dir, 'whole.jsonl'), [good1, good2, JSON.stringify(topic)].join('\n'));
    await cli(withConfig('import', path.join(dir, 'whole.jsonl')));
    const state = JSON.parse((await cli(withConfig('state', '!r:example.org'))).out) as Record<string, unknown>[];
    expect(state.find((e) => e.type === 'm.room.topic')?.content).to.deep.equal({ topic: 'kept' });
  });

  it('purge-send-to-device deletes messages older than the configured age or --older-than-days, and says when retention is off', async () => {
    const day = 86_400_000;
    const now = Date.now();
    const s = await createStorage({ sqlite: { path: dbFile } });
    try {
      for (const [user, age] of [['@a:example.org', 10 * day], ['@b:example.org', 4 * day], ['@a:example.org', day]] as const) {
        await s.tables.sendToDevice.insertSendToDeviceMessage(s.unitOfWork.autocommit, user, 'D', '{"sender":"@c:example.org","type":"t","content":{}}', now - age);
      }
    } finally {
      await s.close();
    }
    const off = await runCliReported(withConfig('purge-send-to-device'));
    expect(off.code).to.equal(2);
    expect(off.out).to.match(/retention is off \(send_to_device\.max_age_days: 0\): nothing deleted/);
    fs.appendFileSync(configFile, 'send_to_device:\n  max_age_days: 7\n');
    const configured = await cli(withConfig('purge-send-to-device', '--json'));
    const report = JSON.parse(configured.out) as { age: string; before: string; deleted: number };
    expect(report).to.include({ age: 'config', deleted: 1 });
    expect(Date.parse(report.before)).to.be.within(now - 7 * day, Date.now() - 7 * day);
    expect((await cli(withConfig('purge-send-to-device', '--older-than-days', '2'))).out).to.match(/^deleted 1 send-to-device messages stored before \S+ \(--older-than-days\)$/);
    expect((await cli(withConfig('purge-send-to-device', '--older-than-days', '2'))).out).to.match(/^deleted 0 /);
    const left = await createStorage({ sqlite: { path: dbFile } });
    try {
      expect((await left.sendToDevice.sendToDeviceUpdatesForSync('@a:example.org', 'D', 0, 100)).events).to.have.length(1);
    } finally {
      await left.close();
    }
    for (const bad of ['0', 'x', '36501']) {
      const e = await cliError(withConfig('purge-send-to-device', '--older-than-days', bad));
      expect(e.exitCode, bad).to.equal(2);
      expect(e.message).to.match(/--older-than-days takes a whole number/);
    }
  });

  it('hostile strings (quotes, %, _, /, unicode) import and print back exactly', async () => {
    const keys = ["it's", '"q"', '50%', 'a_b', 'x/y\\z', 'żółć 🐉', "'); DROP TABLE roomserver_events;--"];
    const lines = [line({ event_id: '$c', type: 'm.room.create', state_key: '', depth: 1 })];
    keys.forEach((k, i) => lines.push(line({ event_id: `$e${i}${k}`, type: `org.example.${k}`, state_key: k, depth: i + 2, prev_events: [i === 0 ? '$c' : `$e${i - 1}${keys[i - 1]}`], content: { k } })));
    const file = path.join(dir, 'hostile.jsonl');
    fs.writeFileSync(file, lines.join('\n'));
    await cli(withConfig('import', file));
    const state = JSON.parse((await cli(withConfig('state', '!r:example.org'))).out) as Record<string, unknown>[];
    expect(state.map((e) => e.state_key).filter((k) => k !== '').sort()).to.deep.equal([...keys].sort());
    expect(state.find((e) => e.state_key === '50%')!.content).to.deep.equal({ k: '50%' });
  });

  it('state and import report unknown rooms, events and files clearly', async () => {
    await cli(withConfig('migrate'));
    expect((await cliError(withConfig('state', '!nope:example.org'))).message).to.match(/room "!nope:example.org" is not in this store/);
    expect((await cliError(withConfig('import', path.join(dir, 'missing.jsonl')))).message).to.match(/no such file/);
    expect((await cliError(withConfig('state', '!x:y', '--before', '$a', '--after', '$b'))).message).to.match(/--before or --after, not both/);
    expect((await cliError(['frobnicate'])).exitCode).to.equal(2);
  });

  it('migrate creates the schema once and then reports it up to date', async () => {
    const versions = SQLITE_MIGRATIONS.map((m) => m.version);
    expect((await cli(withConfig('migrate'))).out).to.match(new RegExp(`schema at version ${versions.at(-1)}; applied ${versions.join(', ')}$`));
    expect((await cli(withConfig('migrate'))).out).to.match(new RegExp(`schema at version ${versions.at(-1)}; already up to date$`));
  });

  it('the commands that read or purge refuse a store that does not exist, naming the fix, and create nothing', async () => {
    const typo = path.join(dir, 'data', 'opz.db');
    fs.writeFileSync(configFile, `backend: sqlite\nsqlite:\n  path: ${JSON.stringify(typo)}\n`);
    for (const args of [['rooms'], ['room', '!r:example.org'], ['keys', '@a:example.org'], ['state', '!r:example.org'], ['check'],
      ['purge-room', '!r:example.org', '--yes'], ['purge-history', '!r:example.org', '--before', '1', '--yes'], ['purge-send-to-device', '--older-than-days', '1']]) {
      const { code, out, err } = await runCliReported(withConfig(...args));
      expect(code, `${args.join(' ')}: ${err}`).to.equal(2);
      expect(out).to.equal('');
      expect(err).to.equal(`matrix-storage: no SQLite database at ${typo}. Fix: correct sqlite.path (or MATRIX_STORAGE_SQLITE_PATH) if it is mistyped, or run \`matrix-storage migrate\` to create a store there.`);
      expect(fs.existsSync(typo), args.join(' ')).to.equal(false);
      expect(fs.existsSync(path.dirname(typo)), args.join(' ')).to.equal(false);
    }
  });

  it('migrate --status exits 4 while migrations are pending and 0 once current; --dry-run lists them; neither changes anything', async () => {
    const versions = SQLITE_MIGRATIONS.map((m) => m.version);
    const pending = await runCliReported(withConfig('migrate', '--status', '--json'));
    expect(pending.code, pending.err).to.equal(4);
    expect(JSON.parse(pending.out)).to.deep.equal({ backend: 'sqlite', version: 0, latest: versions.at(-1), pending: SQLITE_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })) });
    const dryRun = await runCliReported(withConfig('migrate', '--dry-run'));
    expect(dryRun.code).to.equal(0);
    expect(dryRun.out.split('\n')).to.have.length(versions.length + 1);
    expect(dryRun.out).to.contain(`${versions.length} migrations pending (a run would apply, in order)`).and.contain(`  1: ${SQLITE_MIGRATIONS[0]!.name}`);
    expect(fs.existsSync(dbFile)).to.equal(false);
    // A store an older build left at version 3: the rest is pending.
    const { migrate: migrateThrough } = await import('../src/storage/sqlite/migrations.js');
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(dbFile);
    migrateThrough(db, undefined, 3);
    db.close();
    const behind = await runCliReported(withConfig('migrate', '--status', '--json'));
    expect(behind.code).to.equal(4);
    expect(JSON.parse(behind.out).pending.map((m: { version: number }) => m.version)).to.deep.equal(versions.filter((v) => v > 3));
    const health = await runCliReported(withConfig('health', '--json'));
    expect(health.code).to.equal(4);
    expect(JSON.parse(health.out)).to.include({ ok: false, reachable: true });
    expect((await runCliReported(withConfig('rooms'))).err).to.contain('is at schema version 3').and.contain('run `matrix-storage migrate`');
    await runCli(withConfig('migrate'));
    const current = await runCliReported(withConfig('migrate', '--status'));
    expect(current.code).to.equal(0);
    expect(current.out).to.match(new RegExp(`schema at version ${versions.at(-1)}, this build needs ${versions.at(-1)}: current$`));
  });

  it('health: one round trip, the schema current, exit 0; a store that cannot be opened is unreachable, exit 3', async () => {
    await runCli(withConfig('migrate'));
    const ok = await runCliReported(withConfig('health', '--json'));
    expect(ok.code, ok.err).to.equal(0);
    const h = JSON.parse(ok.out);
    expect(h).to.include({ ok: true, backend: 'sqlite', reachable: true });
    expect(h.schema).to.deep.equal({ version: SQLITE_MIGRATIONS.at(-1)!.version, latest: SQLITE_MIGRATIONS.at(-1)!.version, current: true });
    expect(h.roundTripMs).to.be.a('number').and.at.least(0);
    fs.writeFileSync(configFile, `backend: sqlite\nsqlite:\n  path: ${JSON.stringify(dir)}\n`);
    const down = await runCliReported(withConfig('health'));
    expect(down.code).to.equal(3);
    expect(down.out).to.match(/^sqlite: unreachable, round trip [\d.]+ ms: SQLite at .*the path is a directory/);
  });

  it('config prints the keys the file takes (snake_case, by section), secrets hidden', async () => {
    const { code, out } = await runCli(withConfig('config', '--json'));
    expect(code).to.equal(0);
    const shown = JSON.parse(out).config;
    expect(shown).to.include({ backend: 'sqlite', server_name: 'example.org', migrate_on_open: true });
    expect(shown.sqlite).to.deep.equal({ path: dbFile, busy_timeout_ms: 10_000 });
    expect(out).not.to.match(/serverName|busyTimeoutMs|poolSize/);
  });

  it('the small mistakes: each one line with the right fix', async () => {
    // A backup version given as a number, and parsePDU's result given in place of its event.
    const s = await createStorage({ backend: 'sqlite', sqlite: { path: dbFile } });
    try {
      const asNumber = await s.keyBackup.getKeyBackup('@a:example.org', 1 as unknown as string).then(() => undefined, (e: Error) => e.message);
      expect(asNumber).to.equal('version must be a backup version (a decimal number in a string), got the number 1. Fix: pass it as a string ("1")');
      const create = { type: 'm.room.create', state_key: '', sender: '@a:example.org', room_id: '!v1:example.org', event_id: '$c1', depth: 1, origin_server_ts: 1, auth_events: [], prev_events: [], content: { creator: '@a:example.org' }, signatures: {} };
      const pdu = parsePDU({ ...create, hashes: { sha256: contentHash(create, '1') } }, '1');
      const wrapped = await s.roomserver.appendEvent(pdu as unknown as typeof pdu.event).then(() => undefined, (e: Error) => e.message);
      expect(wrapped).to.contain('got parsePDU\'s result').and.contain('Fix: pass its .event');
    } finally {
      await s.close();
    }
    // A missing file: refused with the fix before the store is opened (nothing created).
    const missing = await runCliReported(withConfig('import', 'no-such-room.jsonl'));
    expect(missing.code).to.equal(1);
    expect(missing.err).to.contain(`no such file: ${path.resolve('no-such-room.jsonl')}. Fix: correct the path`);
    fs.rmSync(dbFile, { force: true });
    expect((await runCliReported(withConfig('import', 'no-such-room.jsonl'))).code).to.equal(1);
    expect(fs.existsSync(dbFile)).to.equal(false);
  });

  it('purge-room leaves nothing "not in any stored room", and a purge whose store did not shrink says so instead of a negative size', async () => {
    const roomFile = path.join(dir, 'room.jsonl');
    await cli(['generate', '--members', '5', '--events', '40', '--out', roomFile]);
    await cli(withConfig('import', roomFile));
    const roomID = (JSON.parse(fs.readFileSync(roomFile, 'utf8').split('\n')[0]!) as { room_id: string }).room_id;
    await cli(withConfig('purge-room', roomID, '--yes'));
    const rooms = await cli(withConfig('rooms'));
    expect(rooms.out).not.to.contain('not in any stored room');
    expect((await cli(withConfig('check'))).code).to.equal(0);
    const report = { roomID, deleted: {}, rowsDeleted: 3, rowsRead: 3, bytesBefore: 1000, bytesAfter: 99_304, reclaimed: 'VACUUM', elapsedMs: 1 };
    const text = formatPurgeReport(report, 'purged room').join('\n');
    expect(text).to.contain('the store\'s files did not shrink (97.0 KiB): the freed space stays in them and later writes reuse it').and.not.contain('given back');
    expect(formatPurgeReport({ ...report, bytesAfter: 10 }, 'purged room')[0]).to.contain('(990 B given back)');
  });

  it('a --room-version guess the create event contradicts stops the reading there, naming the version to give and purge-room', async () => {
    const roomFile = path.join(dir, 'room.jsonl');
    await cli(['generate', '--members', '3', '--events', '12', '--out', roomFile]);
    const lines = fs.readFileSync(roomFile, 'utf8').trim().split('\n');
    // The create event (version 10) after the room's second event, which is read by the default given: 11.
    fs.writeFileSync(roomFile, `${[lines[1], lines[0], ...lines.slice(2)].join('\n')}\n`);
    const roomID = (JSON.parse(lines[0]!) as { room_id: string }).room_id;
    const { code, err } = await runCliReported(['event-id', roomFile, '--room-version', '11']);
    expect(code).to.equal(1);
    expect(err).to.contain(`line 2: the m.room.create event of room ${roomID} declares room version 10, but the 1 event of it before it in the file was read as version 11`)
      .and.contain(`Fix: run again with --room-version 10 (or with the create event before the room's other events); if an import stored any of them, first matrix-storage purge-room '${roomID}' --yes`);
    // Given the version the create event declares, every ID is computed by its rules.
    expect((await runCliReported(['event-id', roomFile, '--room-version', '10'])).code).to.equal(0);
  });

  it('demo generates a room of the size asked for (not another size\'s sample)', async () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const small = await cli(withConfig('demo', '--members', '3', '--events', '12'));
      expect(small.out).to.contain('generating a sample room (3 members, 12 events)').and.contain('imported 12 new events');
      const other = await cli(withConfig('demo', '--members', '4', '--events', '20'));
      expect(other.out).to.contain('generating a sample room (4 members, 20 events) in ./data/sample-room-pdus-4-members-20-events.jsonl');
      expect(fs.readFileSync(path.join(dir, 'data/sample-room-pdus-4-members-20-events.jsonl'), 'utf8').trim().split('\n')).to.have.length(20);
    } finally {
      process.chdir(cwd);
    }
  });

  it('Ctrl-C during import says what is stored and how to finish, exit 130', async () => {
    const roomFile = path.join(dir, 'big.jsonl');
    await cli(['generate', '--members', '500', '--events', '30000', '--out', roomFile]);
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [BIN, '--config', configFile, '--quiet', 'import', roomFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    // Interrupted once the import is under way (the store exists), as a user's Ctrl-C would.
    while (!fs.existsSync(dbFile)) await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise((resolve) => setTimeout(resolve, 500));
    child.kill('SIGINT');
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).to.equal(130);
    expect(err).to.contain('import: interrupted; every batch committed before it is stored. Fix: run the same import again to finish');
  });

  it('keys prints a user\'s devices, cross-signing keys and key backup summary as JSON', async () => {
    const latest = await writeKeysFixture(await createStorage({ sqlite: { path: dbFile }, server_name: 'example.org' }));
    expect(JSON.parse((await cli(withConfig('keys', KEYS_USER))).out)).to.deep.equal(expectedKeysOutput(latest));
    // A user with nothing stored: empty lists and no backup, not an error.
    expect(JSON.parse((await cli(withConfig('keys', '@nobody:example.org'))).out)).to.deep.equal({
      user_id: '@nobody:example.org', devices: [], cross_signing_keys: {}, key_backup: null,
    });
    expect((await cliError(withConfig('keys'))).exitCode).to.equal(2);
    const invalid = await cliError(withConfig('keys', 'alice'));
    expect(invalid.message).to.match(/keys: USER_ID must start with "@"/);
    expect(invalid.exitCode).to.equal(2);
  });

  it('usage mistakes are usage errors (exit 2) in one short line, never a stack', async () => {
    const cases: [string[], RegExp][] = [
      [['generate', '--members', '-5'], /--members takes a whole number, got "-5"/],
      [['generate', '--members=-5'], /--members takes a whole number, got "-5"/],
      [withConfig('state', '!r:example.org', '--before'), /option '--before <event_id>' argument missing\nUsage: matrix-storage state \[options\] <room_id>/],
      [withConfig('state', `!${'x'.repeat(10_000)}:example.org`), /state: ROOM_ID is 10013 bytes long; Matrix allows at most 255/],
      [withConfig('state', '!r:example.org', '--after', 'no-sigil'), /--after EVENT_ID must start with "\$"/],
      [withConfig('state', 'r\u0000oom'), /ROOM_ID contains a NUL/],
      [withConfig('keys', '@a\ud800:example.org'), /USER_ID is not well-formed text/],
      [['--frobnicate', 'migrate'], /unknown option '--frobnicate'/],
      [withConfig('migrate', 'extra'), /too many arguments for 'migrate'.*\nUsage: matrix-storage migrate \[options\]/],
      [withConfig('import'), /missing required argument 'file'\nUsage: matrix-storage import \[options\] <file>/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['imprt', 'x'], /unknown command 'imprt'\n\(Did you mean import\?\)/],
    ];
    for (const [args, pattern] of cases) {
      const { code, err } = await runCliReported(args);
      const what = args.join(' ').slice(0, 120);
      expect(code, what).to.equal(2);
      expect(err, what).to.match(pattern).and.not.match(/\n\s+at /);
      expect(err.length, what).to.be.lessThan(400);
    }
  });

  it('the installed command runs from any directory and exits non-zero on a configuration error', async () => {
    const run = promisify(execFile);
    const ok = await run(process.execPath, [BIN, '--config', configFile, 'migrate'], { cwd: os.tmpdir() });
    expect(ok.stdout).to.match(new RegExp(`schema at version ${SQLITE_MIGRATIONS.at(-1)!.version}`));
    const badConfig = path.join(dir, 'bad.yaml');
    fs.writeFileSync(badConfig, 'backend: postgres\npostgres:\n  url: "mysql://root:hunter2@db/x"\n');
    let failure: { code?: number; stderr?: string } = {};
    try {
      await run(process.execPath, [BIN, '--config', badConfig, 'migrate'], { cwd: os.tmpdir() });
    } catch (e) {
      failure = e as { code?: number; stderr?: string };
    }
    expect(failure.code).to.equal(2);
    expect(failure.stderr).to.contain('"postgres.url"').and.not.contain('hunter2');
  });
});

describe('progress output', () => {
  it('off a terminal: plain lines with done of total, percentage, rate and ETA; --quiet: nothing', () => {
    const lines: string[] = [];
    const io = { out: () => {}, err: (l: string) => { lines.push(l); } };
    const p = progress(io, { label: 'import', quiet: false, tty: false, everySeconds: 0 });
    p.start(4096, 'bytes');
    p.update(1024, '12 events');
    p.stop();
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/^import: 1\.0 KiB of 4\.0 KiB \(25%\), ETA \d+ s, .*\/s, 12 events$/);
    const quiet = progress(io, { label: 'import', quiet: true, tty: false, everySeconds: 0 });
    quiet.start(10, 'events');
    quiet.update(5);
    expect(lines).to.have.length(1);
  });

  it('import --quiet prints the summary only; --json one JSON document', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-progress-'));
    try {
      const config = path.join(dir, 'c.yaml');
      fs.writeFileSync(config, `sqlite:\n  path: ${JSON.stringify(path.join(dir, 's.db'))}\n`);
      const room = path.join(dir, 'room.jsonl');
      await runCli(['generate', '--members', '5', '--events', '40', '--out', room]);
      const quiet = await runCliReported(['--config', config, 'import', room, '--quiet']);
      expect(quiet.err).to.equal('');
      const json = await runCliReported(['--config', config, 'import', room, '--json', '--quiet']);
      const summary = JSON.parse(json.out) as { applied: number; alreadyStored: number; format: string };
      expect(summary).to.include({ applied: 0, alreadyStored: 40, format: 'json-lines' });
      const shown = JSON.parse((await runCliReported(['--config', config, 'config', '--json'])).out) as { source: string; config: { backend: string } };
      expect(shown.config.backend).to.equal('sqlite');
      expect((await runCliReported(['--version'])).out).to.match(/^\d+\.\d+\.\d+$/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

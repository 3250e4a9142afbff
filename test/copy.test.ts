/**
 * `copy` and `check` across drivers: a store holding every table's data copied between each ordered pair of
 * drivers (the same driver included), then checked, verified, and written to as a live store; the refusals; a
 * copy killed (SIGKILL, the real command in a child process) and resumed; the counters `check` compares.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { createStorage, type Storage } from '../src/index.js';
import { checkStore } from '../src/io/check.js';
import { copyStore, CopyMismatchError, CopyRefusedError } from '../src/io/copy.js';
import { verifyCopy } from '../src/io/verify.js';
import { SUITE_SETTINGS, type DriverUnderTest } from './conformance/harness.js';
import { behaviourAfterFill, fillEveryTable, fillGeneratedRoom, highestInUse, readWholeDump } from './conformance/fill-store.js';
import { postgres, sqliteFile } from './support/drivers.js';
import { cosmosEmulatorDriver } from './support/drivers-cosmos.js';
import { adminPool, closeAdminPool, dropSchema, freshSchemaName, testDatabaseURL } from './support/postgres.js';
import { runCliReported } from './support/cli.js';
import { runKilledAfter } from './support/child-process.js';

/** fillEveryTable, and a generated room of real v10 PDUs with enough events to span several pages. */
async function fillForCopy(s: Storage, events = 150): Promise<void> {
  await fillEveryTable(s);
  await fillGeneratedRoom(s, { members: 12, events, seed: 5 });
}

const drivers: DriverUnderTest[] = [sqliteFile(), postgres, cosmosEmulatorDriver()];

describe('copy between every ordered pair of drivers', function () {
  this.timeout(180_000);
  after(closeAdminPool);
  for (const from of drivers) {
    for (const to of drivers) {
      it(`${from.name} -> ${to.name}: every table, checked, verified, and a live store afterwards`, async () => {
        const source = await from.open(SUITE_SETTINGS);
        const target = await to.open(SUITE_SETTINGS);
        try {
          await fillForCopy(source);
          const pages: string[] = [];
          const summary = await copyStore(source, target, { sourceDescription: `test ${from.name}`, pageSize: 40, onPage: (t) => pages.push(t) });
          expect(summary.verification?.equal, summary.verification?.differences.join('; ')).to.equal(true);
          expect(summary.verification!.rooms).to.equal(3);
          expect(summary.verification!.sampledEvents).to.be.greaterThan(8);
          expect(pages.filter((t) => t === 'event_json').length, 'pages of event_json').to.be.greaterThan(3);
          const check = await checkStore(target);
          expect(check.violations).to.deep.equal([]);
          const [copied, original] = [await readWholeDump(target.dump!), await readWholeDump(source.dump!)];
          expect(copied).to.deep.equal(original);
          expect(summary.rows).to.equal(Object.values(original).reduce((n, rows) => n + rows.length, 0));
          expect((await verifyCopy(source, target)).equal).to.equal(true);
          const inUse = highestInUse(original);
          const [before, after] = [await behaviourAfterFill(source), await behaviourAfterFill(target)];
          expect(after.same).to.deep.equal(before.same);
          for (const [counter, value] of Object.entries(after.fresh)) expect(value, counter).to.be.greaterThan(inUse[counter]!);
        } finally {
          await source.close();
          await target.close();
        }
      });
    }
  }
});

describe('copy: refusals, differences, and a copy stopped part-way', function () {
  this.timeout(60_000);
  const sqlite = sqliteFile();
  let source: Storage;
  let target: Storage;
  beforeEach(async () => {
    source = await sqlite.open(SUITE_SETTINGS);
    target = await sqlite.open(SUITE_SETTINGS);
    await fillForCopy(source, 60);
  });
  afterEach(async () => {
    await source.close();
    await target.close();
  });

  it('refuses a target that holds data, and a finished or unfinished copy without resume, writing nothing', async () => {
    await target.federation.addServerToBlacklist('other.example.org');
    const print = await target.stats.fingerprint();
    const refused = await copyStore(source, target, { sourceDescription: 'a' }).catch((e: unknown) => e);
    expect(refused).to.be.instanceOf(CopyRefusedError).with.property('message').that.matches(/not empty \(federation_blacklist: 1 rows\)/);
    expect(await target.stats.fingerprint()).to.equal(print);
    expect(await target.dump!.readProgress()).to.equal(undefined);

    const fresh = await sqlite.open(SUITE_SETTINGS);
    try {
      await copyStore(source, fresh, { sourceDescription: 'a', verify: false });
      await rejects(copyStore(source, fresh, { sourceDescription: 'a' }), CopyRefusedError, /already holds a finished copy/);
      await rejects(copyStore(source, fresh, { sourceDescription: 'b', resume: true }), CopyRefusedError, /a copy from another store \(a,/);
      const again = await copyStore(source, fresh, { sourceDescription: 'a', resume: true });
      expect(again.alreadyComplete).to.equal(true);
      expect(again.rows).to.equal(0);
      expect(again.verification?.equal).to.equal(true);
    } finally {
      await fresh.close();
    }
  });

  it('stopped after any page, resumed, ends equal to a clean copy; without resume the half copy is refused', async () => {
    const clean = await sqlite.open(SUITE_SETTINGS);
    await copyStore(source, clean, { sourceDescription: 'a', pageSize: 7, verify: false });
    const expected = await readWholeDump(clean.dump!);
    await clean.close();
    // Stops after the 3rd page, then after the 5th page of each later run, until a run gets to the end.
    let runs = 0;
    for (let stopAt = 3, done = false; !done; stopAt = 5) {
      runs++;
      try {
        await copyStore(source, target, {
          sourceDescription: 'a', pageSize: 7, resume: runs > 1, verify: false,
          afterPage: (_t, pages) => { if (pages === stopAt) throw new Error('stopped'); },
        });
        done = true;
      } catch (e) {
        expect((e as Error).message).to.equal('stopped');
        if (runs === 1) await rejects(copyStore(source, target, { sourceDescription: 'a' }), CopyRefusedError, /unfinished copy .* --resume/);
      }
    }
    expect(runs).to.be.greaterThan(3);
    expect(await readWholeDump(target.dump!)).to.deep.equal(expected);
    expect((await verifyCopy(source, target)).equal).to.equal(true);
    expect((await checkStore(target)).ok).to.equal(true);
  });

  it('verification names what differs: a table whose rows changed, a room whose state changed', async () => {
    await copyStore(source, target, { sourceDescription: 'a', verify: false });
    const rooms = await readWholeDump(target.dump!);
    const room = rooms.rooms.find((r) => r.roomID === '!fill:example.org')!;
    const older = rooms.events.find((e) => e.room === room.nid && e.snapshot !== 0 && e.snapshot !== room.snapshot)!;
    await target.dump!.table('rooms').write([{ ...room, snapshot: older.snapshot }]);
    await target.dump!.table('federation_blacklist').write([{ server: 'extra.example.org' }]);
    const report = await verifyCopy(source, target);
    expect(report.equal).to.equal(false);
    expect(report.differences).to.include('federation_blacklist: 1 rows in the source, 2 in the target');
    expect(report.differences).to.include('rooms: the same 3 rows counted, but their contents differ');
    expect(report.differences.some((d) => d.startsWith('room !fill:example.org: current state differs'))).to.equal(true);
    // A copy that resumes into it finds the same and fails.
    await rejects(copyStore(source, target, { sourceDescription: 'a', resume: true }), CopyMismatchError, /federation_blacklist/);
  });
});

describe('the copy and check commands', function () {
  this.timeout(240_000);
  let dir: string;
  let schema: string;
  let pgConfig: string;
  let sourceFile: string;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-copy-'));
    schema = freshSchemaName('copy');
    pgConfig = path.join(dir, 'target.yaml');
    fs.writeFileSync(pgConfig, `backend: postgres\npostgres:\n  url: ${JSON.stringify(testDatabaseURL())}\n  schema: ${schema}\n`);
    sourceFile = path.join(dir, 'source.db');
    const s = await createStorage({ ...SUITE_SETTINGS, backend: 'sqlite', sqlite: { path: sourceFile } });
    try {
      await fillForCopy(s, 1500);
    } finally {
      await s.close();
    }
  });
  afterEach(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    await dropSchema(schema);
  });
  after(closeAdminPool);

  it('SQLite file -> PostgreSQL config, then check and --verify-only pass; a second copy is refused; --json summaries', async () => {
    const copied = await runCliReported(['-q', 'copy', '--from', sourceFile, '--to', pgConfig, '--json']);
    expect(copied.err).to.equal('');
    expect(copied.code).to.equal(0);
    const summary = JSON.parse(copied.out) as { rows: number; verification: { equal: boolean }; source: string };
    expect(summary.verification.equal).to.equal(true);
    expect(summary.source).to.equal(`sqlite ${sourceFile}`);
    expect((await runCliReported(['check', pgConfig])).out).to.match(/no violations$/);
    expect((await runCliReported(['copy', '--from', sourceFile, '--to', pgConfig, '--verify-only'])).out).to.match(/^verified: 28 tables equal/);
    const again = await runCliReported(['copy', '--from', sourceFile, '--to', pgConfig]);
    expect(again.code).to.equal(1);
    expect(again.err).to.match(/already holds a finished copy of this store/);
    const same = await runCliReported(['copy', '--from', sourceFile, '--to', sourceFile]);
    expect(same.code).to.equal(2);
    const missing = await runCliReported(['copy', '--from', path.join(dir, 'nothing.db'), '--to', path.join(dir, 'new.db')]);
    expect(missing.code).to.equal(2);
    expect(missing.err).to.match(/no SQLite database at/);
    expect(fs.existsSync(path.join(dir, 'new.db'))).to.equal(false);
  });

  it('copy --without one-time-keys: a backup that hands out no claimed key again; fallback keys and their used marks as they are', async () => {
    const backup = path.join(dir, 'backup.db');
    const copied = await runCliReported(['-q', 'copy', '--from', sourceFile, '--to', backup, '--without', 'one-time-keys', '--json']);
    expect(copied.code, copied.err).to.equal(0);
    const summary = JSON.parse(copied.out) as { verification: { equal: boolean; tables: { table: string }[] }; tables: { table: string }[]; source: string };
    expect(summary.verification.equal).to.equal(true);
    expect(summary.tables.map((t) => t.table)).to.not.include('one_time_keys');
    expect(summary.verification.tables.map((t) => t.table)).to.not.include('one_time_keys');
    expect(summary.verification.tables.map((t) => t.table)).to.include('fallback_keys');
    expect(summary.source).to.equal(`sqlite ${sourceFile} (without one_time_keys)`);
    const [source, restored] = [await createStorage({ ...SUITE_SETTINGS, backend: 'sqlite', sqlite: { path: sourceFile } }),
      await createStorage({ ...SUITE_SETTINGS, backend: 'sqlite', sqlite: { path: backup } })];
    try {
      const [from, to] = [await readWholeDump(source.dump!), await readWholeDump(restored.dump!)];
      expect(from.one_time_keys!.length).to.be.above(0);
      expect(to.one_time_keys).to.deep.equal([]);
      expect(to.fallback_keys).to.deep.equal(from.fallback_keys);
      expect((from.fallback_keys as { used: boolean }[]).some((k) => k.used)).to.equal(true);
      // The restored store hands out no one-time key the source held (they may have been claimed since the backup).
      const alice = '@alice:example.org';
      expect((await restored.keys.oneTimeKeysCount(alice, 'PHONE')).keyCount.size).to.equal(0);
      const claimed = await restored.keys.claimKeys(new Map([[alice, new Map([['PHONE', 'signed_curve25519']])]]));
      expect(claimed.flatMap((k) => [...k.keyJSON.keys()])).to.deep.equal([]);
      expect((await source.keys.oneTimeKeysCount(alice, 'PHONE')).keyCount.size).to.be.above(0);
    } finally {
      await source.close();
      await restored.close();
    }
    // Only the one table may be left out; a copy in progress is resumed only with the same choice.
    const nonsense = await runCliReported(['copy', '--from', sourceFile, '--to', path.join(dir, 'x.db'), '--without', 'device-keys']);
    expect(nonsense.code).to.equal(2);
    expect(nonsense.err).to.contain('--without takes one-time-keys, got "device-keys"');
    const resumedOtherwise = await runCliReported(['copy', '--from', sourceFile, '--to', backup, '--resume']);
    expect(resumedOtherwise.code).to.equal(1);
    expect(resumedOtherwise.err).to.contain('the target holds a copy from another store');
    expect((await runCliReported(['copy', '--from', sourceFile, '--to', backup, '--verify-only', '--without', 'one-time-keys'])).code).to.equal(0);
  });

  it('check exits 1 and names the counter a damaged store has behind its NIDs (SQLite and PostgreSQL)', async () => {
    const db = new Database(sourceFile);
    db.prepare("UPDATE roomserver_sequences SET value = 3 WHERE name = 'event_nid'").run();
    db.close();
    const sqliteCheck = await runCliReported(['check', sourceFile, '--json']);
    expect(sqliteCheck.code).to.equal(1);
    expect((JSON.parse(sqliteCheck.out) as { violations: { kind: string; message: string }[] }).violations)
      .to.deep.include({ kind: 'counter-behind', message: `counter event_nid is at 3, behind ${(await maxEventNID(sourceFile))} in use: the next one handed out would be reused` });

    const pgStore = await createStorage({ ...SUITE_SETTINGS, backend: 'postgres', postgres: { url: testDatabaseURL(), schema } });
    await fillEveryTable(pgStore);
    await pgStore.close();
    const sequences = await adminPool().query<{ name: string }>('SELECT sequencename AS name FROM pg_sequences WHERE schemaname = $1', [schema]);
    for (const { name } of sequences.rows) await adminPool().query(`SELECT setval('${schema}.${name}', 1)`);
    const pgCheck = await runCliReported(['check', pgConfig]);
    expect(pgCheck.code).to.equal(1);
    expect(pgCheck.out).to.match(/counter-behind: counter event_nid is at 1, behind \d+ in use/);
  });

  it('the command killed (SIGKILL) at random moments and run again with --resume ends with a target equal to a clean copy', async () => {
    const cleanFile = path.join(dir, 'clean.db');
    expect((await runCliReported(['-q', 'copy', '--from', sourceFile, '--to', cleanFile, '--no-verify'])).code).to.equal(0);
    const args = ['copy', '--from', sourceFile, '--to', pgConfig, '--resume', '--page-size', '2', '-q'];
    let kills = 0;
    for (let run = 0; kills < 4 && run < 30; run++) {
      // A random moment between the process starting (its store not yet opened) and well into the copy.
      const outcome = await runKilledAfter(args, 500 + Math.random() * 1000);
      if (outcome === 'killed') kills++;
      else expect(outcome).to.equal(0);
      if (outcome === 0) break;
    }
    expect(kills).to.be.at.least(3);
    expect(await runKilledAfter(args, 600_000)).to.equal(0);
    const [copy, clean] = await Promise.all([
      createStorage({ ...SUITE_SETTINGS, backend: 'postgres', postgres: { url: testDatabaseURL(), schema } }),
      createStorage({ ...SUITE_SETTINGS, backend: 'sqlite', sqlite: { path: cleanFile } }),
    ]);
    try {
      expect(await readWholeDump(copy.dump!)).to.deep.equal(await readWholeDump(clean.dump!));
      expect((await checkStore(copy)).ok).to.equal(true);
    } finally {
      await copy.close();
      await clean.close();
    }
    expect((await runCliReported(['copy', '--from', sourceFile, '--to', pgConfig, '--verify-only'])).code).to.equal(0);
  });
});

/** Awaits a call that must fail with that class of error and a message matching the pattern. */
async function rejects(call: Promise<unknown>, type: new (...args: never[]) => Error, message: RegExp): Promise<void> {
  const e = await call.then(() => undefined, (err: unknown) => err);
  expect(e, 'the call succeeded').to.be.instanceOf(type);
  expect((e as Error).message).to.match(message);
}

async function maxEventNID(file: string): Promise<number> {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT max(event_nid) AS n FROM roomserver_events').get() as { n: number }).n;
  } finally {
    db.close();
  }
}



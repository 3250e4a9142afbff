import { expect } from 'chai';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * The package as a user installs it: `npm pack`, the tarball unpacked into a throwaway plain-JavaScript ESM
 * project, used with plain `node` (no TypeScript loader, no decorator settings), the exported conformance suite run
 * with the project's own mocha, a TypeScript consumer type-checked against the shipped declarations, and the
 * installed `matrix-storage` command.
 *
 * To stay fast it installs nothing from the network: the tarball is unpacked where npm would put it, and each
 * dependency the package declares (and nothing else) is linked from this repository's node_modules, where it is
 * already installed and built (better-sqlite3 compiles for minutes otherwise). So the project sees exactly the
 * package's own dependencies: one it forgot to declare, or a dev-only one it relies on (tsx, chai), fails here.
 */

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '..');
const NODE = process.execPath;
/** The test run's own loader options must not reach the user's processes. */
const ENV = { ...process.env, NODE_OPTIONS: '' };

interface PackResult { filename: string; size: number; unpackedSize: number; entryCount: number; files: { path: string }[] }

describe('the package as a user installs it', function () {
  this.timeout(240_000);
  let dir: string;
  let pack: PackResult;
  let version: string;
  const started = Date.now();

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-consumer-'));
    // `npm pack` runs `prepack`, which builds dist/.
    const packed = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: REPO, env: ENV, maxBuffer: 64 << 20 });
    pack = (JSON.parse(packed.stdout) as PackResult[])[0]!;
    const modules = path.join(dir, 'node_modules');
    fs.mkdirSync(modules, { recursive: true });
    await run('tar', ['-xzf', path.join(dir, pack.filename), '-C', modules]);
    fs.renameSync(path.join(modules, 'package'), path.join(modules, 'matrix-storage'));
    const manifest = JSON.parse(fs.readFileSync(path.join(modules, 'matrix-storage', 'package.json'), 'utf8')) as
      { version: string; dependencies: Record<string, string>; bin: Record<string, string> };
    version = manifest.version;
    // The package's dependencies, and what the project itself brings for the conformance suite and the type check.
    const linked = [...Object.keys(manifest.dependencies), 'chai', 'mocha', 'typescript', '@types/node'];
    for (const name of linked) {
      fs.mkdirSync(path.dirname(path.join(modules, name)), { recursive: true });
      fs.symlinkSync(path.join(REPO, 'node_modules', name), path.join(modules, name), 'dir');
    }
    fs.mkdirSync(path.join(modules, '.bin'));
    // As npm does on install: the bin linked into .bin and made executable.
    fs.symlinkSync(path.join('..', 'matrix-storage', manifest.bin['matrix-storage']!), path.join(modules, '.bin', 'matrix-storage'));
    fs.chmodSync(path.join(modules, 'matrix-storage', manifest.bin['matrix-storage']!), 0o755);
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  });

  after(() => {
    console.log(`      packed ${pack?.filename}: ${(pack?.size / 1024).toFixed(0)} KiB (${(pack?.unpackedSize / 1024 / 1024).toFixed(1)} MiB unpacked, ` +
      `${pack?.entryCount} files); consumer test ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('packs compiled JavaScript with declarations, and neither TypeScript sources nor tests beyond the conformance suite', () => {
    const files = pack.files.map((f) => f.path);
    expect(files).to.include.members(['package.json', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/bin.js',
      'dist/test/conformance/index.js', 'dist/test/conformance/index.d.ts']);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), 'TypeScript sources').to.deep.equal([]);
    expect(files.filter((f) => f.startsWith('dist/test/') && !f.startsWith('dist/test/conformance/')), 'other tests').to.deep.equal([]);
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('bench/')), 'sources').to.deep.equal([]);
  });

  it('works from plain JavaScript under plain node: SQLite through createStorage, events appended, state read back', async () => {
    fs.writeFileSync(path.join(dir, 'app.mjs'), `
      import { createStorage, parsePDU, computeEventID, contentHash } from 'matrix-storage';
      const storage = await createStorage({ backend: 'sqlite', sqlite: { path: './store.db' }, server_name: 'example.org' });
      const room = '!plain:example.org';
      const withHash = (pdu) => ({ ...pdu, hashes: { sha256: contentHash(pdu, '10') }, signatures: {} });
      const create = withHash({ type: 'm.room.create', state_key: '', room_id: room, sender: '@alice:example.org', depth: 1, origin_server_ts: 1,
        prev_events: [], auth_events: [], content: { room_version: '10' } });
      const createID = computeEventID(create, '10');
      const join = withHash({ type: 'm.room.member', state_key: '@alice:example.org', room_id: room, sender: '@alice:example.org', depth: 2,
        origin_server_ts: 2, prev_events: [createID], auth_events: [createID], content: { membership: 'join' } });
      for (const pdu of [create, join]) await storage.roomserver.appendEvent(parsePDU(pdu, '10').event);
      const state = await storage.roomserver.currentState(room);
      const events = await storage.roomserver.events(state.map((e) => e.eventNID));
      console.log(JSON.stringify({ state: events.map((e) => e.event.type).sort(), createID, stored: events.map((e) => e.event.eventID).includes(createID) }));
      await storage.close();
    `);
    const { stdout } = await run(NODE, ['app.mjs'], { cwd: dir, env: ENV });
    const out = JSON.parse(stdout) as { state: string[]; stored: boolean };
    expect(out.state).to.deep.equal(['m.room.create', 'm.room.member']);
    expect(out.stored).to.equal(true);
  });

  it('runs the exported conformance suite on SQLite with the project\'s own mocha, as a driver author would', async () => {
    fs.writeFileSync(path.join(dir, 'conformance.test.mjs'), `
      import { conformanceSuite } from 'matrix-storage/conformance';
      import { createStorage } from 'matrix-storage';
      conformanceSuite({ describe, it, beforeEach, afterEach },
        { name: 'sqlite, from the installed package', open: (settings) => createStorage({ ...settings, backend: 'sqlite', sqlite: { path: ':memory:' } }) });
    `);
    const { stdout } = await run(NODE, ['node_modules/mocha/bin/mocha.js', '--reporter', 'dot', 'conformance.test.mjs'], { cwd: dir, env: ENV, maxBuffer: 64 << 20 });
    const passing = /(\d+) passing/.exec(stdout);
    expect(passing, stdout.slice(-2000)).to.not.equal(null);
    expect(Number(passing![1])).to.be.greaterThan(250);
    expect(stdout).to.not.match(/failing/);
  });

  it('type-checks a TypeScript consumer (moduleResolution nodenext) against the shipped declarations, and refuses a wrong one', async () => {
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, types: ['node'] },
      files: ['consumer.ts'],
    }));
    const good = `
      import { createStorage, parsePDU, InvalidInputError, type Storage, type RoomEvent, type StateEntry } from 'matrix-storage';
      import { conformanceSuite, type DriverUnderTest } from 'matrix-storage/conformance';
      const storage: Storage = await createStorage({ backend: 'sqlite', sqlite: { path: ':memory:' } });
      const { event, contentHashMatched }: { event: RoomEvent; contentHashMatched: boolean } = parsePDU('{}', '10');
      const state: StateEntry[] = await storage.roomserver.currentState(event.roomID);
      const n: number = state.length + (contentHashMatched ? 1 : 0);
      const driver: DriverUnderTest = { name: 'x', open: (s) => createStorage({ ...s, backend: 'sqlite' }) };
      void conformanceSuite; void driver; void n; void InvalidInputError;
      await storage.close();
      export {};
    `;
    fs.writeFileSync(path.join(dir, 'consumer.ts'), good);
    const tsc = [path.join(dir, 'node_modules/typescript/bin/tsc'), '-p', dir];
    await run(NODE, tsc, { cwd: dir, env: ENV });
    // The declarations are real types, not `any`: a wrong call does not type-check.
    fs.writeFileSync(path.join(dir, 'consumer.ts'), `${good}\nconst wrong: string = (await createStorage()).roomserver.currentState(42);\n`);
    let failed: { stdout?: string } | undefined;
    try { await run(NODE, tsc, { cwd: dir, env: ENV }); } catch (e) { failed = e as { stdout?: string }; }
    expect(failed?.stdout ?? '', 'a wrong consumer must not type-check').to.match(/consumer\.ts.*error TS2345/);
  });

  it('installs a matrix-storage command that prints its version and help, and says which package a backend lacks', async () => {
    const bin = path.join(dir, 'node_modules/.bin/matrix-storage');
    expect((await run(bin, ['--version'], { cwd: dir, env: ENV })).stdout.trim()).to.equal(version);
    const help = (await run(bin, ['import', '--help'], { cwd: dir, env: ENV })).stdout;
    expect(help).to.match(/Usage: matrix-storage import \[options\] <file>/).and.match(/--room-version <v>/).and.match(/Example:/);
    // pg is an optional peer dependency this project did not install.
    let failed: { code?: number; stderr?: string } | undefined;
    try {
      await run(bin, ['state', '!r:example.org'], { cwd: dir, env: { ...ENV, MATRIX_STORAGE_BACKEND: 'postgres', DATABASE_URL: 'postgres://u@127.0.0.1:1/x' } });
    } catch (e) { failed = e as { code?: number; stderr?: string }; }
    expect(failed?.code).to.equal(2);
    expect(failed?.stderr?.trim()).to.equal('matrix-storage: backend postgres needs the package pg, which is not installed. Fix: npm install pg@8.23.1');
  });
});

/** The `matrix-storage` command against PostgreSQL: the same commands, the same answers as on SQLite. */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { computeEventID, createStorage } from '../src/index.js';
import { LATEST_VERSION } from '../src/storage/postgres/migrations.js';
import { expectedKeysOutput, KEYS_USER, runCli, writeKeysFixture } from './support/cli.js';
import { adminPool, closeAdminPool, dropSchema, freshSchemaName, testDatabaseURL } from './support/postgres.js';

const BIN = path.resolve(import.meta.dirname, '../bin/matrix-storage.js');

/** Runs the CLI in-process; it must succeed. Returns what it printed on stdout. */
async function cli(args: string[]): Promise<string> {
  const { code, out } = await runCli(args);
  expect(code).to.equal(0);
  return out;
}

describe('the matrix-storage command on PostgreSQL', function () {
  this.timeout(120_000);
  let dir: string;
  let schema: string;
  let pgConfig: string;
  let sqliteConfig: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-pgcli-'));
    schema = freshSchemaName('cli');
    pgConfig = path.join(dir, 'pg.yaml');
    // migrate_on_open: false, so that every command but `migrate` needs the schema to be there already.
    fs.writeFileSync(pgConfig, `backend: postgres\nserver_name: example.org\npostgres:\n  url: ${JSON.stringify(testDatabaseURL())}\n` +
      `  schema: ${schema}\n  migrate_on_open: false\n`);
    sqliteConfig = path.join(dir, 'sqlite.yaml');
    fs.writeFileSync(sqliteConfig, `backend: sqlite\nserver_name: example.org\nsqlite:\n  path: ${JSON.stringify(path.join(dir, 'store.db'))}\n`);
  });
  afterEach(async () => {
    fs.rmSync(dir, { recursive: true, force: true });
    await dropSchema(schema);
  });
  after(closeAdminPool);

  it('migrate creates the schema once (even with migrate_on_open: false), then reports it up to date', async () => {
    expect(await cli(['--config', pgConfig, 'migrate'])).to.match(new RegExp(`^postgres .*schema at version ${LATEST_VERSION}; applied ${Array.from({ length: LATEST_VERSION }, (_, i) => i + 1).join(", ")}$`));
    expect(await cli(['--config', pgConfig, 'migrate'])).to.match(new RegExp(`schema at version ${LATEST_VERSION}; already up to date$`));
    const tables = await adminPool().query('SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1', [schema]);
    expect(tables.rows[0].n).to.be.greaterThan(10);
  });

  it('generate | migrate | import | state: the imported room has exactly the state SQLite gives for the same file', async () => {
    const roomFile = path.join(dir, 'room.jsonl');
    await cli(['generate', '--members', '60', '--events', '600', '--seed', '7', '--out', roomFile]);
    const events = fs.readFileSync(roomFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const roomID = events[0]!.room_id as string;
    const eventID = (i: number) => computeEventID(events[i]!, '10');
    await cli(['--config', pgConfig, 'migrate']);
    const imported = { postgres: await cli(['--config', pgConfig, 'import', roomFile]), sqlite: await cli(['--config', sqliteConfig, 'import', roomFile]) };
    expect(imported.postgres).to.match(/imported 600 new events/).and.match(/\(postgres, json-lines\)/).and.match(/requests: [\d,]+ \([\d.]+ per event\)$/m);
    // Same state model, same policy, content-addressed: the same counts of snapshots, blocks and tuples.
    const counts = (out: string) => /store: .*/.exec(out)![0] + /state tuples stored: [\d,]+/.exec(out)![0];
    expect(counts(imported.postgres)).to.equal(counts(imported.sqlite));
    const state = async (config: string, ...args: string[]) => JSON.parse(await cli(['--config', config, 'state', roomID, ...args])) as unknown[];
    expect(await state(pgConfig)).to.deep.equal(await state(sqliteConfig));
    for (const i of [0, 1, 57, 300, 599]) {
      const at = eventID(i);
      expect(await state(pgConfig, '--after', at), `after ${at}`).to.deep.equal(await state(sqliteConfig, '--after', at));
      if (i > 0) expect(await state(pgConfig, '--before', at), `before ${at}`).to.deep.equal(await state(sqliteConfig, '--before', at));
    }
    // A second import changes nothing and says so.
    expect(await cli(['--config', pgConfig, 'import', roomFile])).to.match(/imported 0 new events \(600 already stored\)/);
  });

  it('keys prints a user\'s devices, cross-signing keys and key backup summary: the JSON SQLite gives for the same writes', async () => {
    const write = writeKeysFixture;
    const alice = KEYS_USER;
    await cli(['--config', pgConfig, 'migrate']);
    // The schema is migrated, so a store with migrate_on_open: false (pgConfig) opens it for `keys` below.
    const latest = await write(await createStorage({ backend: 'postgres', server_name: 'example.org', postgres: { url: testDatabaseURL(), schema } }));
    await write(await createStorage({ backend: 'sqlite', server_name: 'example.org', sqlite: { path: path.join(dir, 'store.db') } }));
    const keys = async (config: string, userID: string) => JSON.parse(await cli(['--config', config, 'keys', userID])) as unknown;
    const out = await keys(pgConfig, alice);
    expect(out).to.deep.equal(expectedKeysOutput(latest));
    expect(out).to.deep.equal(await keys(sqliteConfig, alice));
    // A user with nothing stored: empty lists and no backup, not an error.
    expect(await keys(pgConfig, '@nobody:example.org')).to.deep.equal({ user_id: '@nobody:example.org', devices: [], cross_signing_keys: {}, key_backup: null });
  });

  it('the installed command works from DATABASE_URL and MATRIX_STORAGE_BACKEND alone, and refuses an unmigrated schema', async () => {
    const run = promisify(execFile);
    const env = {
      ...process.env, DATABASE_URL: testDatabaseURL(), MATRIX_STORAGE_BACKEND: 'postgres', MATRIX_STORAGE_POSTGRES_SCHEMA: schema,
      MATRIX_STORAGE_SERVER_NAME: 'example.org',
    };
    const roomFile = path.join(dir, 'room.jsonl');
    await cli(['generate', '--members', '5', '--events', '30', '--out', roomFile]);
    const imported = await run(process.execPath, [BIN, 'import', roomFile], { cwd: dir, env });
    expect(imported.stdout).to.match(/imported 30 new events/);
    const roomID = (JSON.parse(fs.readFileSync(roomFile, 'utf8').split('\n')[0]!) as { room_id: string }).room_id;
    // The other commands in-process (quicker than a process each), with the same environment and no config file.
    const saved = { ...process.env };
    Object.assign(process.env, env);
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const state = JSON.parse(await cli(['state', roomID])) as { type: string }[];
      expect(state.map((e) => e.type)).to.include('m.room.create');
      const shown = await cli(['config']);
      expect(shown).to.contain('DATABASE_URL').and.contain(`"schema": "${schema}"`).and.contain('"backend": "postgres"');
    } finally {
      process.chdir(cwd);
      for (const k of Object.keys(env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
    // Another schema, not migrated, with migrate_on_open off: a clear refusal, exit code 2.
    const other = freshSchemaName('cli');
    let failure: { code?: number; stderr?: string } = {};
    try {
      await run(process.execPath, [BIN, 'state', roomID], {
        cwd: dir, env: { ...env, MATRIX_STORAGE_POSTGRES_SCHEMA: other, MATRIX_STORAGE_POSTGRES_MIGRATE_ON_OPEN: 'false' },
      });
    } catch (e) {
      failure = e as { code?: number; stderr?: string };
    }
    await dropSchema(other);
    expect(failure.code).to.equal(2);
    expect(failure.stderr).to.contain('matrix-storage migrate');
  });
});

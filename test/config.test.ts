import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { redactUrl } from '../src/config/redact.js';
import { configAsFile, DEFAULT_SQLITE_PATH, KEYS, validateConfig } from '../src/config/schema.js';
import { ConfigError } from '../src/types/errors.js';
import { createStorage } from '../src/index.js';
import { EventAppender } from '../src/storage/shared/event-appender.js';

const BACKENDS = ['sqlite', 'postgres'];

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  let dir: string;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ms-config-')); });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (text: string) => { const f = path.join(dir, 'matrix-storage.yaml'); fs.writeFileSync(f, text); return f; };

  it('defaults to SQLite at ./data/matrix-storage.db with no file and no env', () => {
    const { config, source } = loadConfig({ cwd: dir, env: {}, knownBackends: BACKENDS });
    expect(source).to.equal('defaults');
    expect(config.backend).to.equal('sqlite');
    expect(config.sqlite.path).to.equal(DEFAULT_SQLITE_PATH).and.equal('./data/matrix-storage.db');
    expect(config.state.fanIn).to.be.at.least(2);
  });

  it('reads ./matrix-storage.yaml, and env variables override it', () => {
    write('backend: sqlite\nserver_name: example.org\nsqlite:\n  path: /tmp/x.db\n  busy_timeout_ms: 250\n');
    const fromFile = loadConfig({ cwd: dir, env: {}, knownBackends: BACKENDS }).config;
    expect(fromFile.serverName).to.equal('example.org');
    expect(fromFile.sqlite).to.deep.equal({ path: '/tmp/x.db', busyTimeoutMs: 250 });
    const { config, source } = loadConfig({
      cwd: dir, knownBackends: BACKENDS,
      env: { MATRIX_STORAGE_BACKEND: 'postgres', DATABASE_URL: 'postgres://u:pw@db:5432/hs', MATRIX_STORAGE_POSTGRES_POOL_SIZE: '4' },
    });
    expect(config.backend).to.equal('postgres');
    expect(config.postgres.url).to.equal('postgres://u:pw@db:5432/hs');
    expect(config.postgres.poolSize).to.equal(4);
    expect(source).to.contain('MATRIX_STORAGE_BACKEND').and.contain('DATABASE_URL').and.not.contain('pw');
  });

  it('names the key, the bad value and the fix', () => {
    const e = configError(() => validateConfig({ sqlite: { busy_timeout_ms: 'soon' } }, BACKENDS));
    expect(e.message).to.contain('"sqlite.busy_timeout_ms"').and.contain('"soon"').and.contain('Fix:');
    const range = configError(() => validateConfig({ state: { fan_in: 1 } }, BACKENDS));
    expect(range.message).to.contain('"state.fan_in"').and.contain('from 2 to 64');
    const backend = configError(() => validateConfig({ backend: 'mysql' }, BACKENDS));
    expect(backend.message).to.contain('"mysql"').and.contain('sqlite, postgres');
    const pg = configError(() => validateConfig({ backend: 'postgres' }, BACKENDS));
    expect(pg.message).to.contain('"postgres.url" is required');
  });

  it('refuses keys nobody reads, suggesting the real ones', () => {
    const e = configError(() => validateConfig({ sqlite: { pth: './x.db' } }, BACKENDS));
    expect(e.message).to.contain('"sqlite.pth" is not a setting').and.contain('sqlite.path');
    const top = configError(() => validateConfig({ bakend: 'sqlite' }, BACKENDS));
    expect(top.message).to.contain('"bakend"');
    const notSection = configError(() => validateConfig({ sqlite: 'x.db' }, BACKENDS));
    expect(notSection.message).to.contain('expected a section');
  });

  it('the state cache is a budget in bytes: the earlier entry count is refused, naming what replaced it', () => {
    expect(validateConfig({}, BACKENDS).state.blockCacheBytes).to.equal(32 * 1024 * 1024);
    expect(validateConfig({ state: { block_cache_bytes: 0 } }, BACKENDS).state.blockCacheBytes).to.equal(0);
    const old = configError(() => validateConfig({ state: { block_cache_entries: 2_000_000 } }, BACKENDS));
    expect(old.message).to.contain('"state.block_cache_entries" was replaced by state.block_cache_bytes');
    const negative = configError(() => validateConfig({ state: { block_cache_bytes: -1 } }, BACKENDS));
    expect(negative.message).to.contain('"state.block_cache_bytes"');
  });

  it('never shows a secret: a bad postgres URL, a broken YAML file, the redacted URL', () => {
    const e = configError(() => validateConfig({ backend: 'postgres', postgres: { url: 'mysql://admin:hunter2@db/hs' } }, BACKENDS));
    expect(e.message).to.contain('"postgres.url"').and.not.contain('hunter2');
    write('postgres:\n  url: postgres://admin:hunter2@db/hs\n  pool_size: [unclosed\n');
    const yaml = configError(() => loadConfig({ cwd: dir, env: {}, knownBackends: BACKENDS }));
    expect(yaml.message).to.contain('not valid YAML').and.not.contain('hunter2');
    expect(redactUrl('postgres://admin:hunter2@db:5432/hs?sslpassword=abc')).to.equal('postgres://admin:***@db:5432/hs?sslpassword=***');
  });

  it('a --config file that does not exist is a ConfigError naming it', () => {
    const e = configError(() => loadConfig({ cwd: dir, env: {}, file: 'missing.yaml', knownBackends: BACKENDS }));
    expect(e.message).to.contain('missing.yaml').and.contain('ENOENT');
  });

  it('createStorage validates a raw config and opens nothing on a bad one', async () => {
    let err: unknown;
    try { await createStorage({ backend: 'sqlite', sqlite: { path: path.join(dir, 'x.db'), busy_timeout_ms: -1 } }); } catch (e) { err = e; }
    expect(err).to.be.instanceOf(ConfigError);
    expect(fs.existsSync(path.join(dir, 'x.db'))).to.equal(false);
  });

  it('a mistyped key names the setting it most likely meant, at the top level and in a section, whatever its case or separator', () => {
    const cases: [string, string, string][] = [
      ['serverName: example.org\n', 'serverName', 'server_name'],
      ['server-name: example.org\n', 'server-name', 'server_name'],
      ['backnd: sqlite\n', 'backnd', 'backend'],
      ['sqlit:\n  path: x.db\n', 'sqlit', 'sqlite'],
      ['sqlite:\n  busyTimeoutMs: 5\n', 'sqlite.busyTimeoutMs', 'sqlite.busy_timeout_ms'],
      ['migrateOnOpen: false\n', 'migrateOnOpen', 'migrate_on_open'],
    ];
    for (const [yaml, key, meant] of cases) {
      const e = configError(() => loadConfig({ file: write(yaml), cwd: dir, env: {}, knownBackends: BACKENDS }));
      expect(e.message, yaml).to.contain(`"${key}" is not a setting`).and.contain(`Fix: rename it to "${meant}"`).and.not.contain('remove it');
    }
    // Nothing close: the list of the section's keys, as before.
    const far = configError(() => loadConfig({ file: write('sqlite:\n  wholly_unrelated: 1\n'), cwd: dir, env: {}, knownBackends: BACKENDS }));
    expect(far.message).to.contain('remove it, or use one of: sqlite.path');
  });

  it('configAsFile gives every key the file accepts, under its own name, and loading that back gives the same config', () => {
    const { config } = loadConfig({ file: write('server_name: example.org\nsqlite:\n  path: /tmp/y.db\nstate:\n  fan_in: 3\n'), cwd: dir, env: {}, knownBackends: BACKENDS });
    const asFile = configAsFile(config);
    const flat = (o: Record<string, unknown>, prefix = ''): string[] => Object.entries(o).flatMap(([k, v]) =>
      v !== null && typeof v === 'object' ? flat(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`]);
    expect(flat(asFile).sort()).to.deep.equal(KEYS.map((k) => k.path).sort());
    expect(flat(asFile).filter((k) => k.split('.').reduce<unknown>((o, p) => (o as Record<string, unknown>)[p], asFile) === undefined)).to.deep.equal([]);
    expect(validateConfig(asFile, BACKENDS)).to.deep.equal(config);
  });

  it('migrate_on_open applies to every driver; postgres.migrate_on_open false still turns it off on PostgreSQL only', () => {
    expect(validateConfig({}, BACKENDS).migrateOnOpen).to.equal(true);
    expect(validateConfig({ migrate_on_open: false }, BACKENDS).migrateOnOpen).to.equal(false);
    expect(validateConfig({ postgres: { migrate_on_open: false } }, BACKENDS).migrateOnOpen).to.equal(true);
    expect(validateConfig({ backend: 'postgres', postgres: { url: 'postgres://h/d', migrate_on_open: false } }, BACKENDS).migrateOnOpen).to.equal(false);
    expect(loadConfig({ cwd: dir, env: { MATRIX_STORAGE_MIGRATE_ON_OPEN: 'false' }, knownBackends: BACKENDS }).config.migrateOnOpen).to.equal(false);
  });
});

describe('a driver without atomic transactions', () => {
  it('must bind a PlanCommitter: the input path refuses to be built without one, with a ConfigError', () => {
    const none = undefined as never;
    const appender = (atomicTransactions: boolean) => () => new EventAppender({ atomicTransactions } as never, none, none, none, () => false, none, undefined);
    expect(appender(false)).to.throw(ConfigError, /PlanCommitter/);
    expect(appender(true)).not.to.throw();
  });
});

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createStorage } from '../../src/index.js';
import type { DriverUnderTest } from '../conformance/harness.js';
import { openInFreshSchema } from './postgres.js';

/** SQLite in memory: a fresh database per case. */
export const sqliteMemory: DriverUnderTest = {
  name: 'sqlite (memory)',
  open: (settings) => createStorage({ ...settings, backend: 'sqlite', sqlite: { path: ':memory:' } }),
};

/** SQLite on a real file (WAL, the default durability): a fresh file per case, removed when the run ends. */
export function sqliteFile(): DriverUnderTest {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'matrix-storage-test-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  return {
    name: 'sqlite (file)',
    open: (settings) => createStorage({ ...settings, backend: 'sqlite', sqlite: { path: path.join(dir, `case-${++n}.db`) } }),
  };
}

/** PostgreSQL (the run's server, see global-postgres.ts): a fresh schema per case, dropped when the case closes it. */
export const postgres: DriverUnderTest = {
  name: 'postgres',
  open: (settings) => openInFreshSchema({ ...settings }),
};

import { ConfigError } from '../types/errors.js';
import { preview } from '../types/event.js';
import { DEFAULT_STATE_POLICY, MAX_SNAPSHOT_BLOCKS } from '../storage/shared/state-policy.js';

/**
 * The configuration, as code sees it (camelCase) after defaults and validation. The YAML file uses the
 * snake_case names in `KEYS` below; README "Configuration reference" lists them all.
 */
export interface StorageConfig {
  /** Which driver: "sqlite" (default), "postgres", "cosmosdb", or a name a third-party driver registered. */
  readonly backend: string;
  /** This homeserver's name: memberships of users on it are "local". */
  readonly serverName: string;
  readonly sqlite: { readonly path: string; readonly busyTimeoutMs: number };
  readonly postgres: { readonly url: string; readonly poolSize: number; readonly migrateOnOpen: boolean };
  readonly state: { readonly fanIn: number; readonly maxBlocks: number; readonly blockCacheEntries: number };
  /** Settings of drivers this package does not know, passed through untouched. */
  readonly extra: Readonly<Record<string, unknown>>;
}

export const DEFAULT_SQLITE_PATH = './data/matrix-storage.db';

/** A key of the file, its type, its default, and what to tell a deployer who got it wrong. */
interface KeySpec {
  readonly path: string;
  readonly kind: 'string' | 'int' | 'bool' | 'url';
  readonly fallback: string | number | boolean;
  readonly help: string;
  readonly min?: number;
  readonly max?: number;
  readonly secret?: boolean;
}

export const KEYS: readonly KeySpec[] = [
  { path: 'backend', kind: 'string', fallback: 'sqlite', help: 'one of sqlite, postgres, cosmosdb' },
  { path: 'server_name', kind: 'string', fallback: 'localhost', help: "this homeserver's name, e.g. example.org" },
  { path: 'sqlite.path', kind: 'string', fallback: DEFAULT_SQLITE_PATH, help: 'a file path, or :memory:' },
  { path: 'sqlite.busy_timeout_ms', kind: 'int', fallback: 10_000, min: 0, max: 600_000, help: 'milliseconds to wait for a lock held by another process' },
  { path: 'postgres.url', kind: 'url', fallback: '', secret: true, help: 'a connection URL such as postgres://user:password@host:5432/dbname' },
  { path: 'postgres.pool_size', kind: 'int', fallback: 10, min: 1, max: 1000, help: 'the most connections the pool opens' },
  { path: 'postgres.migrate_on_open', kind: 'bool', fallback: true, help: 'true to create or upgrade the schema on open, false to require `matrix-storage migrate` first' },
  { path: 'state.fan_in', kind: 'int', fallback: DEFAULT_STATE_POLICY.fanIn, min: 2, max: MAX_SNAPSHOT_BLOCKS, help: 'how many same-sized state blocks are merged into one' },
  { path: 'state.max_blocks', kind: 'int', fallback: DEFAULT_STATE_POLICY.maxBlocks, min: 1, max: MAX_SNAPSHOT_BLOCKS, help: `the most blocks a state snapshot holds (at most ${MAX_SNAPSHOT_BLOCKS})` },
  { path: 'state.block_cache_entries', kind: 'int', fallback: 2_000_000, min: 0, max: 1e9, help: 'state entries kept in memory (0 turns the cache off)' },
];

/** Environment variables that override the file, and the key each one sets. */
export const ENV_OVERRIDES: Readonly<Record<string, string>> = {
  MATRIX_STORAGE_BACKEND: 'backend',
  MATRIX_STORAGE_SERVER_NAME: 'server_name',
  MATRIX_STORAGE_SQLITE_PATH: 'sqlite.path',
  DATABASE_URL: 'postgres.url',
  MATRIX_STORAGE_POSTGRES_POOL_SIZE: 'postgres.pool_size',
};

/** Sections that belong to drivers registered by other packages: kept, not checked here. */
const DRIVER_SECTIONS_CHECKED_ELSEWHERE = new Set(['cosmosdb']);

type Raw = Record<string, unknown>;

function lookup(raw: Raw, path: string): unknown {
  let cur: unknown = raw;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Raw)[part];
  }
  return cur;
}

function bad(spec: KeySpec, value: unknown, what: string): ConfigError {
  const shown = spec.secret ? '(value hidden: it may hold a secret)' : preview(value);
  return new ConfigError(`config key "${spec.path}": ${what}, got ${shown}. Fix: set it to ${spec.help}.`);
}

function coerce(spec: KeySpec, value: unknown): string | number | boolean {
  switch (spec.kind) {
    case 'string': {
      if (typeof value !== 'string' || value.length === 0) throw bad(spec, value, 'expected a non-empty string');
      return value;
    }
    case 'url': {
      if (typeof value !== 'string') throw bad(spec, value, 'expected a URL string');
      if (value === '') return value;
      try {
        const u = new URL(value);
        if (!['postgres:', 'postgresql:'].includes(u.protocol)) throw new Error('scheme');
      } catch {
        throw bad(spec, value, 'expected a postgres:// or postgresql:// URL');
      }
      return value;
    }
    case 'int': {
      const n = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw bad(spec, value, 'expected a whole number');
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw bad(spec, value, `expected a whole number from ${spec.min} to ${spec.max}`);
      }
      return n;
    }
    case 'bool': {
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === 'false') return value === 'true';
      throw bad(spec, value, 'expected true or false');
    }
  }
}

/** Rejects keys nobody reads: a typo must not silently fall back to a default. */
function checkUnknownKeys(raw: Raw, prefix = ''): void {
  const known = new Set(KEYS.map((k) => k.path));
  const sections = new Set(KEYS.map((k) => k.path.split('.')[0]!));
  for (const [key, value] of Object.entries(raw)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (!prefix && DRIVER_SECTIONS_CHECKED_ELSEWHERE.has(key)) continue;
    if (!prefix && sections.has(key) && !known.has(key)) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new ConfigError(`config key "${path}": expected a section (a mapping of keys), got ${preview(value)}. Fix: see the configuration reference in README.md.`);
      }
      checkUnknownKeys(value as Raw, path);
      continue;
    }
    if (!known.has(path)) {
      const suggestions = [...known].filter((k) => k.split('.')[0] === path.split('.')[0]).join(', ');
      throw new ConfigError(`config key "${path}" is not a setting. Fix: remove it${suggestions ? `, or use one of: ${suggestions}` : ''}.`);
    }
  }
}

/**
 * Turns a parsed YAML document (plus environment overrides already merged in) into a validated config.
 * Throws ConfigError naming the key, the bad value (never a secret) and the fix.
 */
export function validateConfig(raw: unknown, knownBackends: readonly string[]): StorageConfig {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`the config must be a mapping of keys (backend: sqlite, ...), got ${preview(raw)}`);
  }
  checkUnknownKeys(raw as Raw);
  const v: Record<string, string | number | boolean> = {};
  for (const spec of KEYS) {
    const value = lookup(raw as Raw, spec.path);
    v[spec.path] = value === undefined ? spec.fallback : coerce(spec, value);
  }
  const backend = v.backend as string;
  if (!knownBackends.includes(backend)) {
    throw new ConfigError(`config key "backend": ${preview(backend)} is not a driver. Fix: set it to one of ${knownBackends.join(', ')}.`);
  }
  if (backend === 'postgres' && v['postgres.url'] === '') {
    throw new ConfigError('config key "postgres.url" is required when backend is postgres. Fix: set it (or DATABASE_URL) to a URL such as postgres://user:password@host:5432/dbname.');
  }
  const extra: Raw = {};
  for (const key of DRIVER_SECTIONS_CHECKED_ELSEWHERE) if (key in (raw as Raw)) extra[key] = (raw as Raw)[key];
  return {
    backend,
    serverName: v.server_name as string,
    sqlite: { path: v['sqlite.path'] as string, busyTimeoutMs: v['sqlite.busy_timeout_ms'] as number },
    postgres: { url: v['postgres.url'] as string, poolSize: v['postgres.pool_size'] as number, migrateOnOpen: v['postgres.migrate_on_open'] as boolean },
    state: { fanIn: v['state.fan_in'] as number, maxBlocks: v['state.max_blocks'] as number, blockCacheEntries: v['state.block_cache_entries'] as number },
    extra,
  };
}

/** Sets a dotted key in a raw config object, creating sections as needed. */
export function setKey(raw: Raw, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = raw;
  for (const part of parts.slice(0, -1)) {
    if (typeof cur[part] !== 'object' || cur[part] === null) cur[part] = {};
    cur = cur[part] as Raw;
  }
  cur[parts[parts.length - 1]!] = value;
}

import { ConfigError } from '../types/errors.js';
import { preview } from '../types/input.js';
import { rememberConfigSecrets } from './redact.js';
import { unencodedInUserInfo } from './url-userinfo.js';
import { DEFAULT_BLOCK_CACHE_BYTES } from '../storage/shared/block-cache.js';
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
  /** Whether opening a store creates or upgrades its schema (migrate_on_open; postgres.migrate_on_open: false also turns it off there). */
  readonly migrateOnOpen: boolean;
  readonly sqlite: { readonly path: string; readonly busyTimeoutMs: number };
  readonly postgres: { readonly url: string; readonly poolSize: number; readonly migrateOnOpen: boolean; readonly schema: string };
  readonly cosmosdb: CosmosConfig;
  readonly state: {
    readonly fanIn: number; readonly maxBlocks: number; readonly blockCacheBytes: number;
    /** Where states differ: `builtin`, the spec's state resolution; `none`, a StateConflictError (the caller resolves). */
    readonly resolver: 'builtin' | 'none';
  };
  /** Retention of send-to-device messages a device has not fetched: days, 0 to keep them until it does. */
  readonly sendToDevice: { readonly maxAgeDays: number };
  /** Settings of drivers this package does not know, passed through untouched. */
  readonly extra: Readonly<Record<string, unknown>>;
}

export const COSMOS_CONSISTENCY_LEVELS = ['Strong', 'BoundedStaleness', 'Session', 'Eventual', 'ConsistentPrefix'] as const;
/** Cosmos DB's priority-based execution: what a request is marked with ('default': not marked). */
export const COSMOS_PRIORITY_LEVELS = ['default', 'low', 'high'] as const;

export interface CosmosConfig {
  readonly endpoint: string;
  /** The account key (secret). Either this and `endpoint`, or `connectionString`. */
  readonly key: string;
  /** AccountEndpoint=...;AccountKey=...; (secret). */
  readonly connectionString: string;
  readonly database: string;
  readonly container: string;
  /** Every partition key starts with it: tenants sharing a container never see each other's data. */
  readonly tenant: string;
  readonly consistencyLevel: (typeof COSMOS_CONSISTENCY_LEVELS)[number];
  /** Create the database and container (partition key /pk, event JSON unindexed) if they do not exist. */
  readonly createIfMissing: boolean;
  /** Provisioned RU/s for a container this creates (0: serverless or the database's shared throughput). */
  readonly throughput: number;
  /** The SDK's 429 handling: attempts, and the longest total wait. */
  readonly maxRetryAttempts: number;
  readonly maxRetryWaitSeconds: number;
  readonly requestTimeoutMs: number;
  /** Retries of 503s, timeouts and connection resets (every write is idempotent, so retrying is safe). */
  readonly transientRetries: number;
  /** Accept any TLS certificate (the local emulators' self-signed ones). Never on Azure. */
  readonly disableTlsVerification: boolean;
  /**
   * The priority every request is marked with, where the account has priority-based execution (otherwise the mark
   * is ignored): the CLI's background commands (import, copy, purge, check) take 'low' unless this says otherwise.
   */
  readonly priorityLevel: (typeof COSMOS_PRIORITY_LEVELS)[number];
}

export const DEFAULT_SQLITE_PATH = './data/matrix-storage.db';

/** A key of the file, its type, its default, and what to tell a deployer who got it wrong. */
interface KeySpec {
  readonly path: string;
  readonly kind: 'string' | 'int' | 'bool' | 'url' | 'enum' | 'name' | 'secret' | 'identifier';
  readonly fallback: string | number | boolean;
  readonly help: string;
  readonly min?: number;
  readonly max?: number;
  readonly secret?: boolean;
  /** For 'url': the schemes accepted. For 'enum': the values accepted. */
  readonly allowed?: readonly string[];
}

export const KEYS: readonly KeySpec[] = [
  { path: 'backend', kind: 'string', fallback: 'sqlite', help: 'one of sqlite, postgres, cosmosdb' },
  { path: 'server_name', kind: 'string', fallback: 'localhost', help: "this homeserver's name, e.g. example.org" },
  {
    path: 'migrate_on_open', kind: 'bool', fallback: true,
    help: 'true to create or upgrade the schema when a store is opened, false to require `matrix-storage migrate` first (every driver)',
  },
  { path: 'sqlite.path', kind: 'string', fallback: DEFAULT_SQLITE_PATH, help: 'a file path, or :memory:' },
  { path: 'sqlite.busy_timeout_ms', kind: 'int', fallback: 10_000, min: 0, max: 600_000, help: 'milliseconds to wait for a lock held by another process' },
  { path: 'postgres.url', kind: 'url', fallback: '', secret: true, allowed: ['postgres:', 'postgresql:'], help: 'a connection URL such as postgres://user:password@host:5432/dbname' },
  { path: 'postgres.pool_size', kind: 'int', fallback: 10, min: 1, max: 1000, help: 'the most connections the pool opens' },
  { path: 'postgres.schema', kind: 'identifier', fallback: 'public', help: 'a plain SQL identifier: lowercase letters, digits and _, starting with a letter or _, at most 63 characters, not starting with pg_ (e.g. public or matrix)' },
  { path: 'postgres.migrate_on_open', kind: 'bool', fallback: true, help: 'false to require `matrix-storage migrate` first on PostgreSQL only (migrate_on_open, at the top, does this for every driver)' },
  { path: 'cosmosdb.endpoint', kind: 'url', fallback: '', allowed: ['https:', 'http:'], help: 'the account endpoint, such as https://myaccount.documents.azure.com:443/' },
  { path: 'cosmosdb.key', kind: 'secret', fallback: '', secret: true, help: 'the account key (or set cosmosdb.connection_string instead)' },
  { path: 'cosmosdb.connection_string', kind: 'secret', fallback: '', secret: true, help: 'AccountEndpoint=https://...;AccountKey=...;' },
  { path: 'cosmosdb.database', kind: 'name', fallback: 'matrix', help: 'a database name of letters, digits, "-" and "_"' },
  { path: 'cosmosdb.container', kind: 'name', fallback: 'matrix', help: 'a container name of letters, digits, "-" and "_"' },
  { path: 'cosmosdb.tenant', kind: 'name', fallback: 'default', help: 'a tenant name of letters, digits, "-" and "_" (at most 64)' },
  { path: 'cosmosdb.consistency_level', kind: 'enum', fallback: 'Session', allowed: COSMOS_CONSISTENCY_LEVELS, help: `one of ${COSMOS_CONSISTENCY_LEVELS.join(', ')}` },
  { path: 'cosmosdb.create_if_missing', kind: 'bool', fallback: true, help: 'true to create the database and container if missing' },
  { path: 'cosmosdb.throughput', kind: 'int', fallback: 0, min: 0, max: 1_000_000, help: 'RU/s for a container this creates; 0 for serverless or shared throughput' },
  { path: 'cosmosdb.max_retry_attempts', kind: 'int', fallback: 9, min: 0, max: 100, help: 'how many times the SDK retries a throttled (429) request' },
  { path: 'cosmosdb.max_retry_wait_seconds', kind: 'int', fallback: 30, min: 0, max: 3600, help: 'the longest total wait for 429 retries' },
  { path: 'cosmosdb.request_timeout_ms', kind: 'int', fallback: 10_000, min: 100, max: 600_000, help: 'milliseconds before a request times out' },
  { path: 'cosmosdb.transient_retries', kind: 'int', fallback: 5, min: 0, max: 100, help: 'retries of 503s, timeouts and connection resets' },
  { path: 'cosmosdb.disable_tls_verification', kind: 'bool', fallback: false, help: 'true only for a local emulator with a self-signed certificate' },
  { path: 'cosmosdb.priority_level', kind: 'enum', fallback: 'default', allowed: COSMOS_PRIORITY_LEVELS, help: `one of ${COSMOS_PRIORITY_LEVELS.join(', ')}: the priority requests are marked with, where the account has priority-based execution` },
  { path: 'state.fan_in', kind: 'int', fallback: DEFAULT_STATE_POLICY.fanIn, min: 2, max: MAX_SNAPSHOT_BLOCKS, help: 'how many same-sized state blocks are merged into one' },
  { path: 'state.max_blocks', kind: 'int', fallback: DEFAULT_STATE_POLICY.maxBlocks, min: 1, max: MAX_SNAPSHOT_BLOCKS, help: `the most blocks a state snapshot holds (at most ${MAX_SNAPSHOT_BLOCKS})` },
  {
    path: 'state.block_cache_bytes', kind: 'int', fallback: DEFAULT_BLOCK_CACHE_BYTES, min: 0, max: 2 ** 32,
    help: 'bytes of stored state blocks kept in memory (about 5 bytes a state entry), and an eighth more for snapshot block lists; 0 turns both caches off',
  },
  {
    path: 'state.resolver', kind: 'enum', fallback: 'builtin', allowed: ['builtin', 'none'],
    help: 'builtin to resolve states that differ (forks) by the spec\'s state resolution, or none to refuse them with a StateConflictError (the homeserver then supplies the state itself)',
  },
  {
    path: 'send_to_device.max_age_days', kind: 'int', fallback: 0, min: 0, max: 36_500,
    help: 'the days a send-to-device message waits for its device before `matrix-storage purge-send-to-device` deletes it; 0 keeps messages until their device fetches them',
  },
];

/** Keys an earlier release had, and what took their place: named in the error rather than "not a setting". */
const REPLACED_KEYS: Readonly<Record<string, string>> = {
  'state.block_cache_entries': 'state.block_cache_bytes, a budget in bytes of stored blocks (about 5 bytes a state entry: 2,000,000 entries were about 10000000)',
};

/** Environment variables that override the file, and the key each one sets. */
export const ENV_OVERRIDES: Readonly<Record<string, string>> = {
  MATRIX_STORAGE_BACKEND: 'backend',
  MATRIX_STORAGE_SERVER_NAME: 'server_name',
  MATRIX_STORAGE_MIGRATE_ON_OPEN: 'migrate_on_open',
  MATRIX_STORAGE_SQLITE_PATH: 'sqlite.path',
  DATABASE_URL: 'postgres.url',
  MATRIX_STORAGE_POSTGRES_POOL_SIZE: 'postgres.pool_size',
  MATRIX_STORAGE_POSTGRES_SCHEMA: 'postgres.schema',
  MATRIX_STORAGE_POSTGRES_MIGRATE_ON_OPEN: 'postgres.migrate_on_open',
  COSMOS_ENDPOINT: 'cosmosdb.endpoint',
  COSMOS_KEY: 'cosmosdb.key',
  COSMOS_CONNECTION_STRING: 'cosmosdb.connection_string',
  COSMOS_DATABASE: 'cosmosdb.database',
  COSMOS_CONTAINER: 'cosmosdb.container',
  COSMOS_TENANT: 'cosmosdb.tenant',
};

/**
 * Top-level sections this package does not define belong to drivers registered by other packages: they are
 * passed through in `extra` for those drivers to check. Only sections named by a registered driver are accepted.
 */

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
      // Before parsing: a parser would read part of such a password as the host, and the error would send the
      // deployer to the wrong fix.
      const unencoded = unencodedInUserInfo(value);
      if (unencoded.length > 0) {
        throw new ConfigError(`config key "${spec.path}": the user name or password in the URL holds characters that must be ` +
          `percent-encoded (value hidden: it holds a secret). Fix: write ${unencoded.join(', ')} in the password ` +
          '(encodeURIComponent(password) in JavaScript, urllib.parse.quote(password, safe="") in Python).');
      }
      const schemes = spec.allowed ?? [];
      try {
        if (!schemes.includes(new URL(value).protocol)) throw new Error('scheme');
      } catch {
        throw bad(spec, value, `expected a ${schemes.map((p) => `${p}//`).join(' or ')} URL`);
      }
      return value;
    }
    case 'secret': {
      if (typeof value !== 'string') throw bad(spec, value, 'expected a string');
      return value;
    }
    case 'enum': {
      if (typeof value !== 'string' || !(spec.allowed ?? []).includes(value)) throw bad(spec, value, 'expected one of the listed values');
      return value;
    }
    case 'name': {
      if (typeof value !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(value)) throw bad(spec, value, 'expected 1 to 64 letters, digits, "-" or "_"');
      return value;
    }
    case 'identifier': {
      // Used unquoted in search_path and CREATE SCHEMA: only names that need no quoting, and none PostgreSQL reserves.
      if (typeof value !== 'string' || !/^[a-z_][a-z0-9_]{0,62}$/.test(value) || value.startsWith('pg_')) {
        throw bad(spec, value, 'expected a plain SQL identifier');
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

/** Letters only, lowercased: `serverName`, `server-name` and `server_name` are the same key to a reader. */
const squash = (key: string) => key.toLowerCase().replace(/[^a-z0-9.]/g, '');

/** Edits (insert, delete, substitute) turning one text into the other. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_v, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/**
 * The setting a mistyped key most likely meant: the same letters in another case or separator (`serverName`), else
 * the closest by at most 2 edits (a third of the key, for short ones). Undefined when nothing is that close.
 */
export function nearestKey(key: string, candidates: readonly string[]): string | undefined {
  const same = candidates.find((c) => squash(c) === squash(key));
  if (same !== undefined) return same;
  let best: { key: string; d: number } | undefined;
  for (const c of candidates) {
    const d = editDistance(squash(key), squash(c));
    if (d <= Math.min(2, Math.floor(key.length / 3)) && (!best || d < best.d)) best = { key: c, d };
  }
  return best?.key;
}

/**
 * The configuration in effect as the file writes it (snake_case keys, nested by section), then the drivers' own
 * sections as given: what `matrix-storage config` prints (secrets hidden by the caller).
 */
export function configAsFile(config: StorageConfig): Record<string, unknown> {
  const out: Raw = {};
  const camel = (part: string) => part.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
  for (const spec of KEYS) setKey(out, spec.path, lookup(config as unknown as Raw, spec.path.split('.').map(camel).join('.')));
  return { ...out, ...config.extra };
}

/** Rejects keys nobody reads: a typo must not silently fall back to a default. */
function checkUnknownKeys(raw: Raw, extraSections: ReadonlySet<string>, prefix = ''): void {
  const known = new Set(KEYS.map((k) => k.path));
  const sections = new Set(KEYS.map((k) => k.path.split('.')[0]!));
  for (const [key, value] of Object.entries(raw)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (!prefix && !sections.has(key) && extraSections.has(key)) continue;
    if (!prefix && sections.has(key) && !known.has(key)) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new ConfigError(`config key "${path}": expected a section (a mapping of keys), got ${preview(value)}. Fix: see the configuration reference in README.md.`);
      }
      checkUnknownKeys(value as Raw, extraSections, path);
      continue;
    }
    if (!known.has(path) && REPLACED_KEYS[path]) {
      throw new ConfigError(`config key "${path}" was replaced by ${REPLACED_KEYS[path]}. Fix: use that key instead.`);
    }
    if (!known.has(path)) {
      const nearest = nearestKey(path, [...known, ...sections, ...extraSections]);
      if (nearest !== undefined) {
        throw new ConfigError(`config key "${path}" is not a setting (nothing reads it, so its default would apply). Fix: rename it to "${nearest}".`);
      }
      const suggestions = [...known].filter((k) => k.split('.')[0] === path.split('.')[0]).join(', ');
      throw new ConfigError(`config key "${path}" is not a setting. Fix: remove it${suggestions ? `, or use one of: ${suggestions}` : ''}.`);
    }
  }
}

/**
 * Turns a parsed YAML document (plus environment overrides already merged in) into a validated config.
 * Throws ConfigError naming the key, the bad value (never a secret) and the fix.
 */
export function validateConfig(raw: unknown, knownBackends: readonly string[], extraSections: readonly string[] = []): StorageConfig {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(`the config must be a mapping of keys (backend: sqlite, ...), got ${preview(raw)}`);
  }
  // Before anything can fail: a config refused for any reason must not be able to print its secrets either.
  rememberConfigSecrets(raw);
  checkUnknownKeys(raw as Raw, new Set(extraSections));
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
  if (backend === 'cosmosdb' && v['cosmosdb.connection_string'] === '' && (v['cosmosdb.endpoint'] === '' || v['cosmosdb.key'] === '')) {
    throw new ConfigError('config keys "cosmosdb.endpoint" and "cosmosdb.key" (or "cosmosdb.connection_string") are required when backend is cosmosdb. Fix: set them, or COSMOS_ENDPOINT and COSMOS_KEY.');
  }
  if (v['cosmosdb.connection_string'] !== '') checkConnectionString(v['cosmosdb.connection_string'] as string);
  // Only sections of drivers this package does not define: the built-in sections are read above, never copied.
  const builtIn = new Set(KEYS.map((k) => k.path.split('.')[0]!));
  const extra: Raw = {};
  for (const key of extraSections) if (key in (raw as Raw) && !builtIn.has(key)) extra[key] = (raw as Raw)[key];
  return {
    backend,
    serverName: v.server_name as string,
    migrateOnOpen: (v.migrate_on_open as boolean) && (backend !== 'postgres' || (v['postgres.migrate_on_open'] as boolean)),
    sqlite: { path: v['sqlite.path'] as string, busyTimeoutMs: v['sqlite.busy_timeout_ms'] as number },
    postgres: {
      url: v['postgres.url'] as string, poolSize: v['postgres.pool_size'] as number,
      migrateOnOpen: v['postgres.migrate_on_open'] as boolean, schema: v['postgres.schema'] as string,
    },
    cosmosdb: {
      endpoint: v['cosmosdb.endpoint'] as string,
      key: v['cosmosdb.key'] as string,
      connectionString: v['cosmosdb.connection_string'] as string,
      database: v['cosmosdb.database'] as string,
      container: v['cosmosdb.container'] as string,
      tenant: v['cosmosdb.tenant'] as string,
      consistencyLevel: v['cosmosdb.consistency_level'] as CosmosConfig['consistencyLevel'],
      createIfMissing: v['cosmosdb.create_if_missing'] as boolean,
      throughput: v['cosmosdb.throughput'] as number,
      maxRetryAttempts: v['cosmosdb.max_retry_attempts'] as number,
      maxRetryWaitSeconds: v['cosmosdb.max_retry_wait_seconds'] as number,
      requestTimeoutMs: v['cosmosdb.request_timeout_ms'] as number,
      transientRetries: v['cosmosdb.transient_retries'] as number,
      disableTlsVerification: v['cosmosdb.disable_tls_verification'] as boolean,
      priorityLevel: v['cosmosdb.priority_level'] as CosmosConfig['priorityLevel'],
    },
    state: {
      fanIn: v['state.fan_in'] as number, maxBlocks: v['state.max_blocks'] as number, blockCacheBytes: v['state.block_cache_bytes'] as number,
      resolver: v['state.resolver'] as 'builtin' | 'none',
    },
    sendToDevice: { maxAgeDays: v['send_to_device.max_age_days'] as number },
    extra,
  };
}

/**
 * A Cosmos DB connection string is `AccountEndpoint=https://...;AccountKey=...;`. A malformed one is refused here,
 * naming what is missing and never echoing the string (it holds the key).
 */
function checkConnectionString(text: string): void {
  const parts = new Map<string, string>();
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) parts.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const fix = 'Fix: copy the connection string from the Azure portal (Keys), of the form AccountEndpoint=https://<account>.documents.azure.com:443/;AccountKey=<key>;';
  const endpoint = parts.get('accountendpoint');
  if (!endpoint || !parts.get('accountkey')) {
    throw new ConfigError(`config key "cosmosdb.connection_string" must hold AccountEndpoint=... and AccountKey=... (value hidden: it holds a secret). ${fix}`);
  }
  try {
    if (!['https:', 'http:'].includes(new URL(endpoint).protocol)) throw new Error('scheme');
  } catch {
    throw new ConfigError(`config key "cosmosdb.connection_string": its AccountEndpoint is not an http(s) URL (value hidden: it holds a secret). ${fix}`);
  }
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

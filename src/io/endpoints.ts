import fs from 'node:fs';
import path from 'node:path';
import { knownBackends } from '../di/container.js';
import { loadConfig } from '../config/load.js';
import { validateConfig, type StorageConfig } from '../config/schema.js';
import { redactUrl } from '../config/redact.js';
import { ConfigError } from '../types/errors.js';
import { preview } from '../types/input.js';

/**
 * One side of a copy as the user names it: a config file (.yaml, .yml or .json: any backend, Cosmos DB
 * included), a `postgres://` URL, or a SQLite database path.
 */
export interface StoreEndpoint {
  readonly config: StorageConfig;
  /**
   * What the store is, without secrets: the backend and where it is (the file's absolute path; the URL, password
   * hidden, and schema; the Cosmos account, database, container and tenant). A copy in progress records its
   * source by this text, so that resuming from another source is refused.
   */
  readonly description: string;
}

const CONFIG_FILE = /\.(ya?ml|json)$/i;
const POSTGRES_URL = /^postgres(ql)?:\/\//i;

/**
 * Resolves FILE_OR_URL. A config file is read as it is: the environment overrides that apply to --config are not
 * applied (they would point both sides of a copy at the same store). `mustExist`: a SQLite path must name an
 * existing file (a copy's source; opening a path that is not there would create an empty store).
 */
export function resolveEndpoint(spec: string, options: { mustExist?: boolean; cwd?: string } = {}): StoreEndpoint {
  const cwd = options.cwd ?? process.cwd();
  let config: StorageConfig;
  if (POSTGRES_URL.test(spec)) {
    config = validateConfig({ backend: 'postgres', postgres: { url: spec } }, knownBackends(), knownBackends());
  } else if (CONFIG_FILE.test(spec)) {
    config = loadConfig({ file: path.resolve(cwd, spec), env: {}, cwd, knownBackends: knownBackends() }).config;
  } else {
    if (spec.trim() === '') throw new ConfigError('an empty store name: give a config file, a postgres:// URL or a SQLite file path');
    config = validateConfig({ backend: 'sqlite', sqlite: { path: path.resolve(cwd, spec) } }, knownBackends(), knownBackends());
  }
  if (config.backend === 'sqlite' && options.mustExist && config.sqlite.path !== ':memory:' && !fs.existsSync(config.sqlite.path)) {
    throw new ConfigError(`no SQLite database at ${preview(config.sqlite.path)}. Fix: name an existing file, a config file (.yaml) or a postgres:// URL.`);
  }
  return { config, description: describeStore(config) };
}

/** The store a config names, in words without secrets (see StoreEndpoint.description). */
export function describeStore(config: StorageConfig): string {
  switch (config.backend) {
    case 'sqlite':
      return `sqlite ${config.sqlite.path === ':memory:' ? ':memory:' : path.resolve(config.sqlite.path)}`;
    case 'postgres':
      return `postgres ${redactUrl(config.postgres.url)} schema ${config.postgres.schema}`;
    case 'cosmosdb': {
      const c = config.cosmosdb;
      const endpoint = c.endpoint || /AccountEndpoint=([^;]+)/i.exec(c.connectionString)?.[1] || '(no endpoint)';
      return `cosmosdb ${redactUrl(endpoint)} ${c.database}/${c.container} tenant ${c.tenant}`;
    }
    default:
      return config.backend;
  }
}

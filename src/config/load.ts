import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../types/errors.js';
import { ENV_OVERRIDES, setKey, validateConfig, type StorageConfig } from './schema.js';
import { scrubSecrets } from './redact.js';

export const DEFAULT_CONFIG_FILE = 'matrix-storage.yaml';

export interface LoadConfigOptions {
  /** A config file named by the user (--config): it must exist. Otherwise ./matrix-storage.yaml, if present. */
  readonly file?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly knownBackends: readonly string[];
}

/** Reads the file (if any), applies environment overrides, validates. ConfigError on anything wrong. */
export function loadConfig(options: LoadConfigOptions): { config: StorageConfig; source: string } {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  let raw: Record<string, unknown> = {};
  let source = 'defaults';
  const file = options.file ?? (fs.existsSync(path.join(cwd, DEFAULT_CONFIG_FILE)) ? DEFAULT_CONFIG_FILE : undefined);
  if (file !== undefined) {
    const full = path.resolve(cwd, file);
    let text: string;
    try {
      text = fs.readFileSync(full, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read config file ${full}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}. Fix: check the path given to --config.`);
    }
    try {
      raw = (parseYaml(text) ?? {}) as Record<string, unknown>;
    } catch (e) {
      // YAML error messages quote the offending line, which may hold a password: scrub what looks like one.
      const msg = scrubSecrets((e as Error).message, [...text.matchAll(/:\/\/[^:\s]*:([^@\s]+)@/g)].map((m) => m[1]));
      throw new ConfigError(`config file ${full} is not valid YAML: ${msg}`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new ConfigError(`config file ${full} must be a mapping of keys (backend: sqlite, ...)`);
    }
    source = full;
  }
  const overridden: string[] = [];
  for (const [name, key] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value !== undefined && value !== '') {
      setKey(raw, key, value);
      overridden.push(name);
    }
  }
  if (overridden.length > 0) source += ` + env ${overridden.join(', ')}`;
  return { config: validateConfig(raw, options.knownBackends, options.knownBackends), source };
}

import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../types/errors.js';
import { ENV_OVERRIDES, setKey, validateConfig, type StorageConfig } from './schema.js';
import { isSecretName, rememberSecrets, rememberSecretsInside } from './redact.js';

export const DEFAULT_CONFIG_FILE = 'matrix-storage.yaml';

/** Environment variables whose whole value is a secret. */
const SECRET_ENV = ['COSMOS_KEY', 'COSMOS_CONNECTION_STRING'] as const;

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
      // The parser's message quotes the offending lines, which may hold a secret: only its first line (what is
      // wrong, and where) is shown, and the values of secret-looking keys in the text are hidden all the same.
      for (const m of text.matchAll(/^\s*[-\w"']*?([\w]+)["']?\s*:\s*(.+?)\s*$/gm)) if (isSecretName(m[1]!)) rememberSecrets(m[2]!.replace(/^["']|["']$/g, ''));
      rememberSecretsInside(text);
      const what = (e as Error).message.split(/:?\n/)[0];
      throw new ConfigError(`config file ${full} is not valid YAML: ${what}. Fix: correct the file at that line (see yaml.org for the syntax).`);
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new ConfigError(`config file ${full} must be a mapping of keys (backend: sqlite, ...)`);
    }
    source = full;
  }
  const overridden: string[] = [];
  for (const name of SECRET_ENV) rememberSecrets(env[name]);
  rememberSecretsInside(env.DATABASE_URL ?? '');
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

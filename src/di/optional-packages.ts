import { ConfigError } from '../types/errors.js';

/**
 * PostgreSQL and Cosmos DB need packages that are optional peer dependencies of this one (`pg`, `@azure/cosmos`):
 * they are imported here, when a config names their backend, and only the package itself is loaded late (this
 * package's own modules are loaded as usual, so there is one copy of each). A missing package is a one-line
 * ConfigError naming what to install.
 */
const PACKAGES = {
  pg: { backend: 'postgres', version: '8.23.1' },
  '@azure/cosmos': { backend: 'cosmosdb', version: '4.9.3' },
} as const;

export async function loadOptionalPackage<T>(name: keyof typeof PACKAGES): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if ((err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'MODULE_NOT_FOUND') && String(err.message).includes(`'${name}'`)) {
      const { backend, version } = PACKAGES[name];
      throw new ConfigError(`backend ${backend} needs the package ${name}, which is not installed. Fix: npm install ${name}@${version}`);
    }
    throw e;
  }
}

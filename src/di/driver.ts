import type { ContainerModule } from 'inversify';
import type { StorageConfig } from '../config/schema.js';
import type { UnitOfWork } from '../storage/tables/index.js';

/**
 * What a driver gives the container: a ContainerModule that binds TOKENS.UnitOfWork and every table token, and
 * the opened unit of work (so the container can close it). Opening is async because a server may need to be
 * reached and migrated first.
 */
export interface OpenedDriver {
  readonly module: ContainerModule;
  readonly unitOfWork: UnitOfWork;
}

export type DriverFactory = (config: StorageConfig) => Promise<OpenedDriver>;

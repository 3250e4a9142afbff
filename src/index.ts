/**
 * matrix-storage: the storage layer of a Matrix homeserver.
 *
 *   const storage = await createStorage({ backend: 'sqlite', sqlite: { path: './data/hs.db' } });
 *   await storage.roomserver.appendEvent(parseEvent(json));
 *   await storage.close();
 */
import 'reflect-metadata';
import type { Container } from 'inversify';
import { loadConfig, type LoadConfigOptions } from './config/load.js';
import { validateConfig, type StorageConfig } from './config/schema.js';
import { createContainer, knownBackends } from './di/container.js';
import { TOKENS } from './di/tokens.js';
import type { RoomserverDatabase } from './storage/shared/roomserver-database.js';
import type { MigrationReport, RoomserverTables, StoreStatsReader, UnitOfWork } from './storage/tables/index.js';

export interface Storage {
  readonly config: StorageConfig;
  /** The room server's Database API. */
  readonly roomserver: RoomserverDatabase;
  /** The tables themselves, for driver authors and the conformance suite. */
  readonly tables: RoomserverTables;
  readonly unitOfWork: UnitOfWork;
  readonly stats: StoreStatsReader;
  readonly container: Container;
  /** Creates or upgrades the schema; the drivers also do this on open unless configured not to. */
  migrate(): Promise<MigrationReport>;
  close(): Promise<void>;
}

/** A config as a caller writes it: the YAML file's shape (snake_case), every key optional. */
export type StorageConfigInput = Record<string, unknown>;

/**
 * Opens the backend the config names (SQLite at ./data/matrix-storage.db by default), creating or upgrading its
 * schema, and returns the typed APIs. Accepts a validated StorageConfig or a raw config object.
 */
export async function createStorage(config: StorageConfig | StorageConfigInput = {}): Promise<Storage> {
  const resolved = isValidated(config) ? config : validateConfig(config, knownBackends(), knownBackends());
  const { container, driver } = await createContainer(resolved);
  return {
    config: resolved,
    roomserver: container.get<RoomserverDatabase>(TOKENS.RoomserverDatabase),
    tables: container.get<RoomserverTables>(TOKENS.RoomserverTables),
    unitOfWork: driver.unitOfWork,
    stats: container.get<StoreStatsReader>(TOKENS.StoreStats),
    container,
    migrate: () => driver.migrate(),
    close: () => driver.unitOfWork.close(),
  };
}

/** Loads matrix-storage.yaml (or the file given) with env overrides, validated. */
export function loadStorageConfig(options: Omit<LoadConfigOptions, 'knownBackends'> = {}) {
  return loadConfig({ ...options, knownBackends: knownBackends() });
}

function isValidated(c: StorageConfig | StorageConfigInput): c is StorageConfig {
  return typeof (c as StorageConfig).sqlite === 'object' && typeof (c as StorageConfig).state === 'object'
    && typeof (c as StorageConfig).serverName === 'string' && 'extra' in c;
}

export { registerDriver, knownBackends } from './di/container.js';
export type { DriverFactory, OpenedDriver } from './di/driver.js';
export { TOKENS } from './di/tokens.js';
export type { StorageConfig } from './config/schema.js';
export * from './types/errors.js';
export * from './types/nids.js';
export * from './types/state.js';
export * from './types/membership.js';
export * from './types/event.js';
export type * from './storage/tables/index.js';
export { RoomserverDatabase } from './storage/shared/roomserver-database.js';
export type { StoredEvent, StoreEventResult, AppendEventResult, StateContent } from './storage/shared/roomserver-database.js';
export { LatestEventsUpdater } from './storage/shared/latest-events-updater.js';
export { MembershipUpdater } from './storage/shared/membership-updater.js';
export { StateStorage } from './storage/shared/state-storage.js';
export { DEFAULT_STATE_POLICY, MAX_SNAPSHOT_BLOCKS, type StatePolicy } from './storage/shared/state-policy.js';

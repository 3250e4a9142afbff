import type { StateResolver } from '../storage/shared/state-resolver.js';
import type { ContainerModule } from 'inversify';
import type { StorageConfig } from '../config/schema.js';
import type { MigrationReport, MigrationStatus, UnitOfWork } from '../storage/tables/index.js';

/**
 * What a driver gives the container: a ContainerModule that binds TOKENS.UnitOfWork and every table token, and
 * the opened unit of work (so the container can close it). Opening is async because a server may need to be
 * reached and migrated first.
 */
export interface OpenedDriver {
  /**
   * Binds TOKENS.UnitOfWork, every table token and TOKENS.StoreStats. It is loaded after the shared module, so it
   * may also replace a shared default: `rebind(TOKENS.PartitionStorer).to(MyPartitionStorer)`.
   */
  readonly module: ContainerModule;
  readonly unitOfWork: UnitOfWork;
  /** Creates or upgrades the schema (what `matrix-storage migrate` runs); applying it twice does nothing. */
  migrate(): Promise<MigrationReport>;
  /**
   * Where the schema stands against this build; reads only. Optional for drivers written before it: a driver without
   * it is reported current once open (it must then honour `OpenOptions.migrate` itself).
   */
  migrationStatus?(): Promise<MigrationStatus>;
}

/** What opening a store may report as it goes. */
export interface OpenOptions {
  /**
   * Whether opening may create or upgrade the schema (default: the config's migrate_on_open). false: a store that
   * is behind this build, or does not exist, is refused with a SchemaNotCurrentError and nothing is written (what
   * workers and the commands that only read use).
   */
  readonly migrate?: boolean;
  /** Called as each schema migration is applied on open (what `matrix-storage migrate` shows as a progress bar). */
  readonly onMigrationProgress?: (p: MigrationProgress) => void;
  /**
   * The homeserver's own state resolver, used where states differ instead of the one `state.resolver` names
   * (see StateResolver: same input and output as `resolveState`).
   */
  readonly stateResolver?: StateResolver;
}

export interface MigrationProgress {
  /** Migrations applied so far (the one named included) and how many were pending when opening began. */
  readonly done: number;
  readonly total: number;
  readonly version: number;
  readonly name: string;
}

export type DriverFactory = (config: StorageConfig, options?: OpenOptions) => Promise<OpenedDriver>;

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
import { redact } from './config/redact.js';
import type { OpenedDriver, OpenOptions } from './di/driver.js';
import type { RoomserverDatabase } from './storage/shared/roomserver-database.js';
import type { FederationBlacklistDatabase } from './storage/shared/federation-blacklist-database.js';
import type { KeyBackupDatabase } from './storage/shared/key-backup-database.js';
import type { KeyDatabase } from './storage/shared/key-database.js';
import type { SendToDeviceDatabase } from './storage/shared/send-to-device-database.js';
import type {
  KeyBackupTables, KeyserverTables, MigrationReport, MigrationStatus, PartitionStorer, RequestStatsReader, RoomserverTables, StorageTables, StoreDump, StoreStatsReader, UnitOfWork,
} from './storage/tables/index.js';

export interface Storage {
  readonly config: StorageConfig;
  /** The room server's Database API. */
  readonly roomserver: RoomserverDatabase;
  /** The key server's Database API: device keys, one-time keys, key changes, cross-signing, stale lists, offsets. */
  readonly keys: KeyDatabase;
  /** Server-side key backup. */
  readonly keyBackup: KeyBackupDatabase;
  /** Send-to-device messages. */
  readonly sendToDevice: SendToDeviceDatabase;
  /** The federation blacklist. */
  readonly federation: FederationBlacklistDatabase;
  /** Stream consumer offsets (the PartitionStorer bound by DI; the key server embeds the same one). */
  readonly partitionStorer: PartitionStorer;
  /** The tables themselves, for driver authors and the conformance suite. */
  readonly tables: StorageTables;
  readonly unitOfWork: UnitOfWork;
  readonly stats: StoreStatsReader;
  /**
   * The store's whole content, table by table, in a driver-neutral form (what `copy` and `check` use), where the
   * driver provides it (every built-in driver does).
   */
  readonly dump: StoreDump | undefined;
  /** Requests made and their cost (Cosmos DB request units), where the driver counts them. */
  readonly requestStats: RequestStatsReader | undefined;
  readonly container: Container;
  /** Creates or upgrades the schema; the drivers also do this on open unless configured not to. */
  migrate(): Promise<MigrationReport>;
  /** Where the schema stands against this build (the migrations `migrate` would apply); reads only. */
  migrationStatus(): Promise<MigrationStatus>;
  /**
   * One round trip to the store (it reads the schema's version): whether it answered, how long it took, and whether
   * the schema is current. Never throws: a liveness probe reads `reachable`, a readiness probe `ok`.
   */
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
}

export interface StoreHealth {
  /** Reachable and the schema current: ready to serve. */
  readonly ok: boolean;
  readonly backend: string;
  readonly reachable: boolean;
  /** Milliseconds the round trip took (also when it failed). */
  readonly roundTripMs: number;
  /** Present when the store answered. */
  readonly schema?: { readonly version: number; readonly latest: number; readonly current: boolean };
  /** What went wrong, secrets hidden (the error's message). */
  readonly error?: string;
}

/** A config as a caller writes it: the YAML file's shape (snake_case), every key optional. */
export type StorageConfigInput = Record<string, unknown>;

/**
 * Opens the backend the config names (SQLite at ./data/matrix-storage.db by default), creating or upgrading its
 * schema, and returns the typed APIs. Accepts a validated StorageConfig or a raw config object.
 */
export async function createStorage(config: StorageConfig | StorageConfigInput = {}, options: OpenOptions = {}): Promise<Storage> {
  const resolved = isValidated(config) ? config : validateConfig(config, knownBackends(), knownBackends());
  const { container, driver } = await createContainer(resolved, options);
  // A driver still being written may not bind every table yet: it still opens, and the APIs it cannot serve
  // reject every call with the reason (see `provided`).
  const provided = <T extends object>(token: symbol, what: string): T => {
    try {
      return container.get<T>(token);
    } catch (e) {
      return unavailable<T>(`the ${resolved.backend} driver does not provide ${what}: ${(e as Error).message}`, e);
    }
  };
  const keyserverTables = provided<KeyserverTables>(TOKENS.KeyserverTables, 'the key server tables');
  const keyBackupTables = provided<KeyBackupTables>(TOKENS.KeyBackupTables, 'the key backup tables');
  const tables: StorageTables = {
    ...container.get<RoomserverTables>(TOKENS.RoomserverTables),
    deviceKeys: keyserverTables.deviceKeys,
    oneTimeKeys: keyserverTables.oneTimeKeys,
    fallbackKeys: keyserverTables.fallbackKeys,
    keyChanges: keyserverTables.keyChanges,
    crossSigningKeys: keyserverTables.crossSigningKeys,
    crossSigningSigs: keyserverTables.crossSigningSigs,
    staleDeviceLists: keyserverTables.staleDeviceLists,
    keyBackupVersions: keyBackupTables.keyBackupVersions,
    keyBackups: keyBackupTables.keyBackups,
    federationBlacklist: provided(TOKENS.FederationBlacklistTable, 'the federation blacklist table'),
    sendToDevice: provided(TOKENS.SendToDeviceTable, 'the send-to-device table'),
    partitionOffsets: provided(TOKENS.PartitionOffsetsTable, 'the partition offsets table'),
  };
  return {
    config: resolved,
    roomserver: container.get<RoomserverDatabase>(TOKENS.RoomserverDatabase),
    keys: provided<KeyDatabase>(TOKENS.KeyDatabase, 'the key server Database'),
    keyBackup: provided<KeyBackupDatabase>(TOKENS.KeyBackupDatabase, 'the key backup Database'),
    sendToDevice: provided<SendToDeviceDatabase>(TOKENS.SendToDeviceDatabase, 'the send-to-device Database'),
    federation: provided<FederationBlacklistDatabase>(TOKENS.FederationBlacklistDatabase, 'the federation blacklist Database'),
    partitionStorer: provided<PartitionStorer>(TOKENS.PartitionStorer, 'a PartitionStorer'),
    tables,
    unitOfWork: driver.unitOfWork,
    stats: container.get<StoreStatsReader>(TOKENS.StoreStats),
    dump: container.isBound(TOKENS.StoreDump) ? container.get<StoreDump>(TOKENS.StoreDump) : undefined,
    requestStats: container.isBound(TOKENS.RequestStats) ? container.get<RequestStatsReader>(TOKENS.RequestStats) : undefined,
    container,
    migrate: () => driver.migrate(),
    migrationStatus: () => statusOfDriver(driver),
    health: () => healthOf(resolved.backend, () => statusOfDriver(driver)),
    close: () => driver.unitOfWork.close(),
  };
}

/** A driver that does not report its schema (one written before migrationStatus) is current once it has opened. */
const statusOfDriver = (driver: OpenedDriver): Promise<MigrationStatus> =>
  driver.migrationStatus ? driver.migrationStatus() : Promise.resolve({ version: 0, latest: 0, pending: [] });

async function healthOf(backend: string, status: () => Promise<MigrationStatus>): Promise<StoreHealth> {
  const started = performance.now();
  const elapsed = () => Math.round((performance.now() - started) * 10) / 10;
  try {
    const s = await status();
    const current = s.pending.length === 0;
    return { ok: current, backend, reachable: true, roundTripMs: elapsed(), schema: { version: s.version, latest: s.latest, current } };
  } catch (e) {
    // Every StorageError's message has passed the secrets rule; any other error's is passed through it here.
    return { ok: false, backend, reachable: false, roundTripMs: elapsed(), error: redact((e as Error)?.message ?? String(e)) };
  }
}

/**
 * A stand-in for an API the driver cannot serve: any member read is a function whose calls reject with the
 * reason (a member of a group, such as one table of the key server tables, is such a stand-in too).
 */
function unavailable<T extends object>(reason: string, cause: unknown): T {
  const fail = () => Promise.reject(new Error(reason, { cause }));
  return new Proxy(fail, { get: (_target, prop) => (prop === 'then' ? undefined : unavailable(reason, cause)) }) as unknown as T;
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
export { migratesOnOpen, requireCurrent, statusOf } from './storage/shared/migration-status.js';
export type { DriverFactory, MigrationProgress, OpenedDriver, OpenOptions } from './di/driver.js';
export { TOKENS } from './di/tokens.js';
export type { StorageConfig } from './config/schema.js';
export * from './types/errors.js';
export * from './types/nids.js';
export * from './types/state.js';
export * from './types/membership.js';
export * from './types/event.js';
export * from './types/input.js';
export type * from './storage/tables/index.js';
export { RoomserverDatabase } from './storage/shared/roomserver-database.js';
export { KeyDatabase, type ClaimRequest } from './storage/shared/key-database.js';
export { KeyBackupDatabase, shouldReplaceRoomKey, type BackupKeysFilter } from './storage/shared/key-backup-database.js';
export { SendToDeviceDatabase } from './storage/shared/send-to-device-database.js';
export { FederationBlacklistDatabase } from './storage/shared/federation-blacklist-database.js';
export { TablePartitionStorer } from './storage/shared/partition-storer.js';
export * from './types/keys.js';
export type { StoredEvent, StoreEventResult, AppendEventResult, StateContent, RoomContents, RoomPurgeOptions, RoomPurgeResult } from './storage/shared/roomserver-database.js';
export { LatestEventsUpdater } from './storage/shared/latest-events-updater.js';
export { MembershipUpdater } from './storage/shared/membership-updater.js';
export { StateStorage } from './storage/shared/state-storage.js';
export { DEFAULT_STATE_POLICY, MAX_SNAPSHOT_BLOCKS, type StatePolicy } from './storage/shared/state-policy.js';
export { canonicalJSON, compareCodePoints } from './matrix/canonical-json.js';
export { redactEvent } from './matrix/redaction.js';
export { computeEventID, computeRoomID, contentHash, contentHashMatches, referenceHash } from './matrix/event-id.js';
export { declaredRoomVersion, ROOM_VERSIONS, roomVersionRules, type AuthRuleFlags, type RedactionRules, type RoomVersionRules } from './matrix/room-versions.js';
export { detectPDUFileFormat, PDU_FILE_FORMATS, readPDUFile, type PDUEntry, type PDUFileFormat, type ReadProgress } from './io/pdu-files.js';
export { copyStore, CopyMismatchError, CopyRefusedError, rowsHeld, type CopyOptions, type CopySummary, type TableCopyReport } from './io/copy.js';
export { verifyCopy, type TableComparison, type VerifyOptions, type VerifyReport } from './io/verify.js';
export { checkStore, type CheckReport, type Violation, type ViolationKind } from './io/check.js';
export { describeStore, resolveEndpoint, type StoreEndpoint } from './io/endpoints.js';
export { roomDetail, ROOM_SORTS, storeSizes, type RoomDetail, type RoomSize, type RoomSort, type SizeTotals, type StoreSizes } from './io/room-sizes.js';
export { runConformance, type ConformanceCaseResult, type ConformanceReport } from './io/conformance-run.js';
export { purgeHistory, purgeRoom, PurgeRefusedError, type HistoryCut, type PurgeOptions, type PurgeReport } from './io/purge.js';
export { eventIDsOfFile, ImportStoppedError, importPDUFile, type ImportOptions, type ImportProgress, type ImportSummary } from './io/import.js';
export { resolveState, stateMapKey, type EventLoader, type StateMap } from './matrix/state-resolution/index.js';
export { authEventTypes, checkAuthEvents, checkEventAuth, redactionAllowed, type AuthResult, type AuthState } from './matrix/auth/rules.js';

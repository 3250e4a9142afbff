import 'reflect-metadata';
import { Container, ContainerModule } from 'inversify';
import type { StorageConfig } from '../config/schema.js';
import { RoomserverDatabase } from '../storage/shared/roomserver-database.js';
import { StateStorage } from '../storage/shared/state-storage.js';
import type { StorageOptions } from '../storage/shared/storage-options.js';
import type { KeyBackupTables, KeyserverTables, RoomserverTables } from '../storage/tables/index.js';
import { FederationBlacklistDatabase } from '../storage/shared/federation-blacklist-database.js';
import { KeyBackupDatabase } from '../storage/shared/key-backup-database.js';
import { KeyDatabase } from '../storage/shared/key-database.js';
import { TablePartitionStorer } from '../storage/shared/partition-storer.js';
import { SendToDeviceDatabase } from '../storage/shared/send-to-device-database.js';
import { BUILTIN_DRIVERS } from './builtin-drivers.js';
import type { DriverFactory, OpenedDriver, OpenOptions } from './driver.js';
import { namedOperations } from '../storage/shared/request-accounting.js';
import { TOKENS } from './tokens.js';
import { resolveState } from '../matrix/state-resolution/index.js';
import type { StateResolver } from '../storage/shared/state-resolver.js';

/** The drivers this package ships. Others are added with registerDriver (see README "Writing a driver"). */
const drivers = new Map<string, DriverFactory>(BUILTIN_DRIVERS);

export function registerDriver(name: string, factory: DriverFactory): void {
  drivers.set(name, factory);
}

export const knownBackends = (): string[] => [...drivers.keys()];

/** The resolver the input path combines differing states with: the caller's, else the configured one (none: refuse). */
function stateResolverOf(config: StorageConfig, open: OpenOptions): { stateResolver?: StateResolver } {
  if (open.stateResolver) return { stateResolver: open.stateResolver };
  return config.state.resolver === 'builtin' ? { stateResolver: resolveState } : {};
}

/** Everything above the tables, bound once for every driver. */
function sharedModule(config: StorageConfig, open: OpenOptions): ContainerModule {
  const options: StorageOptions = {
    serverName: config.serverName,
    statePolicy: { fanIn: config.state.fanIn, maxBlocks: config.state.maxBlocks },
    blockCacheBytes: config.state.blockCacheBytes,
    sendToDeviceMaxAgeDays: config.sendToDevice.maxAgeDays,
    ...stateResolverOf(config, open),
  };
  return new ContainerModule(({ bind }) => {
    bind(TOKENS.Config).toConstantValue(config);
    bind(TOKENS.StorageOptions).toConstantValue(options);
    bind<RoomserverTables>(TOKENS.RoomserverTables).toResolvedValue(
      (eventTypes, eventStateKeys, events, eventJSON, rooms, stateBlocks, stateSnapshots, membership, previousEvents, invites,
        redactions, roomAliases, published, transactions, reportedEvents, userRoomKeys) => ({
        eventTypes, eventStateKeys, events, eventJSON, rooms, stateBlocks, stateSnapshots, membership, previousEvents, invites,
        redactions, roomAliases, published, transactions, reportedEvents, userRoomKeys,
      }) as RoomserverTables,
      [TOKENS.EventTypesTable, TOKENS.EventStateKeysTable, TOKENS.EventsTable, TOKENS.EventJSONTable, TOKENS.RoomsTable,
        TOKENS.StateBlockTable, TOKENS.StateSnapshotTable, TOKENS.MembershipTable, TOKENS.PreviousEventsTable, TOKENS.InvitesTable,
        TOKENS.RedactionsTable, TOKENS.RoomAliasesTable, TOKENS.PublishedTable, TOKENS.TransactionsTable, TOKENS.ReportedEventsTable,
        TOKENS.UserRoomKeysTable],
    ).inSingletonScope();
    bind(TOKENS.StateStorage).to(StateStorage).inSingletonScope();
    // Each Database API is wrapped so that the requests its calls make are charged to them (RequestStats).
    bind<RoomserverDatabase>(TOKENS.RoomserverDatabase).to(RoomserverDatabase).inSingletonScope().onActivation((_c, db) => namedOperations('roomserver', db, config.backend));

    bind<KeyserverTables>(TOKENS.KeyserverTables).toResolvedValue(
      (deviceKeys, oneTimeKeys, fallbackKeys, keyChanges, crossSigningKeys, crossSigningSigs, staleDeviceLists) => ({
        deviceKeys, oneTimeKeys, fallbackKeys, keyChanges, crossSigningKeys, crossSigningSigs, staleDeviceLists,
      }) as KeyserverTables,
      [TOKENS.DeviceKeysTable, TOKENS.OneTimeKeysTable, TOKENS.FallbackKeysTable, TOKENS.KeyChangesTable, TOKENS.CrossSigningKeysTable,
        TOKENS.CrossSigningSigsTable, TOKENS.StaleDeviceListsTable],
    ).inSingletonScope();
    bind<KeyBackupTables>(TOKENS.KeyBackupTables).toResolvedValue(
      (keyBackupVersions, keyBackups) => ({ keyBackupVersions, keyBackups }) as KeyBackupTables,
      [TOKENS.KeyBackupVersionsTable, TOKENS.KeyBackupsTable],
    ).inSingletonScope();
    // The default PartitionStorer; a driver with its own rebinds TOKENS.PartitionStorer in its module (loaded after this one).
    bind(TOKENS.PartitionStorer).to(TablePartitionStorer).inSingletonScope();
    bind<FederationBlacklistDatabase>(TOKENS.FederationBlacklistDatabase).to(FederationBlacklistDatabase).inSingletonScope().onActivation((_c, db) => namedOperations('federation', db, config.backend));
    bind<KeyDatabase>(TOKENS.KeyDatabase).to(KeyDatabase).inSingletonScope().onActivation((_c, db) => namedOperations('keys', db, config.backend));
    bind<KeyBackupDatabase>(TOKENS.KeyBackupDatabase).to(KeyBackupDatabase).inSingletonScope().onActivation((_c, db) => namedOperations('keyBackup', db, config.backend));
    bind<SendToDeviceDatabase>(TOKENS.SendToDeviceDatabase).to(SendToDeviceDatabase).inSingletonScope().onActivation((_c, db) => namedOperations('sendToDevice', db, config.backend));
  });
}

/** Opens the driver that config names and builds a container with it and the shared layer. */
export async function createContainer(config: StorageConfig, options: OpenOptions = {}): Promise<{ container: Container; driver: OpenedDriver }> {
  const factory = drivers.get(config.backend);
  if (!factory) throw new Error(`no driver registered for backend ${JSON.stringify(config.backend)}`);
  const driver = await factory(config, options);
  const container = new Container();
  // In this order: a driver's module may rebind a shared default (TOKENS.PartitionStorer).
  container.load(sharedModule(config, options), driver.module);
  return { container, driver };
}

import { CosmosRoomScope } from './room-scope.js';
import { ContainerModule } from 'inversify';
import type { DriverFactory } from '../../di/driver.js';
import { TOKENS } from '../../di/tokens.js';
import { EMPTY_STATE_KEY_NID, PREASSIGNED_EVENT_TYPES } from '../../types/nids.js';
import { COSMOS_CONNECTION, CosmosConnection } from './connection.js';
import { appliedLayouts, checkLayout, LAYOUT_MIGRATIONS, LAYOUT_VERSION } from './layout.js';
import { withMigrationLock } from './migration-lock.js';
import { migratesOnOpen, requireCurrent, statusOf } from '../shared/migration-status.js';
import { CosmosStoreDump } from './dump.js';
import { CosmosEventJSONTable } from './event-json.js';
import { CosmosEventStateKeysTable } from './event-state-keys.js';
import { CosmosEventTypesTable } from './event-types.js';
import { CosmosEventsTable } from './events.js';
import { CosmosInvitesTable } from './invites.js';
import { CosmosMembershipTable } from './membership.js';
import { CosmosPreviousEventsTable } from './previous-events.js';
import { CosmosPublishedTable } from './published.js';
import { CosmosReportedEventsTable } from './reported-events.js';
import { CosmosUserRoomKeysTable } from './user-room-keys.js';
import { CosmosRedactionsTable } from './redactions.js';
import { CosmosRoomAliasesTable } from './room-aliases.js';
import { CosmosRoomsTable } from './rooms.js';
import { CosmosStateBlockTable } from './state-block.js';
import { CosmosStateSnapshotTable } from './state-snapshot.js';
import { CosmosStoreStats } from './store-stats.js';
import { CosmosTransactionsTable } from './transactions.js';
import { CosmosCrossSigningKeysTable } from './cross-signing-keys.js';
import { CosmosCrossSigningSigsTable } from './cross-signing-sigs.js';
import { CosmosDeviceKeysTable } from './device-keys.js';
import { CosmosFederationBlacklistTable } from './federation-blacklist.js';
import { CosmosKeyBackupVersionsTable } from './key-backup-versions.js';
import { CosmosKeyBackupsTable } from './key-backups.js';
import { CosmosKeyChangesTable } from './key-changes.js';
import { CosmosOneTimeKeysTable } from './one-time-keys.js';
import { CosmosFallbackKeysTable } from './fallback-keys.js';
import { CosmosPartitionOffsetsTable } from './partition-offsets.js';
import { CosmosSendToDeviceTable } from './send-to-device.js';
import { CosmosStaleDeviceListsTable } from './stale-device-lists.js';
import { CosmosCommitStaging } from './commit-staging.js';
import { CosmosRoomCommit } from './room-commit.js';
import { CosmosRoomEvents } from './room-events.js';

/**
 * The Cosmos DB driver: connects (creating the database and container if configured to), seeds the preassigned
 * NIDs (idempotent upserts: Cosmos DB has no schema to migrate), checks the tenant's document layout (layout.ts),
 * then binds its tables.
 */
export const openCosmos: DriverFactory = async (config, options = {}) => {
  const migrating = migratesOnOpen(config, options);
  // A store that may not be migrated may not be created either.
  const conn = await CosmosConnection.open(migrating ? config.cosmosdb : { ...config.cosmosdb, createIfMissing: false });
  const seed = async () => {
    const types = new CosmosEventTypesTable(conn).map;
    const keys = new CosmosEventStateKeysTable(conn).map;
    await Promise.all([...PREASSIGNED_EVENT_TYPES.map(([nid, type]) => types.seed(type, nid)), keys.seed('', EMPTY_STATE_KEY_NID)]);
  };
  // Under the tenant's migration lock: two instances opening a new tenant never seed and mark it at once.
  const migrateLayout = () => withMigrationLock(conn, async () => { await seed(); await checkLayout(conn, conn.description); });
  const migrationStatus = async () => statusOf(LAYOUT_MIGRATIONS, await appliedLayouts(conn));
  try {
    if (migrating) await migrateLayout();
    else requireCurrent(await migrationStatus(), `Cosmos DB ${conn.description}`, options);
  } catch (e) {
    await conn.close();
    throw e;
  }
  const module = new ContainerModule(({ bind }) => {
    bind(COSMOS_CONNECTION).toConstantValue(conn);
    bind(TOKENS.UnitOfWork).toConstantValue(conn);
    bind(TOKENS.RequestStats).toConstantValue(conn.accounting);
    bind(TOKENS.EventTypesTable).to(CosmosEventTypesTable).inSingletonScope();
    bind(TOKENS.EventStateKeysTable).to(CosmosEventStateKeysTable).inSingletonScope();
    bind(TOKENS.EventsTable).to(CosmosEventsTable).inSingletonScope();
    bind(TOKENS.EventJSONTable).to(CosmosEventJSONTable).inSingletonScope();
    bind(TOKENS.RoomsTable).to(CosmosRoomsTable).inSingletonScope();
    bind(TOKENS.StateBlockTable).to(CosmosStateBlockTable).inSingletonScope();
    bind(TOKENS.StateSnapshotTable).to(CosmosStateSnapshotTable).inSingletonScope();
    bind(TOKENS.MembershipTable).to(CosmosMembershipTable).inSingletonScope();
    bind(TOKENS.PreviousEventsTable).to(CosmosPreviousEventsTable).inSingletonScope();
    bind(TOKENS.InvitesTable).to(CosmosInvitesTable).inSingletonScope();
    bind(TOKENS.RedactionsTable).to(CosmosRedactionsTable).inSingletonScope();
    bind(TOKENS.RoomAliasesTable).to(CosmosRoomAliasesTable).inSingletonScope();
    bind(TOKENS.PublishedTable).to(CosmosPublishedTable).inSingletonScope();
    bind(TOKENS.ReportedEventsTable).to(CosmosReportedEventsTable).inSingletonScope();
    bind(TOKENS.UserRoomKeysTable).to(CosmosUserRoomKeysTable).inSingletonScope();
    bind(TOKENS.TransactionsTable).to(CosmosTransactionsTable).inSingletonScope();
    bind(TOKENS.FederationBlacklistTable).to(CosmosFederationBlacklistTable).inSingletonScope();
    bind(TOKENS.DeviceKeysTable).to(CosmosDeviceKeysTable).inSingletonScope();
    bind(TOKENS.OneTimeKeysTable).to(CosmosOneTimeKeysTable).inSingletonScope();
    bind(TOKENS.FallbackKeysTable).to(CosmosFallbackKeysTable).inSingletonScope();
    bind(TOKENS.KeyChangesTable).to(CosmosKeyChangesTable).inSingletonScope();
    bind(TOKENS.CrossSigningKeysTable).to(CosmosCrossSigningKeysTable).inSingletonScope();
    bind(TOKENS.CrossSigningSigsTable).to(CosmosCrossSigningSigsTable).inSingletonScope();
    bind(TOKENS.StaleDeviceListsTable).to(CosmosStaleDeviceListsTable).inSingletonScope();
    bind(TOKENS.KeyBackupVersionsTable).to(CosmosKeyBackupVersionsTable).inSingletonScope();
    bind(TOKENS.KeyBackupsTable).to(CosmosKeyBackupsTable).inSingletonScope();
    bind(TOKENS.SendToDeviceTable).to(CosmosSendToDeviceTable).inSingletonScope();
    bind(TOKENS.PartitionOffsetsTable).to(CosmosPartitionOffsetsTable).inSingletonScope();
    bind(TOKENS.StoreStats).to(CosmosStoreStats).inSingletonScope();
    bind(TOKENS.StoreDump).to(CosmosStoreDump).inSingletonScope();
    bind(TOKENS.RoomScopeTable).to(CosmosRoomScope).inSingletonScope();
    // The tables the room commit writes through are the same instances the tokens give (their caches are shared).
    bind(CosmosRoomEvents).toSelf().inSingletonScope();
    bind(CosmosCommitStaging).toSelf().inSingletonScope();
    bind(CosmosEventStateKeysTable).toService(TOKENS.EventStateKeysTable);
    bind(CosmosEventsTable).toService(TOKENS.EventsTable);
    bind(CosmosEventJSONTable).toService(TOKENS.EventJSONTable);
    bind(CosmosRoomsTable).toService(TOKENS.RoomsTable);
    bind(CosmosMembershipTable).toService(TOKENS.MembershipTable);
    bind(CosmosInvitesTable).toService(TOKENS.InvitesTable);
    bind(CosmosRedactionsTable).toService(TOKENS.RedactionsTable);
    bind(CosmosTransactionsTable).toService(TOKENS.TransactionsTable);
    bind(TOKENS.PlanCommitter).to(CosmosRoomCommit).inSingletonScope();
  });
  const migrate = async () => {
    const before = await appliedLayouts(conn);
    await migrateLayout();
    return { applied: LAYOUT_MIGRATIONS.map((m) => m.version).filter((v) => !before.has(v)), version: LAYOUT_VERSION };
  };
  return { module, unitOfWork: conn, migrate, migrationStatus };
};

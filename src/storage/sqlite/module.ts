import { ContainerModule } from 'inversify';
import { TOKENS } from '../../di/tokens.js';
import type { DriverFactory } from '../../di/driver.js';
import { SQLITE_CONNECTION, SqliteConnection } from './connection.js';
import { SqliteEventJSONTable } from './event-json.js';
import { SqliteEventStateKeysTable } from './event-state-keys.js';
import { SqliteEventTypesTable } from './event-types.js';
import { SqliteEventsTable } from './events.js';
import { SqliteInvitesTable } from './invites.js';
import { SqliteMembershipTable } from './membership.js';
import { SqlitePreviousEventsTable } from './previous-events.js';
import { SqlitePublishedTable } from './published.js';
import { SqliteReportedEventsTable } from './reported-events.js';
import { SqliteUserRoomKeysTable } from './user-room-keys.js';
import { SqliteRedactionsTable } from './redactions.js';
import { SqliteRoomAliasesTable } from './room-aliases.js';
import { SqliteRoomsTable } from './rooms.js';
import { SqliteStateBlockTable } from './state-block.js';
import { SqliteStateSnapshotTable } from './state-snapshot.js';
import { SqliteTransactionsTable } from './transactions.js';
import { SqliteStoreStats } from './store-stats.js';
import { SqliteRoomScope, SqliteStoreDump } from './dump.js';
import { SqliteFederationBlacklistTable } from './federation-blacklist.js';
import { SqliteDeviceKeysTable } from './device-keys.js';
import { SqliteOneTimeKeysTable } from './one-time-keys.js';
import { SqliteFallbackKeysTable } from './fallback-keys.js';
import { SqliteKeyChangesTable } from './key-changes.js';
import { SqliteCrossSigningKeysTable } from './cross-signing-keys.js';
import { SqliteCrossSigningSigsTable } from './cross-signing-sigs.js';
import { SqliteStaleDeviceListsTable } from './stale-device-lists.js';
import { SqliteKeyBackupVersionsTable } from './key-backup-versions.js';
import { SqliteKeyBackupsTable } from './key-backups.js';
import { SqliteSendToDeviceTable } from './send-to-device.js';
import { SqlitePartitionOffsetsTable } from './partition-offsets.js';
import { appliedVersions, migrate, MIGRATIONS, schemaVersion } from './migrations.js';
import { migratesOnOpen, requireCurrent, statusOf } from '../shared/migration-status.js';

/** The SQLite driver: opens (and migrates) the file, then binds its tables. */
export const openSqlite: DriverFactory = async (config, options = {}) => {
  const conn = SqliteConnection.open({
    path: config.sqlite.path, busyTimeoutMs: config.sqlite.busyTimeoutMs,
    ...(options.onMigrationProgress ? { onMigrationProgress: options.onMigrationProgress } : {}),
    migrate: migratesOnOpen(config, options),
  });
  const migrationStatus = async () => statusOf(MIGRATIONS, appliedVersions(conn.db));
  if (!migratesOnOpen(config, options)) {
    try {
      requireCurrent(await migrationStatus(), `SQLite at ${config.sqlite.path}`, options);
    } catch (e) {
      await conn.close();
      throw e;
    }
  }
  const module = new ContainerModule(({ bind }) => {
    bind(SQLITE_CONNECTION).toConstantValue(conn);
    bind(TOKENS.UnitOfWork).toConstantValue(conn);
    bind(TOKENS.EventTypesTable).to(SqliteEventTypesTable).inSingletonScope();
    bind(TOKENS.EventStateKeysTable).to(SqliteEventStateKeysTable).inSingletonScope();
    bind(TOKENS.EventsTable).to(SqliteEventsTable).inSingletonScope();
    bind(TOKENS.EventJSONTable).to(SqliteEventJSONTable).inSingletonScope();
    bind(TOKENS.RoomsTable).to(SqliteRoomsTable).inSingletonScope();
    bind(TOKENS.StateBlockTable).to(SqliteStateBlockTable).inSingletonScope();
    bind(TOKENS.StateSnapshotTable).to(SqliteStateSnapshotTable).inSingletonScope();
    bind(TOKENS.MembershipTable).to(SqliteMembershipTable).inSingletonScope();
    bind(TOKENS.PreviousEventsTable).to(SqlitePreviousEventsTable).inSingletonScope();
    bind(TOKENS.InvitesTable).to(SqliteInvitesTable).inSingletonScope();
    bind(TOKENS.RedactionsTable).to(SqliteRedactionsTable).inSingletonScope();
    bind(TOKENS.RoomAliasesTable).to(SqliteRoomAliasesTable).inSingletonScope();
    bind(TOKENS.PublishedTable).to(SqlitePublishedTable).inSingletonScope();
    bind(TOKENS.ReportedEventsTable).to(SqliteReportedEventsTable).inSingletonScope();
    bind(TOKENS.UserRoomKeysTable).to(SqliteUserRoomKeysTable).inSingletonScope();
    bind(TOKENS.TransactionsTable).to(SqliteTransactionsTable).inSingletonScope();
    bind(TOKENS.FederationBlacklistTable).to(SqliteFederationBlacklistTable).inSingletonScope();
    bind(TOKENS.DeviceKeysTable).to(SqliteDeviceKeysTable).inSingletonScope();
    bind(TOKENS.OneTimeKeysTable).to(SqliteOneTimeKeysTable).inSingletonScope();
    bind(TOKENS.FallbackKeysTable).to(SqliteFallbackKeysTable).inSingletonScope();
    bind(TOKENS.KeyChangesTable).to(SqliteKeyChangesTable).inSingletonScope();
    bind(TOKENS.CrossSigningKeysTable).to(SqliteCrossSigningKeysTable).inSingletonScope();
    bind(TOKENS.CrossSigningSigsTable).to(SqliteCrossSigningSigsTable).inSingletonScope();
    bind(TOKENS.StaleDeviceListsTable).to(SqliteStaleDeviceListsTable).inSingletonScope();
    bind(TOKENS.KeyBackupVersionsTable).to(SqliteKeyBackupVersionsTable).inSingletonScope();
    bind(TOKENS.KeyBackupsTable).to(SqliteKeyBackupsTable).inSingletonScope();
    bind(TOKENS.SendToDeviceTable).to(SqliteSendToDeviceTable).inSingletonScope();
    bind(TOKENS.PartitionOffsetsTable).to(SqlitePartitionOffsetsTable).inSingletonScope();
    bind(TOKENS.StoreStats).to(SqliteStoreStats).inSingletonScope();
    bind(TOKENS.StoreDump).to(SqliteStoreDump).inSingletonScope();
    bind(TOKENS.RoomScopeTable).to(SqliteRoomScope).inSingletonScope();
    bind(TOKENS.RequestStats).toConstantValue(conn.accounting);
  });
  const migrateNow = async () => {
    const applied = [...conn.appliedOnOpen, ...migrate(conn.db)];
    conn.appliedOnOpen = [];
    return { applied, version: schemaVersion(conn.db) };
  };
  return { module, unitOfWork: conn, migrate: migrateNow, migrationStatus };
};

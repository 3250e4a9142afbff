import { ContainerModule } from 'inversify';
import { TOKENS } from '../../di/tokens.js';
import type { DriverFactory } from '../../di/driver.js';
import { migratesOnOpen, requireCurrent, statusOf } from '../shared/migration-status.js';
import { POSTGRES_CONNECTION, PostgresConnection } from './connection.js';
import { connectionFailure } from './errors.js';
import { loadOptionalPackage } from '../../di/optional-packages.js';
import { PostgresEventJSONTable } from './event-json.js';
import { PostgresEventStateKeysTable } from './event-state-keys.js';
import { PostgresEventTypesTable } from './event-types.js';
import { PostgresEventsTable } from './events.js';
import { PostgresInvitesTable } from './invites.js';
import { PostgresMembershipTable } from './membership.js';
import { PostgresPreviousEventsTable } from './previous-events.js';
import { PostgresPublishedTable } from './published.js';
import { PostgresReportedEventsTable } from './reported-events.js';
import { PostgresUserRoomKeysTable } from './user-room-keys.js';
import { PostgresRedactionsTable } from './redactions.js';
import { PostgresRoomAliasesTable } from './room-aliases.js';
import { PostgresRoomsTable } from './rooms.js';
import { PostgresStateBlockTable } from './state-block.js';
import { PostgresStateSnapshotTable } from './state-snapshot.js';
import { PostgresTransactionsTable } from './transactions.js';
import { PostgresStoreStats } from './store-stats.js';
import { PostgresRoomScope, PostgresStoreDump } from './dump.js';
import { PostgresFederationBlacklistTable } from './federation-blacklist.js';
import { PostgresDeviceKeysTable } from './device-keys.js';
import { PostgresOneTimeKeysTable } from './one-time-keys.js';
import { PostgresFallbackKeysTable } from './fallback-keys.js';
import { PostgresKeyChangesTable } from './key-changes.js';
import { PostgresCrossSigningKeysTable } from './cross-signing-keys.js';
import { PostgresCrossSigningSigsTable } from './cross-signing-sigs.js';
import { PostgresStaleDeviceListsTable } from './stale-device-lists.js';
import { PostgresKeyBackupVersionsTable } from './key-backup-versions.js';
import { PostgresKeyBackupsTable } from './key-backups.js';
import { PostgresSendToDeviceTable } from './send-to-device.js';
import { PostgresPartitionOffsetsTable } from './partition-offsets.js';
import { appliedVersions, migrate, MIGRATIONS, schemaVersion } from './migrations.js';

/**
 * The PostgreSQL driver: opens a pool, migrates the schema (or, with migrate_on_open false, checks that it is
 * current), then binds its tables to the tokens the SQLite driver binds them to (every table: room server,
 * federation blacklist, key server, key backup, send-to-device, partition offsets) and the store dump (dump.ts), and
 * its statement counts to TOKENS.RequestStats. The PartitionStorer is the shared default over the partition_offsets table.
 */
export const openPostgres: DriverFactory = async (config, options = {}) => {
  const { url, poolSize, schema } = config.postgres;
  const pg = await loadOptionalPackage<{ default: typeof import('pg').default }>('pg');
  const conn = new PostgresConnection(pg.default, { url, poolSize, schema });
  const migrationStatus = async () => {
    try {
      return statusOf(MIGRATIONS, await appliedVersions(conn.pool));
    } catch (e) {
      throw connectionFailure(e, conn.target);
    }
  };
  try {
    if (migratesOnOpen(config, options)) {
      conn.appliedOnOpen = await migrate(conn.pool, schema, options.onMigrationProgress);
    } else {
      requireCurrent(await migrationStatus(), `the PostgreSQL schema "${schema}"`, options);
    }
  } catch (e) {
    await conn.close();
    throw connectionFailure(e, conn.target);
  }
  const module = new ContainerModule(({ bind }) => {
    bind(POSTGRES_CONNECTION).toConstantValue(conn);
    bind(TOKENS.UnitOfWork).toConstantValue(conn);
    bind(TOKENS.EventTypesTable).to(PostgresEventTypesTable).inSingletonScope();
    bind(TOKENS.EventStateKeysTable).to(PostgresEventStateKeysTable).inSingletonScope();
    bind(TOKENS.EventsTable).to(PostgresEventsTable).inSingletonScope();
    bind(TOKENS.EventJSONTable).to(PostgresEventJSONTable).inSingletonScope();
    bind(TOKENS.RoomsTable).to(PostgresRoomsTable).inSingletonScope();
    bind(TOKENS.StateBlockTable).to(PostgresStateBlockTable).inSingletonScope();
    bind(TOKENS.StateSnapshotTable).to(PostgresStateSnapshotTable).inSingletonScope();
    bind(TOKENS.MembershipTable).to(PostgresMembershipTable).inSingletonScope();
    bind(TOKENS.PreviousEventsTable).to(PostgresPreviousEventsTable).inSingletonScope();
    bind(TOKENS.InvitesTable).to(PostgresInvitesTable).inSingletonScope();
    bind(TOKENS.RedactionsTable).to(PostgresRedactionsTable).inSingletonScope();
    bind(TOKENS.RoomAliasesTable).to(PostgresRoomAliasesTable).inSingletonScope();
    bind(TOKENS.PublishedTable).to(PostgresPublishedTable).inSingletonScope();
    bind(TOKENS.ReportedEventsTable).to(PostgresReportedEventsTable).inSingletonScope();
    bind(TOKENS.UserRoomKeysTable).to(PostgresUserRoomKeysTable).inSingletonScope();
    bind(TOKENS.TransactionsTable).to(PostgresTransactionsTable).inSingletonScope();
    bind(TOKENS.FederationBlacklistTable).to(PostgresFederationBlacklistTable).inSingletonScope();
    bind(TOKENS.DeviceKeysTable).to(PostgresDeviceKeysTable).inSingletonScope();
    bind(TOKENS.OneTimeKeysTable).to(PostgresOneTimeKeysTable).inSingletonScope();
    bind(TOKENS.FallbackKeysTable).to(PostgresFallbackKeysTable).inSingletonScope();
    bind(TOKENS.KeyChangesTable).to(PostgresKeyChangesTable).inSingletonScope();
    bind(TOKENS.CrossSigningKeysTable).to(PostgresCrossSigningKeysTable).inSingletonScope();
    bind(TOKENS.CrossSigningSigsTable).to(PostgresCrossSigningSigsTable).inSingletonScope();
    bind(TOKENS.StaleDeviceListsTable).to(PostgresStaleDeviceListsTable).inSingletonScope();
    bind(TOKENS.KeyBackupVersionsTable).to(PostgresKeyBackupVersionsTable).inSingletonScope();
    bind(TOKENS.KeyBackupsTable).to(PostgresKeyBackupsTable).inSingletonScope();
    bind(TOKENS.SendToDeviceTable).to(PostgresSendToDeviceTable).inSingletonScope();
    bind(TOKENS.PartitionOffsetsTable).to(PostgresPartitionOffsetsTable).inSingletonScope();
    bind(TOKENS.StoreStats).to(PostgresStoreStats).inSingletonScope();
    bind(TOKENS.StoreDump).to(PostgresStoreDump).inSingletonScope();
    bind(TOKENS.RoomScopeTable).to(PostgresRoomScope).inSingletonScope();
    bind(TOKENS.RequestStats).toConstantValue(conn.accounting);
  });
  const migrateNow = async () => {
    try {
      const applied = [...conn.appliedOnOpen, ...(await migrate(conn.pool, schema))];
      conn.appliedOnOpen = [];
      return { applied, version: await schemaVersion(conn.pool) };
    } catch (e) {
      throw connectionFailure(e, conn.target);
    }
  };
  return { module, unitOfWork: conn, migrate: migrateNow, migrationStatus };
};

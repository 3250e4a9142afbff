import { ContainerModule } from 'inversify';
import { TOKENS } from '../../di/tokens.js';
import type { DriverFactory } from '../../di/driver.js';
import { ConfigError } from '../../types/errors.js';
import { POSTGRES_CONNECTION, PostgresConnection } from './connection.js';
import { PostgresEventJSONTable } from './event-json.js';
import { PostgresEventStateKeysTable } from './event-state-keys.js';
import { PostgresEventTypesTable } from './event-types.js';
import { PostgresEventsTable } from './events.js';
import { PostgresInvitesTable } from './invites.js';
import { PostgresMembershipTable } from './membership.js';
import { PostgresPreviousEventsTable } from './previous-events.js';
import { PostgresPublishedTable } from './published.js';
import { PostgresRedactionsTable } from './redactions.js';
import { PostgresRoomAliasesTable } from './room-aliases.js';
import { PostgresRoomsTable } from './rooms.js';
import { PostgresStateBlockTable } from './state-block.js';
import { PostgresStateSnapshotTable } from './state-snapshot.js';
import { PostgresTransactionsTable } from './transactions.js';
import { PostgresStoreStats } from './store-stats.js';
import { LATEST_VERSION, migrate, schemaVersion } from './migrations.js';

/**
 * The PostgreSQL driver: opens a pool, migrates the schema (or, with postgres.migrate_on_open: false, checks that
 * it is current), then binds its tables to the tokens the SQLite driver binds them to, and its statement counts to
 * TOKENS.RequestStats. So far the room server's tables only: the key server, key backup and stream tables are not
 * bound yet, and the Storage APIs over them (resolved on first use) fail until they are.
 */
export const openPostgres: DriverFactory = async (config) => {
  const { url, poolSize, schema, migrateOnOpen } = config.postgres;
  const conn = new PostgresConnection({ url, poolSize, schema });
  try {
    if (migrateOnOpen) {
      conn.appliedOnOpen = await migrate(conn.pool, schema);
    } else {
      const version = await schemaVersion(conn.pool);
      if (version < LATEST_VERSION) {
        throw new ConfigError(`the PostgreSQL schema "${schema}" is at version ${version}${version === 0 ? ' (not created yet)' : ''}, ` +
          `this build needs version ${LATEST_VERSION}, and postgres.migrate_on_open is false. ` +
          'Fix: run `matrix-storage migrate` with this configuration (or set postgres.migrate_on_open: true).');
      }
    }
  } catch (e) {
    await conn.close();
    throw e;
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
    bind(TOKENS.TransactionsTable).to(PostgresTransactionsTable).inSingletonScope();
    bind(TOKENS.StoreStats).to(PostgresStoreStats).inSingletonScope();
    bind(TOKENS.RequestStats).toConstantValue(conn.accounting);
  });
  const migrateNow = async () => {
    const applied = [...conn.appliedOnOpen, ...(await migrate(conn.pool, schema))];
    conn.appliedOnOpen = [];
    return { applied, version: await schemaVersion(conn.pool) };
  };
  return { module, unitOfWork: conn, migrate: migrateNow };
};

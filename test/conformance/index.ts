/**
 * The conformance suite: every case runs against every driver. Another driver runs it from its own repository:
 *
 *   import { conformanceSuite } from 'matrix-storage/conformance';
 *   conformanceSuite({ describe, it, beforeEach, afterEach },
 *     { name: 'mydriver', open: (settings) => createStorage({ ...settings, backend: 'mydriver' }) });
 *
 * Each sub-suite is exported too, to run one table group at a time.
 */
import type { DriverUnderTest, TestFramework } from './harness.js';
import { databaseStateTests } from './database-state.js';
import { databaseStoreTests } from './database-store.js';
import { databaseAppendBatchTests } from './database-append-batch.js';
import { databaseGraphTests } from './database-graph.js';
import { databaseMembershipTests } from './database-membership.js';
import { databaseQueryTests } from './database-queries.js';
import { databaseBulkReadTests } from './database-bulk-reads.js';
import { databaseDirectoryReportsKeysTests } from './database-directory-reports-keys.js';
import { nidMapTableTests } from './tables-nid-maps.js';
import { eventTableTests } from './tables-events.js';
import { bulkWriteEventTableTests } from './tables-bulk-writes-events.js';
import { bulkWriteStateTableTests } from './tables-bulk-writes-state.js';
import { bulkWriteUserTableTests } from './tables-bulk-writes-users.js';
import { roomTableTests } from './tables-rooms.js';
import { stateTableTests } from './tables-state.js';
import { membershipTableTests } from './tables-membership.js';
import { miscTableTests } from './tables-misc.js';
import { keyserverTableTests } from './tables-keyserver.js';
import { keyBackupTableTests } from './tables-key-backup.js';
import { streamTableTests } from './tables-streams.js';
import { databaseKeyTests } from './database-keys.js';
import { databaseFallbackKeyTests } from './database-fallback-keys.js';
import { databaseKeyBackupTests } from './database-key-backup.js';
import { databaseStreamTests } from './database-streams.js';
import { hostileInputTests } from './hostile-input.js';
import { dumpTests } from './dump.js';
import { checkTests } from './check.js';
import { operatorToolTests } from './operator-tools.js';

export type { DriverUnderTest, TestFramework, CaseContext, SuiteSettings } from './harness.js';
export { SUITE_SETTINGS } from './harness.js';

export const subSuites = {
  databaseStoreTests,
  databaseAppendBatchTests,
  databaseGraphTests,
  databaseStateTests,
  databaseMembershipTests,
  databaseQueryTests,
  databaseBulkReadTests,
  databaseDirectoryReportsKeysTests,
  nidMapTableTests,
  eventTableTests,
  bulkWriteEventTableTests,
  bulkWriteStateTableTests,
  bulkWriteUserTableTests,
  roomTableTests,
  stateTableTests,
  membershipTableTests,
  miscTableTests,
  keyserverTableTests,
  keyBackupTableTests,
  streamTableTests,
  databaseKeyTests,
  databaseFallbackKeyTests,
  databaseKeyBackupTests,
  databaseStreamTests,
  hostileInputTests,
  dumpTests,
  checkTests,
  operatorToolTests,
} as const;

export function conformanceSuite(fw: TestFramework, driver: DriverUnderTest): void {
  fw.describe(`conformance: ${driver.name}`, () => {
    for (const suite of Object.values(subSuites)) suite(fw, driver);
  });
}

import type { EventJSONTable } from './event-json.js';
import type { EventStateKeysTable } from './event-state-keys.js';
import type { EventTypesTable } from './event-types.js';
import type { EventsTable } from './events.js';
import type { InvitesTable } from './invites.js';
import type { MembershipTable } from './membership.js';
import type { PreviousEventsTable } from './previous-events.js';
import type { PublishedTable } from './published.js';
import type { ReportedEventsTable } from './reported-events.js';
import type { UserRoomKeysTable } from './user-room-keys.js';
import type { RedactionsTable } from './redactions.js';
import type { RoomAliasesTable } from './room-aliases.js';
import type { RoomsTable } from './rooms.js';
import type { StateBlockTable } from './state-block.js';
import type { StateSnapshotTable } from './state-snapshot.js';
import type { TransactionsTable } from './transactions.js';
import type { CrossSigningKeysTable, CrossSigningSigsTable } from './cross-signing.js';
import type { DeviceKeysTable } from './device-keys.js';
import type { FederationBlacklistTable } from './federation-blacklist.js';
import type { KeyBackupsTable, KeyBackupVersionsTable } from './key-backup.js';
import type { KeyChangesTable } from './key-changes.js';
import type { OneTimeKeysTable } from './one-time-keys.js';
import type { FallbackKeysTable } from './fallback-keys.js';
import type { PartitionOffsetsTable } from './partition-offsets.js';
import type { SendToDeviceTable } from './send-to-device.js';
import type { StaleDeviceListsTable } from './stale-device-lists.js';

export type * from './dump.js';
export type * from './room-scope.js';
export type * from './event-json.js';
export type * from './event-state-keys.js';
export type * from './event-types.js';
export type * from './events.js';
export type * from './invites.js';
export type * from './membership.js';
export type * from './previous-events.js';
export type * from './published.js';
export type * from './reported-events.js';
export type * from './user-room-keys.js';
export type * from './redactions.js';
export type * from './room-aliases.js';
export type * from './rooms.js';
export type * from './state-block.js';
export type * from './state-snapshot.js';
export type * from './transactions.js';
export type * from './unit-of-work.js';
export type * from './cross-signing.js';
export type * from './device-keys.js';
export type * from './federation-blacklist.js';
export type * from './key-backup.js';
export type * from './key-changes.js';
export type * from './one-time-keys.js';
export type * from './fallback-keys.js';
export type * from './partition-offsets.js';
export type * from './send-to-device.js';
export type * from './stale-device-lists.js';

/** Every room server table, as one driver provides them. */
export interface RoomserverTables {
  readonly eventTypes: EventTypesTable;
  readonly eventStateKeys: EventStateKeysTable;
  readonly events: EventsTable;
  readonly eventJSON: EventJSONTable;
  readonly rooms: RoomsTable;
  readonly stateBlocks: StateBlockTable;
  readonly stateSnapshots: StateSnapshotTable;
  readonly membership: MembershipTable;
  readonly previousEvents: PreviousEventsTable;
  readonly invites: InvitesTable;
  readonly redactions: RedactionsTable;
  readonly roomAliases: RoomAliasesTable;
  readonly published: PublishedTable;
  readonly transactions: TransactionsTable;
  readonly reportedEvents: ReportedEventsTable;
  readonly userRoomKeys: UserRoomKeysTable;
}
export type * from './store-stats.js';
export type * from './request-stats.js';

/** Every key server table (device keys, one-time and fallback keys, key changes, cross-signing, stale device lists). */
export interface KeyserverTables {
  readonly deviceKeys: DeviceKeysTable;
  readonly oneTimeKeys: OneTimeKeysTable;
  readonly fallbackKeys: FallbackKeysTable;
  readonly keyChanges: KeyChangesTable;
  readonly crossSigningKeys: CrossSigningKeysTable;
  readonly crossSigningSigs: CrossSigningSigsTable;
  readonly staleDeviceLists: StaleDeviceListsTable;
}

/** The server-side key backup tables. */
export interface KeyBackupTables {
  readonly keyBackupVersions: KeyBackupVersionsTable;
  readonly keyBackups: KeyBackupsTable;
}

/** Every table of the store, as `storage.tables` exposes them. */
export interface StorageTables extends RoomserverTables, KeyserverTables, KeyBackupTables {
  readonly federationBlacklist: FederationBlacklistTable;
  readonly sendToDevice: SendToDeviceTable;
  readonly partitionOffsets: PartitionOffsetsTable;
}

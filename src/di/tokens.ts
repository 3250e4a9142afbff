/**
 * Dependency-injection tokens: one per table, one per Database API, and the few shared services.
 * A driver's ContainerModule binds the table tokens (and UnitOfWork); everything else is bound once in
 * di/container.ts. Symbol.for keeps tokens equal across module copies (a third-party driver's own install).
 */
export const TOKENS = {
  Config: Symbol.for('matrix-storage.Config'),
  UnitOfWork: Symbol.for('matrix-storage.UnitOfWork'),

  EventTypesTable: Symbol.for('matrix-storage.EventTypesTable'),
  EventStateKeysTable: Symbol.for('matrix-storage.EventStateKeysTable'),
  EventsTable: Symbol.for('matrix-storage.EventsTable'),
  EventJSONTable: Symbol.for('matrix-storage.EventJSONTable'),
  RoomsTable: Symbol.for('matrix-storage.RoomsTable'),
  StateBlockTable: Symbol.for('matrix-storage.StateBlockTable'),
  StateSnapshotTable: Symbol.for('matrix-storage.StateSnapshotTable'),
  MembershipTable: Symbol.for('matrix-storage.MembershipTable'),
  PreviousEventsTable: Symbol.for('matrix-storage.PreviousEventsTable'),
  InvitesTable: Symbol.for('matrix-storage.InvitesTable'),
  RedactionsTable: Symbol.for('matrix-storage.RedactionsTable'),
  RoomAliasesTable: Symbol.for('matrix-storage.RoomAliasesTable'),
  PublishedTable: Symbol.for('matrix-storage.PublishedTable'),
  TransactionsTable: Symbol.for('matrix-storage.TransactionsTable'),
  ReportedEventsTable: Symbol.for('matrix-storage.ReportedEventsTable'),
  UserRoomKeysTable: Symbol.for('matrix-storage.UserRoomKeysTable'),

  FederationBlacklistTable: Symbol.for('matrix-storage.FederationBlacklistTable'),
  DeviceKeysTable: Symbol.for('matrix-storage.DeviceKeysTable'),
  OneTimeKeysTable: Symbol.for('matrix-storage.OneTimeKeysTable'),
  FallbackKeysTable: Symbol.for('matrix-storage.FallbackKeysTable'),
  KeyChangesTable: Symbol.for('matrix-storage.KeyChangesTable'),
  CrossSigningKeysTable: Symbol.for('matrix-storage.CrossSigningKeysTable'),
  CrossSigningSigsTable: Symbol.for('matrix-storage.CrossSigningSigsTable'),
  StaleDeviceListsTable: Symbol.for('matrix-storage.StaleDeviceListsTable'),
  KeyBackupVersionsTable: Symbol.for('matrix-storage.KeyBackupVersionsTable'),
  KeyBackupsTable: Symbol.for('matrix-storage.KeyBackupsTable'),
  SendToDeviceTable: Symbol.for('matrix-storage.SendToDeviceTable'),
  PartitionOffsetsTable: Symbol.for('matrix-storage.PartitionOffsetsTable'),

  StoreStats: Symbol.for('matrix-storage.StoreStats'),
  StoreDump: Symbol.for('matrix-storage.StoreDump'),
  /** One room's rows by the room (purges, room sizes); bound by drivers that have it. */
  RoomScopeTable: Symbol.for('matrix-storage.RoomScopeTable'),
  /** Writes the input path's plan with one atomic commit per room (PlanCommitter); bound by drivers that have it. */
  PlanCommitter: Symbol.for('matrix-storage.PlanCommitter'),
  /** Requests made and their charge (Cosmos DB RUs); bound by drivers that count them. */
  RequestStats: Symbol.for('matrix-storage.RequestStats'),

  /** All room server tables as one object (bound from the per-table tokens). */
  RoomserverTables: Symbol.for('matrix-storage.RoomserverTables'),
  StorageOptions: Symbol.for('matrix-storage.StorageOptions'),
  StateStorage: Symbol.for('matrix-storage.StateStorage'),
  RoomserverDatabase: Symbol.for('matrix-storage.RoomserverDatabase'),

  /** The key server tables as one object, and the key backup tables as one object (bound from the per-table tokens). */
  KeyserverTables: Symbol.for('matrix-storage.KeyserverTables'),
  KeyBackupTables: Symbol.for('matrix-storage.KeyBackupTables'),
  /**
   * Stream consumer offsets. The shared module binds the default (over PartitionOffsetsTable); a driver with its
   * own implementation replaces it with `rebind(TOKENS.PartitionStorer)` in its ContainerModule.
   */
  PartitionStorer: Symbol.for('matrix-storage.PartitionStorer'),
  FederationBlacklistDatabase: Symbol.for('matrix-storage.FederationBlacklistDatabase'),
  KeyDatabase: Symbol.for('matrix-storage.KeyDatabase'),
  KeyBackupDatabase: Symbol.for('matrix-storage.KeyBackupDatabase'),
  SendToDeviceDatabase: Symbol.for('matrix-storage.SendToDeviceDatabase'),
} as const;

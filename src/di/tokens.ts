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

  StoreStats: Symbol.for('matrix-storage.StoreStats'),

  /** All room server tables as one object (bound from the per-table tokens). */
  RoomserverTables: Symbol.for('matrix-storage.RoomserverTables'),
  StorageOptions: Symbol.for('matrix-storage.StorageOptions'),
  StateStorage: Symbol.for('matrix-storage.StateStorage'),
  RoomserverDatabase: Symbol.for('matrix-storage.RoomserverDatabase'),
} as const;

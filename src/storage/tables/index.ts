import type { EventJSONTable } from './event-json.js';
import type { EventStateKeysTable } from './event-state-keys.js';
import type { EventTypesTable } from './event-types.js';
import type { EventsTable } from './events.js';
import type { InvitesTable } from './invites.js';
import type { MembershipTable } from './membership.js';
import type { PreviousEventsTable } from './previous-events.js';
import type { PublishedTable } from './published.js';
import type { RedactionsTable } from './redactions.js';
import type { RoomAliasesTable } from './room-aliases.js';
import type { RoomsTable } from './rooms.js';
import type { StateBlockTable } from './state-block.js';
import type { StateSnapshotTable } from './state-snapshot.js';
import type { TransactionsTable } from './transactions.js';

export type * from './event-json.js';
export type * from './event-state-keys.js';
export type * from './event-types.js';
export type * from './events.js';
export type * from './invites.js';
export type * from './membership.js';
export type * from './previous-events.js';
export type * from './published.js';
export type * from './redactions.js';
export type * from './room-aliases.js';
export type * from './rooms.js';
export type * from './state-block.js';
export type * from './state-snapshot.js';
export type * from './transactions.js';
export type * from './unit-of-work.js';

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
}
export type * from './store-stats.js';

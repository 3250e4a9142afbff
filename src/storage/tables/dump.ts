/**
 * A store's whole content in a driver-neutral form, table by table: what `matrix-storage copy` moves between any
 * two drivers and what `copy --verify-only` and `check` compare and inspect. Every row keeps its NIDs and stream
 * positions, so every reference between tables (state blocks, snapshots, memberships, invites, latest events,
 * redactions) holds in the copy as it does in the source.
 *
 * Each driver maps its own layout to these rows and back: the SQL drivers table by table, Cosmos DB from and to its
 * documents (a row may be several documents there: an event's row and its locator, a mapping both ways).
 */

/** A state entry as a dump carries it: [event type NID, state key NID, event NID]. */
export type DumpEntry = readonly [number, number, number];

export interface DumpRows {
  event_types: { nid: number; type: string };
  event_state_keys: { nid: number; key: string };
  rooms: { nid: number; roomID: string; version: string; latest: number[]; lastSent: number; snapshot: number };
  events: {
    nid: number; room: number; type: number; key: number; eventID: string; auth: number[]; depth: number;
    rejected: boolean; snapshot: number; sent: boolean;
  };
  event_json: { nid: number; json: string };
  /** Entries sorted by (type, key). */
  state_blocks: { nid: number; entries: DumpEntry[] };
  state_snapshots: { nid: number; room: number; blocks: number[] };
  membership: {
    room: number; target: number; sender: number; membership: number; event: number; local: boolean; forgotten: boolean;
  };
  previous_events: { prev: string; nid: number };
  /** `seq`: the invite's place in insertion order, which orders a user's active invites. */
  invites: { id: string; room: number; target: number; sender: number; retired: boolean; json: string; seq: number };
  /** `seq`: insertion order, which decides the first redaction stored for an event. */
  redactions: { id: string; redacts: string; validated: boolean; seq: number };
  room_aliases: { alias: string; roomID: string; creator: string };
  /** Appservice and network "" for the server's own room list. */
  published: { roomID: string; appserviceID: string; networkID: string; published: boolean };
  /** receivedTS: milliseconds since 1970. */
  reported_events: {
    id: number; room: number; event: number; reporter: number; sender: number; reason: string; score: number; receivedTS: number;
  };
  /** Keys as unpadded base64; privateKey null for a remote user. */
  user_room_keys: { user: number; room: number; privateKey: string | null; publicKey: string };
  transactions: { transactionID: string; sessionID: number; userID: string; eventID: string };
  federation_blacklist: { server: string };
  device_keys: { userID: string; deviceID: string; tsAdded: number; keyJSON: string; streamID: number; displayName: string | null };
  one_time_keys: { userID: string; deviceID: string; algorithm: string; keyID: string; tsAdded: number; keyJSON: string };
  fallback_keys: { userID: string; deviceID: string; algorithm: string; keyID: string; tsAdded: number; keyJSON: string; used: boolean };
  key_changes: { userID: string; changeID: number };
  cross_signing_keys: { userID: string; keyType: number; keyData: string };
  cross_signing_sigs: { originUserID: string; originKeyID: string; targetUserID: string; targetKeyID: string; signature: string };
  stale_device_lists: { userID: string; domain: string; stale: boolean; tsAdded: number };
  key_backup_versions: { version: number; userID: string; algorithm: string; authData: string; etag: string; deleted: boolean };
  key_backups: {
    userID: string; version: string; roomID: string; sessionID: string; firstMessageIndex: number; forwardedCount: number;
    verified: boolean; sessionData: string;
  };
  /** sentAt: milliseconds since 1970. */
  send_to_device: { id: number; userID: string; deviceID: string; content: string; sentAt: number };
  partition_offsets: { topic: string; partition: number; offset: number };
}

export type DumpTableName = keyof DumpRows;

/**
 * The tables in the order a copy writes them: what others refer to first, so that a target read part-way through a
 * copy never shows a reference to a row that is not there yet (the room rows, which name latest events and
 * snapshots, come after the events and state).
 */
export const DUMP_TABLES: readonly DumpTableName[] = [
  'event_types', 'event_state_keys', 'state_blocks', 'state_snapshots', 'event_json', 'events', 'previous_events',
  'redactions', 'invites', 'membership', 'transactions', 'rooms', 'room_aliases', 'published', 'reported_events', 'user_room_keys',
  'federation_blacklist', 'device_keys', 'one_time_keys', 'fallback_keys', 'key_changes', 'cross_signing_keys', 'cross_signing_sigs',
  'stale_device_lists', 'key_backup_versions', 'key_backups', 'send_to_device', 'partition_offsets',
];

/** One table of a dump. */
export interface DumpTable<R> {
  /** How many rows the table holds (the rows a full `read` pass returns). */
  count(): Promise<number>;
  /**
   * Up to `limit` rows after `cursor` (undefined: from the start), in an order of the driver's that stays the same
   * between calls; `next` is the cursor of the following page, undefined after the last. Rows a migration seeds
   * (the preassigned event types and the empty state key) are included.
   */
  read(cursor: string | undefined, limit: number): Promise<{ rows: R[]; next: string | undefined }>;
  /**
   * Stores the rows as they are, NIDs and positions kept. Writing a row that is there already (the same key)
   * leaves the same row: a copy that resumes may write a page twice. For a store no live writer is using.
   */
  write(rows: readonly R[]): Promise<void>;
  /**
   * Deletes these rows (as `read` returned them: the driver finds them by their key, and may use the other fields
   * to find what it derived from them), with every index entry or document the driver keeps for them, in one
   * transaction where the engine has them. A row that is not there is skipped: a purge that resumes may delete a
   * page twice. For a store no live writer is using.
   */
  delete(rows: readonly R[]): Promise<void>;
}

/** Where a copy into this store has got to: recorded in the target, so that a copy killed at any moment resumes. */
export interface CopyProgress {
  /** What is being copied from (a description without secrets) and how the copy was started. */
  readonly source: string;
  readonly startedAt: string;
  /** The table being copied, and the cursor of its next page (undefined: the table is done up to its end). */
  readonly table: DumpTableName | 'counters' | 'done';
  readonly cursor: string | undefined;
  /** Rows written per table so far. */
  readonly rows: Readonly<Partial<Record<DumpTableName, number>>>;
}

/** A whole store, table by table, with its counters and the copy progress record. */
export interface StoreDump {
  table<K extends DumpTableName>(name: K): DumpTable<DumpRows[K]>;
  /**
   * The store's counters: for each NID sequence and stream position, the highest value it has handed out (or
   * reserved). A copy raises the target's to at least the source's, so that new rows never reuse a copied value.
   */
  counters(): Promise<Record<string, number>>;
  /** Raises each named counter to at least the value given (never lowers one). */
  raiseCounters(counters: Readonly<Record<string, number>>): Promise<void>;
  readProgress(): Promise<CopyProgress | undefined>;
  /** Records the progress (undefined: removes the record). */
  writeProgress(progress: CopyProgress | undefined): Promise<void>;
  /**
   * Gives the space of deleted rows back where the engine needs to be asked (SQLite: VACUUM after a WAL
   * checkpoint; PostgreSQL: VACUUM, which makes it reusable without locking the tables; Cosmos DB frees it by
   * itself) and says, for the operator, what was done and what the engine will do later.
   */
  reclaimSpace(): Promise<{ readonly done: string }>;
}

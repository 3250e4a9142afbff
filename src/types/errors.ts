/**
 * Typed errors. Callers branch on the class (or on `code`, which survives serialisation), never on messages.
 * Messages name the thing that was wrong; they never contain secrets (see config/redact.ts).
 */
import { redact } from '../config/redact.js';

export abstract class StorageError extends Error {
  abstract readonly code: string;
  /** Set when `appendEvents` refused a call for one of its events: that event's index in the call. */
  eventIndex?: number;
  constructor(message: string, options?: { cause?: unknown }) {
    // Every message passes the one secrets rule (config/redact.ts), whoever wrote it.
    super(redact(message), options);
    this.name = new.target.name;
  }
}

/** A single-row lookup found no row (the reference's ErrNoRows). */
export class NotFoundError extends StorageError {
  readonly code = 'NOT_FOUND';
}

/** Requested events are not in the store. */
export class MissingEventError extends StorageError {
  readonly code = 'MISSING_EVENT';
}

/**
 * A pure Matrix algorithm (state resolution, an auth chain walk) needed events its loader does not hold:
 * `eventIDs` names them. It is a MissingEventError, so a caller that handles that handles this too.
 */
export class UnknownEventsError extends MissingEventError {
  constructor(message: string, readonly eventIDs: readonly string[]) {
    super(message);
  }
}

/** The state before an event, or a state block or snapshot, is not in the store. */
export class MissingStateError extends StorageError {
  readonly code = 'MISSING_STATE';
}

/**
 * An event's prev_events are not stored, or stored without state (outliers), and the caller supplied no state
 * before it: the store cannot know that state and will not guess. `eventIDs` lists them; fetch them (or the state
 * before the event, from /state_ids) and input again.
 */
export class MissingPrevEventsError extends StorageError {
  readonly code = 'MISSING_PREV_EVENTS';
  constructor(message: string, readonly eventIDs: readonly string[]) {
    super(message);
  }
}

/**
 * States that differ had to be combined (an event with several prev events, or a room with several forward
 * extremities) and no state resolver is configured: `conflicts` names the (type, state key) pairs whose events
 * differ. Configure a resolver (`state.resolver`, or pass one to createStorage) or supply the state before the event.
 */
export class StateConflictError extends StorageError {
  readonly code = 'STATE_CONFLICT';
  constructor(message: string, readonly conflicts: readonly { readonly type: string; readonly stateKey: string }[]) {
    super(message);
  }
}

/** A row with that unique key already exists, where the contract says a duplicate is an error. */
export class ConflictError extends StorageError {
  readonly code = 'CONFLICT';
}

/**
 * A record changed between being read and being written back (an ETag mismatch on Cosmos DB). The updaters
 * retry on it; a SQL driver never raises it because it locks the row instead.
 */
export class ConcurrentUpdateError extends ConflictError {}

/** A purge that cannot run: the cut is not an event of the room. */
export class PurgeRefusedError extends StorageError {
  readonly code = 'PURGE_REFUSED';
}

/**
 * A purge refused because another writer holds the room (its claim, on an engine without row locks: Cosmos DB):
 * run it again once the room is quiet. `until` is when that claim runs out (ms since 1970).
 */
export class RoomBeingWrittenError extends ConcurrentUpdateError {
  constructor(message: string, readonly until: number) {
    super(message);
  }
}

/** The caller passed something the store will not accept: a malformed event, an oversized ID, a bad NID. */
export class InvalidInputError extends StorageError {
  readonly code = 'INVALID_INPUT';
}

/** The configuration is wrong: names the key, the bad value (never a secret) and the fix. */
export class ConfigError extends StorageError {
  readonly code = 'CONFIG';
}

/**
 * The store's schema is behind this build (or not created: version 0) and opening it was not allowed to migrate
 * (migrate_on_open: false, or a command that only reads). Nothing was written. Names the fix: `matrix-storage migrate`.
 */
export class SchemaNotCurrentError extends ConfigError {
  constructor(
    message: string,
    readonly status: { readonly version: number; readonly latest: number; readonly pending: readonly { readonly version: number; readonly name: string }[] },
  ) {
    super(message);
  }
}

/** The store holds something it should not (a snapshot naming a missing block, an unparseable blob). */
export class CorruptionError extends StorageError {
  readonly code = 'CORRUPT';
}

/** A write to a key backup version that was deleted ("backup was deleted"): keys go to a live version only. */
export class KeyBackupDeletedError extends StorageError {
  readonly code = 'BACKUP_DELETED';
}

/**
 * The store cannot be reached or used: connection refused or lost, unknown host, authentication refused, a server
 * shutting down, a SQLite path that is not a database. The message names the backend and the target (never a
 * secret) and the likely fix. `retryable` says whether the same call may succeed later unchanged (a lost
 * connection, a restarting server) or needs the configuration fixed first (bad credentials, a missing database).
 * Nothing of the failed call is visible: a transaction it was part of is rolled back, and every write the
 * shared layer makes is safe to repeat, so retrying the call is always safe.
 */
export class StoreUnavailableError extends StorageError {
  readonly code = 'UNAVAILABLE';
  constructor(message: string, readonly retryable: boolean, options?: { cause?: unknown }) {
    super(message, options);
  }
}

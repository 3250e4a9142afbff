import { ConflictError, InvalidInputError, MissingEventError, MissingStateError, NotFoundError } from '../../types/errors.js';
import { MAX_SNAPSHOT_BLOCKS } from './state-policy.js';
import { EMPTY_STATE_KEY_NID, EventTypes, type StateBlockNID, type StateSnapshotNID } from '../../types/nids.js';
import type { DeviceMessage, KeyBackupVersion, SnapshotBlocks } from '../tables/index.js';

/**
 * The reference's contracts that every driver must phrase the same way, written once: which error a missing
 * row gives, what a duplicate gives, and how a bulk read that must find everything reports what it did not.
 */
export function notFound(what: string, key: unknown): NotFoundError {
  return new NotFoundError(`${what} ${describe(key)} not found`);
}

export function duplicate(what: string, key: unknown): ConflictError {
  return new ConflictError(`${what} ${describe(key)} already exists`);
}

/** For bulk reads whose contract is "all or error": names up to five missing keys. */
export function missingOf<K>(
  kind: 'event' | 'state', what: string, requested: readonly K[], found: (key: K) => boolean,
): MissingEventError | MissingStateError | undefined {
  const missing = [...new Set(requested)].filter((k) => !found(k));
  const repeated = requested.length !== new Set(requested).size;
  if (missing.length === 0 && !repeated) return undefined;
  const detail = missing.length > 0
    ? `${missing.length} not found: ${missing.slice(0, 5).map(describe).join(', ')}${missing.length > 5 ? ', …' : ''}`
    : 'an ID was asked for twice';
  const message = `${what}: ${detail}`;
  return kind === 'event' ? new MissingEventError(message) : new MissingStateError(message);
}

function describe(key: unknown): string {
  const s = typeof key === 'string' ? key : JSON.stringify(key);
  return s.length > 80 ? `${JSON.stringify(s.slice(0, 80))}…` : JSON.stringify(s);
}

/** Unique values, keeping first-seen order: bulk reads look each key up once. */
export const unique = <T>(values: readonly T[]): T[] => [...new Set(values)];

/**
 * The StateAtEvent contract, shared by the SQL drivers: every ID found (MissingEventError), and every event's
 * state known (MissingStateError) unless it is a genuine create event, whose state before is empty by definition.
 */
export function checkStateAt<R extends { eventID: string; eventTypeNID: number; eventStateKeyNID: number; beforeStateSnapshotNID: number }>(
  eventIDs: readonly string[], rows: readonly R[],
): readonly R[] {
  const found = new Set(rows.map((r) => r.eventID));
  const err = missingOf('event', 'state at events', eventIDs, (id) => found.has(id));
  if (err) throw err;
  for (const r of rows) {
    const isCreate = r.eventTypeNID === EventTypes.create && r.eventStateKeyNID === EMPTY_STATE_KEY_NID;
    if (r.beforeStateSnapshotNID === 0 && !isCreate) throw new MissingStateError(`the state before event ${r.eventID} is not known`);
  }
  return rows;
}

/** A snapshot's block list: at most 64 blocks, each a positive NID. */
export function checkBlockList(stateBlockNIDs: readonly number[]): void {
  if (stateBlockNIDs.length > MAX_SNAPSHOT_BLOCKS) {
    throw new InvalidInputError(`a state snapshot holds at most ${MAX_SNAPSHOT_BLOCKS} blocks, got ${stateBlockNIDs.length}`);
  }
  for (const nid of stateBlockNIDs) {
    if (!Number.isSafeInteger(nid) || nid < 1) throw new InvalidInputError(`state block NIDs are positive integers, got ${nid}`);
  }
}

/**
 * The answer of a joined "snapshot at event / current snapshot" read: snapshot 0 means the state is unknown (no
 * blocks); a non-zero snapshot whose row the join did not find means the store lost it.
 */
export function snapshotBlocks(stateSnapshotNID: StateSnapshotNID, blocks: readonly StateBlockNID[] | null): SnapshotBlocks {
  if (stateSnapshotNID === 0) return { stateSnapshotNID, stateBlockNIDs: [] };
  if (blocks === null) throw new MissingStateError(`state snapshot ${stateSnapshotNID} is named but not stored`);
  return { stateSnapshotNID, stateBlockNIDs: blocks };
}

/** A device-keys row as every driver stores it: the display name is null when the device has none. */
export interface DeviceKeyRow {
  readonly userID: string;
  readonly deviceID: string;
  readonly keyJSON: string;
  readonly streamID: number;
  readonly displayName: string | null;
}

/** The DeviceMessage a stored device-keys row stands for (no displayName property when it has none). */
export const deviceMessageOf = (r: DeviceKeyRow): DeviceMessage => ({
  userID: r.userID, deviceID: r.deviceID, keyJSON: r.keyJSON, streamID: r.streamID,
  ...(r.displayName !== null ? { displayName: r.displayName } : {}),
});

/** A key backup version row as every driver stores it: a numeric version, and `deleted` as a flag (0/1 on SQLite). */
export interface KeyBackupVersionRow {
  readonly userID: string;
  readonly version: number;
  readonly algorithm: string;
  readonly authData: string;
  readonly etag: string;
  readonly deleted: boolean | number;
}

/**
 * The selectKeyBackup contract on top of a driver's read: the version as a decimal string, or NotFoundError naming
 * the version asked for ("" asks for the user's latest).
 */
export function keyBackupVersionOf(row: KeyBackupVersionRow | undefined, userID: string, version: string): KeyBackupVersion {
  if (!row) throw notFound(version === '' ? 'a key backup of user' : 'key backup version', version === '' ? userID : version);
  return {
    userID: row.userID, version: String(row.version), algorithm: row.algorithm, authData: row.authData, etag: row.etag,
    deleted: row.deleted === true || row.deleted === 1,
  };
}

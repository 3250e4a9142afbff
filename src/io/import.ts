import type { Storage } from '../index.js';
import { InvalidInputError, StorageError, StoreUnavailableError } from '../types/errors.js';
import { checkNotClientFormat, parsePDU, type RoomEvent } from '../types/event.js';
import { MAX_APPEND_BATCH } from '../storage/shared/event-appender.js';
import { preview } from '../types/input.js';
import { declaredRoomVersion, roomVersionRules } from '../matrix/room-versions.js';
import type { RequestStats, StoreStats } from '../storage/tables/index.js';
import { detectPDUFileFormat, readPDUFile, type PDUEntry, type PDUFileFormat, type ReadProgress } from './pdu-files.js';

/**
 * Importing a file of federation PDUs into a store (what `matrix-storage import` runs), and computing their event
 * IDs (`matrix-storage event-id`).
 *
 * The room version of each PDU is its room's: a create event declares it (content.room_version, "1" when
 * absent); any other event takes the version of its room as a create event earlier in the file declared it, or as
 * the store holds it, or, for a room neither knows, the version the caller gives (`roomVersion`). Without one, the
 * import stops at that event, saying so.
 */
export interface ImportOptions {
  /** The version of rooms that are not stored yet and whose create event is not in the file before their events. */
  readonly roomVersion?: string;
  /** The file's format; detected when not given. */
  readonly format?: PDUFileFormat;
  /** Called as the file is read (a progress bar: bytes read of the file's size, events so far). */
  readonly onProgress?: (p: ImportProgress) => void;
  /** Events per commit (`appendEvents` call): 1 to 1,000, 100 unless given. */
  readonly batchSize?: number;
}

/** Events per commit unless the caller says: a backfill response's size, and most of the batch path's gain. */
export const DEFAULT_IMPORT_BATCH = 100;

export interface ImportProgress extends ReadProgress {
  readonly events: number;
}

export interface ImportSummary {
  readonly format: PDUFileFormat;
  /** PDUs read from the file. */
  readonly pdus: number;
  /** Events newly applied by this run. */
  readonly applied: number;
  /** Events that were already stored and applied (a re-run of the same file). */
  readonly alreadyStored: number;
  /** Events whose content hash did not match: stored in their redacted form, as the spec requires. */
  readonly redactedForContentHash: number;
  readonly elapsedMs: number;
  readonly eventsPerSecond: number;
  readonly stats: StoreStats;
  /** The import's requests (statements on SQLite and PostgreSQL) and what they cost, where the driver counts them. */
  readonly requests: RequestStats | undefined;
  readonly roomIDs: readonly string[];
}

/** An import that stopped at one PDU: where it is, and why. Everything before that PDU is stored, nothing of it. */
export class ImportStoppedError extends StorageError {
  readonly code = 'IMPORT_STOPPED';
  constructor(readonly where: string, readonly reason: unknown) {
    const why = reason instanceof StorageError ? reason.message : (reason as Error)?.message ?? String(reason);
    super(`${where}: ${why}`, { cause: reason });
  }
}

/** Resolves each PDU's room version: from create events read so far, then the store, then the caller's default. */
class RoomVersions {
  private readonly known = new Map<string, string>();
  /** Rooms whose version was the caller's default (no create event seen, none stored): how many events took it. */
  private readonly guessed = new Map<string, number>();

  constructor(private readonly stored: (roomID: string) => Promise<string | undefined>, private readonly fallback: string | undefined) {
    if (fallback !== undefined) roomVersionRules(fallback);
  }

  async of(pdu: Record<string, unknown>): Promise<string> {
    if (pdu.type === 'm.room.create' && pdu.state_key === '') return roomVersionRules(declaredRoomVersion(pdu.content)).id;
    const roomID = pdu.room_id;
    if (typeof roomID !== 'string') return this.fallback ?? '1'; // parsePDU refuses it, naming the field
    let version = this.known.get(roomID);
    if (version === undefined) {
      const stored = await this.stored(roomID);
      version = stored ?? this.fallback;
      if (stored === undefined && version !== undefined) this.guessed.set(roomID, 0);
      if (version === undefined) {
        throw new InvalidInputError(`room ${preview(roomID)} is not in the store and its m.room.create event does not come before this ` +
          'event in the file, so its room version is not known: give it with --room-version V (the room_version of its create event)');
      }
      this.known.set(roomID, version);
    }
    const guessed = this.guessed.get(roomID);
    if (guessed !== undefined) this.guessed.set(roomID, guessed + 1);
    return version;
  }

  /**
   * Learns a room's version from its (accepted) create event. Refuses a create event that declares another version
   * than the default its room's earlier events were read by: their IDs were computed by the wrong rules, and the
   * fix is to purge the room and import it again with the version the create event declares.
   */
  learn(roomID: string, version: string): void {
    const guessed = this.guessed.get(roomID);
    if (guessed !== undefined && guessed > 0 && version !== this.fallback) {
      throw new InvalidInputError(`the m.room.create event of room ${roomID} declares room version ${version}, but the ${guessed} ` +
        `event${guessed === 1 ? '' : 's'} of it before it in the file ${guessed === 1 ? 'was' : 'were'} read as version ${this.fallback} ` +
        `(--room-version), so their IDs follow the wrong rules. Fix: run again with --room-version ${version} (or with the create event ` +
        `before the room's other events); if an import stored any of them, first matrix-storage purge-room '${roomID}' --yes`);
    }
    this.guessed.delete(roomID);
    this.known.set(roomID, version);
  }
}

function asPDU(entry: PDUEntry): Record<string, unknown> {
  const v = entry.value;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidInputError(`a PDU must be a JSON object, got ${preview(v)}`);
  checkNotClientFormat(v as Record<string, unknown>);
  return v as Record<string, unknown>;
}

/**
 * Stores a file's PDUs in file order (taken as the room's order), keeping the state at every event, memberships
 * and latest events. A PDU that cannot be stored stops the import with an ImportStoppedError naming it: every PDU
 * before it stays stored and nothing of it is; importing the same file again is harmless and goes on from there.
 * A store that goes away stops it with a StoreUnavailableError (retry the same import once it is back).
 */
export async function importPDUFile(storage: Storage, file: string, options: ImportOptions = {}): Promise<ImportSummary> {
  const batchSize = options.batchSize ?? DEFAULT_IMPORT_BATCH;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > MAX_APPEND_BATCH) {
    throw new InvalidInputError(`the batch size must be a whole number from 1 to ${MAX_APPEND_BATCH}, got ${preview(batchSize)}`);
  }
  const versions = new RoomVersions(async (roomID) => (await storage.roomserver.roomInfo(roomID))?.roomVersion || undefined, options.roomVersion);
  storage.requestStats?.reset();
  const started = Date.now();
  let pdus = 0;
  let applied = 0;
  let alreadyStored = 0;
  let redacted = 0;
  const rooms = new Set<string>();
  let read: ReadProgress = { bytesRead: 0, totalBytes: 0 };
  const { format, entries } = await openPDUFile(file, options.format, (p) => { read = p; });
  // PDUs read but not stored yet, with where each is in the file and whether its content hash matched.
  let batch: { event: RoomEvent; where: string; contentHashMatched: boolean }[] = [];

  /** Stores the batch in one commit. A refused event: the events before it are stored, then the import stops at it. */
  const flush = async () => {
    if (batch.length === 0) return;
    const pending = batch;
    batch = [];
    let results;
    try {
      results = await storage.roomserver.appendEvents(pending.map((p) => p.event));
    } catch (e) {
      if (e instanceof StoreUnavailableError) {
        throw new StoreUnavailableError(`import stopped at ${pending[0]!.where} of ${file}: ${e.message} Everything before it is stored; ` +
          'run the same import again to go on from there.', e.retryable, { cause: e });
      }
      const at = e instanceof StorageError ? e.eventIndex : undefined;
      if (at === undefined) throw new ImportStoppedError(`${file} ${pending[0]!.where}`, e);
      // The call wrote nothing: the events before the refused one are stored again, on their own.
      batch = pending.slice(0, at);
      await flush();
      throw new ImportStoppedError(`${file} ${pending[at]!.where}`, e);
    }
    results.forEach((res, i) => {
      const { event, contentHashMatched } = pending[i]!;
      rooms.add(event.roomID);
      if (!contentHashMatched) redacted++;
      if (res.applied) applied++;
      else alreadyStored++;
    });
  };

  const reader = entries[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<PDUEntry>;
    try {
      next = await reader.next();
    } catch (e) {
      // A file that stops being readable (not JSON) stops the import there, the PDUs before it stored.
      await flush();
      throw e;
    }
    if (next.done) break;
    const entry = next.value;
    pdus++;
    try {
      const pdu = asPDU(entry);
      const { event, contentHashMatched } = parsePDU(entry.text ?? pdu, await versions.of(pdu));
      // Its room's later events take the version it declares, stored or not yet (a refused create stops the import).
      if (event.type === 'm.room.create' && event.stateKey === '') versions.learn(event.roomID, event.roomVersion!);
      batch.push({ event, where: entry.where, contentHashMatched });
    } catch (e) {
      // Everything before this PDU is stored before the import stops at it.
      await flush();
      throw new ImportStoppedError(`${file} ${entry.where}`, e);
    }
    if (batch.length >= batchSize) await flush();
    options.onProgress?.({ ...read, events: pdus });
  }
  await flush();
  const elapsedMs = Math.max(1, Date.now() - started);
  return {
    format, pdus, applied, alreadyStored, redactedForContentHash: redacted, elapsedMs,
    eventsPerSecond: ((applied + alreadyStored) * 1000) / elapsedMs,
    requests: storage.requestStats?.snapshot(),
    stats: await storage.stats.collect(),
    roomIDs: [...rooms],
  };
}

async function openPDUFile(file: string, format: PDUFileFormat | undefined, onProgress: (p: ReadProgress) => void) {
  const detected = format ?? await detectPDUFileFormat(file);
  return { format: detected, entries: readPDUFile(file, { format: detected, onProgress }) };
}

/**
 * The computed event ID of each PDU of a file, in file order, without a store: a create event declares its room's
 * version, and `roomVersion` is that of rooms whose create event is not in the file before their events.
 */
export async function* eventIDsOfFile(file: string, options: { roomVersion?: string; format?: PDUFileFormat } = {}): AsyncGenerator<{ where: string; eventID: string }> {
  const versions = new RoomVersions(async () => undefined, options.roomVersion);
  const { entries } = await openPDUFile(file, options.format, () => {});
  for await (const entry of entries) {
    try {
      const pdu = asPDU(entry);
      const { event } = parsePDU(entry.text ?? pdu, await versions.of(pdu));
      if (event.type === 'm.room.create' && event.stateKey === '') versions.learn(event.roomID, event.roomVersion!);
      yield { where: entry.where, eventID: event.eventID };
    } catch (e) {
      throw new ImportStoppedError(`${file} ${entry.where}`, e);
    }
  }
}

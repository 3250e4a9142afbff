import { StoreUnavailableError } from '../../types/errors.js';
import type { CosmosConnection } from './connection.js';
import { migrateToRoomEvents } from './layout-migration.js';

/**
 * The document layout this build writes and reads, recorded per tenant in `meta|layout`:
 * - 1: the first round's documents (no layout document).
 * - 2: the room document also carries the write path's claim (`claimedUntil`), the events a batch is appending
 *   (`appending`) and its current snapshot's block list (`snapshotBlocks`). Only additions: a layout-1 tenant is read
 *   as it is, and is marked layout 2 when a layout-2 build opens it.
 * - 3: an event's locator also carries the state before the event (`snapshot`, kept equal to the row's by every
 *   change), and the room's claim its writer's token (`claimedBy`). Only additions, read as they are when absent
 *   (a locator without state is completed from the row); the mark keeps builds of layout 2, which would change a
 *   row's state without its locator's, from writing a tenant a layout-3 build has written.
 * - 4: a stored event is held by its room (RoomEventDoc, in the room's partition, written by the room's commit: a
 *   transactional batch with the room document), and so are the references the input path's events make to their
 *   prev events (PrevReferenceDoc); the locator only names the room. Opening a tenant of layout 1, 2 or 3 migrates it
 *   in place (migrateToRoomEvents): each stored event's RoomEventDoc is written from its locator and row; references
 *   stay where they were (the `pe|<ID>` set documents, which this layout still reads); then the layout is marked 4,
 *   which builds of layout 3 refuse. No writer of an older build may run meanwhile (stop them first, as for any
 *   migration).
 */
export const LAYOUT_VERSION = 4;

/** The layouts as migrations, for `matrix-storage migrate --status` (a tenant is "at version" its layout). */
export const LAYOUT_MIGRATIONS = [
  { version: 1, name: 'preassigned event type and state key NIDs' },
  { version: 2, name: 'room documents carry the write claim, appending batches and the snapshot block list' },
  { version: 3, name: 'event locators carry the state before their events; room claims carry their writer' },
  { version: 4, name: 'stored events and their prev_events references are held by their rooms, committed with the room document' },
] as const;

/** The tenant's layout as migration versions applied: none for a new tenant (no layout document); reads only. */
export async function appliedLayouts(conn: CosmosConnection): Promise<Set<number>> {
  const doc = await conn.requests.read<{ version: number }>('layout.read', 'layout', conn.pk('meta'));
  if (doc?.version === undefined) return new Set();
  return new Set(Array.from({ length: doc.version }, (_v, i) => i + 1));
}

/** Layouts this build migrates in place on open (see migrateToRoomEvents), then records as LAYOUT_VERSION. */
const MIGRATED_IN_PLACE = new Set([1, 2, 3]);

/**
 * Checks the tenant's layout on open: a new tenant, or one of a layout this build reads as it is, is marked with
 * LAYOUT_VERSION; a tenant written by another layout is refused, saying what to run. Returns the layout it found.
 */
export async function checkLayout(conn: CosmosConnection, where: string): Promise<{ found: number | undefined }> {
  const ref = { id: 'layout', pk: conn.pk('meta') };
  const doc = await conn.requests.read<{ version: number }>('layout.read', ref.id, ref.pk);
  // No layout document: a new tenant, or one a layout-1 build wrote.
  const found = doc?.version;
  if (found === LAYOUT_VERSION) return { found };
  if (found !== undefined && !MIGRATED_IN_PLACE.has(found)) {
    const fix = found > LAYOUT_VERSION
      ? 'upgrade matrix-storage to the release that wrote it (or newer)'
      : 'run `matrix-storage copy` with the release that wrote it into a new tenant, then use that tenant';
    throw new StoreUnavailableError(`Cosmos DB ${where}: this tenant's documents are in layout ${found}; this build reads layout ` +
      `${LAYOUT_VERSION}. Fix: ${fix}.`, false);
  }
  // No layout document: a new tenant (nothing to migrate), or one a layout-1 build wrote.
  await migrateToRoomEvents(conn);
  await conn.requests.upsert('layout.write', { ...ref, k: 'layout', version: LAYOUT_VERSION });
  return { found };
}

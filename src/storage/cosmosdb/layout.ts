import { StoreUnavailableError } from '../../types/errors.js';
import type { CosmosConnection } from './connection.js';

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
 */
export const LAYOUT_VERSION = 3;

/** The layouts as migrations, for `matrix-storage migrate --status` (a tenant is "at version" its layout). */
export const LAYOUT_MIGRATIONS = [
  { version: 1, name: 'preassigned event type and state key NIDs' },
  { version: 2, name: 'room documents carry the write claim, appending batches and the snapshot block list' },
] as const;

/** The tenant's layout as migration versions applied: none for a new tenant (no layout document); reads only. */
export async function appliedLayouts(conn: CosmosConnection): Promise<Set<number>> {
  const doc = await conn.requests.read<{ version: number }>('layout.read', 'layout', conn.pk('meta'));
  if (doc?.version === undefined) return new Set();
  return new Set(Array.from({ length: doc.version }, (_v, i) => i + 1));
}

/** Layouts this build takes over as they are (it only adds to them): opening one records LAYOUT_VERSION. */
const READABLE_AS_IS = new Set([1, 2]);

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
  if (found !== undefined && !READABLE_AS_IS.has(found)) {
    const fix = found > LAYOUT_VERSION
      ? 'upgrade matrix-storage to the release that wrote it (or newer)'
      : 'run `matrix-storage copy` with the release that wrote it into a new tenant, then use that tenant';
    throw new StoreUnavailableError(`Cosmos DB ${where}: this tenant's documents are in layout ${found}; this build reads layout ` +
      `${LAYOUT_VERSION}. Fix: ${fix}.`, false);
  }
  await conn.requests.upsert('layout.write', { ...ref, k: 'layout', version: LAYOUT_VERSION });
  return { found };
}

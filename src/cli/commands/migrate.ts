import { createStorage, type StoreHealth } from '../../index.js';
import type { StorageConfig } from '../../config/schema.js';
import type { MigrationStatus } from '../../storage/tables/index.js';
import { redact } from '../../config/redact.js';
import { SchemaNotCurrentError } from '../../types/errors.js';

/** `migrate --status` and `--dry-run`: where the schema stands and what a run would apply. */
export function formatMigrationStatus(status: MigrationStatus, where: string, dryRun: boolean): string[] {
  const head = `${where}: schema at version ${status.version}${status.version === 0 ? ' (not created)' : ''}, this build needs ${status.latest}`;
  if (status.pending.length === 0) return [`${head}: current${dryRun ? ', nothing to apply' : ''}`];
  return [
    `${head}: ${status.pending.length} migration${status.pending.length === 1 ? '' : 's'} pending${dryRun ? ' (a run would apply, in order)' : ''}`,
    ...status.pending.map((m) => `  ${m.version}: ${m.name}`),
  ];
}

/**
 * The health of the configured store, opened as it is (never created or migrated): a schema behind this build is
 * reachable but not ready; a store that cannot be opened is unreachable, with the reason (secrets hidden).
 */
export async function storeHealth(config: StorageConfig): Promise<StoreHealth> {
  const started = performance.now();
  let storage;
  try {
    storage = await createStorage(config, { migrate: false });
  } catch (e) {
    const roundTripMs = Math.round((performance.now() - started) * 10) / 10;
    if (e instanceof SchemaNotCurrentError) {
      const { version, latest } = e.status;
      return { ok: false, backend: config.backend, reachable: true, roundTripMs, schema: { version, latest, current: false }, error: e.message };
    }
    return { ok: false, backend: config.backend, reachable: false, roundTripMs, error: redact((e as Error)?.message ?? String(e)) };
  }
  try {
    return await storage.health();
  } finally {
    await storage.close();
  }
}

export function formatHealth(h: StoreHealth): string {
  const schema = h.schema ? `, schema version ${h.schema.version} of ${h.schema.latest}${h.schema.current ? ' (current)' : ' (behind: run `matrix-storage migrate`)'}` : '';
  const state = h.ok ? 'ok' : h.reachable ? 'not ready' : 'unreachable';
  return `${h.backend}: ${state}, round trip ${h.roundTripMs} ms${schema}${h.error && !h.schema ? `: ${h.error}` : ''}`;
}

import { randomUUID } from 'node:crypto';
import type { CosmosConnection } from './connection.js';

/** The lock document of a tenant's migrations (in its meta partition), and how long a holder may keep it. */
const LOCK_ID = 'migration-lock';
export const MIGRATION_LOCK_TTL_MS = 60_000;

interface LockDoc {
  readonly holder: string;
  /** Milliseconds since 1970 after which another opener may take the lock over (its holder died mid-migration). */
  readonly expiresAt: number;
}

export interface MigrationLockOptions {
  readonly ttlMs?: number;
  /** How often a waiting opener looks again. */
  readonly pollMs?: number;
  /** Called each time this opener finds the lock held by another (tests watch the wait through it). */
  readonly onWait?: (holder: string) => void;
}

/**
 * Runs `fn` holding the tenant's migration lock, so that two instances opening the same tenant never migrate it at
 * once: the lock is a document created only if absent (a second creator gets a conflict and waits); one whose
 * holder died is taken over after its expiry by a replace on the ETag read (of two openers that both see it
 * expired, one wins); a live holder renews it while it works; the holder deletes it when done, on its own ETag only. The document also carries a Cosmos DB
 * `ttl`, so a container with time-to-live enabled removes a dead holder's lock by itself.
 */
export async function withMigrationLock<T>(conn: CosmosConnection, fn: () => Promise<T>, options: MigrationLockOptions = {}): Promise<T> {
  const ttlMs = options.ttlMs ?? MIGRATION_LOCK_TTL_MS;
  const holder = randomUUID();
  const pk = conn.pk('meta');
  const lockDoc = () => ({ id: LOCK_ID, pk, k: 'migration-lock', holder, expiresAt: Date.now() + ttlMs, ttl: Math.ceil(ttlMs / 1000) });
  for (;;) {
    if (await conn.requests.create('migrationLock.create', lockDoc())) break;
    const held = await conn.requests.read<LockDoc>('migrationLock.read', LOCK_ID, pk);
    if (held && held.expiresAt < Date.now()) {
      if (await conn.requests.replaceIfMatch('migrationLock.takeOver', lockDoc(), held._etag)) break;
      continue;
    }
    if (held) options.onWait?.(held.holder);
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 250));
  }
  // Renewed while `fn` runs (a migration of a large tenant outlives the expiry), so that only a holder that died
  // loses it: a third of the way to each expiry, on the ETag read, and only while it is still this holder's.
  let renewing: Promise<void> = Promise.resolve();
  const renew = setInterval(() => {
    renewing = renewing.then(async () => {
      const mine = await conn.requests.read<LockDoc>('migrationLock.read', LOCK_ID, pk);
      if (mine?.holder === holder) await conn.requests.replaceIfMatch('migrationLock.renew', lockDoc(), mine._etag);
    }).catch(() => {});
  }, Math.max(50, Math.floor(ttlMs / 3)));
  renew.unref();
  try {
    return await fn();
  } finally {
    clearInterval(renew);
    await renewing;
    const mine = await conn.requests.read<LockDoc>('migrationLock.read', LOCK_ID, pk);
    if (mine?.holder === holder) await conn.requests.deleteIfMatch('migrationLock.release', LOCK_ID, pk, mine._etag);
  }
}

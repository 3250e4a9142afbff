import { StoreUnavailableError } from '../../types/errors.js';
import { redactUrl } from '../../config/redact.js';

/**
 * pg's failures that mean "the server cannot be reached or used", turned into StoreUnavailableError: one line that
 * names the server (without its password) and the likely fix. Anything else is returned unchanged.
 *
 * SQLSTATE classes: 08 connection exception, 57P01-57P03 the server is shutting down or starting up, 53300 too many
 * connections, 28 invalid authorization, 3D000 no such database. Node's socket errors have no SQLSTATE.
 */
export function connectionFailure(e: unknown, target: string): unknown {
  if (e instanceof StoreUnavailableError || typeof e !== 'object' || e === null) return e;
  const err = e as { code?: string; message?: string; errno?: number };
  const code = err.code ?? '';
  const message = String(err.message ?? e);
  const at = `PostgreSQL at ${target}`;
  const lost = (why: string) => new StoreUnavailableError(`${at}: ${why}. It is safe to retry once the server is back; nothing of the failed call was kept.`, true, { cause: e });
  switch (true) {
    case code === 'ECONNREFUSED':
      return new StoreUnavailableError(`cannot reach ${at}: connection refused. Fix: start the server, or correct the host and port in postgres.url (or DATABASE_URL).`, true, { cause: e });
    case code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME':
      return new StoreUnavailableError(`cannot reach ${at}: unknown host. Fix: correct the host name in postgres.url (or DATABASE_URL).`, code === 'EAI_AGAIN', { cause: e });
    case code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || /timeout exceeded when trying to connect/i.test(message):
      return new StoreUnavailableError(`cannot reach ${at}: the connection timed out. Fix: check the host, port and firewall for postgres.url.`, true, { cause: e });
    case code === '28P01' || code === '28000':
      return new StoreUnavailableError(`${at} refused the credentials (${firstLine(message)}). Fix: correct the user and password in postgres.url (or DATABASE_URL).`, false, { cause: e });
    case code === '3D000':
      return new StoreUnavailableError(`${at}: ${firstLine(message)}. Fix: create the database (createdb), or name an existing one in postgres.url.`, false, { cause: e });
    case code === '57P01' || code === '57P02':
      return lost(`the server is shutting down (${firstLine(message)})`);
    case code === '57P03':
      return lost('the server is starting up and does not accept connections yet');
    case code === '53300':
      return lost('the server has no free connection slots (too many clients); lower postgres.pool_size or raise max_connections');
    case code.startsWith('08') || code === 'ECONNRESET' || code === 'EPIPE' || /Connection terminated|connection ended|Client has encountered a connection error|not queryable/i.test(message):
      return lost(`the connection was lost (${firstLine(message)})`);
    default:
      return e;
  }
}

const firstLine = (s: string) => s.split('\n')[0]!.slice(0, 200);

/** host:port/database of a connection URL, for messages: never its password or query string. */
export function describeTarget(url: string, schema: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || 'localhost'}:${u.port || '5432'}${u.pathname || '/'} (schema ${schema})`;
  } catch {
    return `${redactUrl(url)} (schema ${schema})`;
  }
}

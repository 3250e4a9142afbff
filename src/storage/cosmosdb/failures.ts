import type { PluginConfig } from '@azure/cosmos';

/**
 * What a failed Cosmos DB request says of itself, wherever the SDK put it. A single request fails with the SDK's
 * ErrorResponse (status in `code`, the server's wait in `retryAfterInMs`), a TimeoutError, or the HTTP client's
 * network error (`ECONNRESET`...). A bulk request that fails as a whole is rethrown by `items.bulk` as a plain
 * `Error("Bulk request errored with: <message>")`: status, code and cause are dropped and only the message is
 * kept. `bulkFailureTag` writes them into that message before the SDK wraps it, and `failureOf` reads them back.
 */
export interface Failure {
  /** The HTTP status, or the error code of a request that got no answer ('TimeoutError', 'ECONNRESET'...). */
  readonly status: number | string | undefined;
  /** Worth another try: throttled, unavailable, timed out, retry-with, or the connection went away. */
  readonly transient: boolean;
  /** How long the server asked to wait before the next try (a 429's retry-after), when it said. */
  readonly retryAfterMs: number | undefined;
}

interface SdkError { code?: number | string; substatus?: number; name?: string; message?: string; retryAfterInMs?: number; cause?: unknown }

/** Statuses and codes worth another try: throttled, unavailable, timed out, retry-with, and a connection gone. */
const TRANSIENT = new Set<number | string>([
  429, 503, 408, 449, 'TimeoutError', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNREFUSED', 'UND_ERR_SOCKET', 'ECONNABORTED',
]);

/** The messages Node's HTTP client and the SDK give a request that got no answer, for an error that lost its code. */
const NO_ANSWER: readonly [RegExp, string][] = [
  [/Timeout Error! Request took more than/, 'TimeoutError'],
  [/socket hang up|ECONNRESET|other side closed|socket disconnected/i, 'ECONNRESET'],
  [/\bEPIPE\b/, 'EPIPE'],
  [/\bECONNREFUSED\b/, 'ECONNREFUSED'],
  [/\bETIMEDOUT\b/, 'ETIMEDOUT'],
];

/** The marker `bulkFailureTag` appends: `[cosmos status 503]`, `[cosmos status 429, retry after 5 ms]`. */
const TAG = /\[cosmos status ([^\],]+)(?:, retry after (\d+) ms)?\]/;

/** The status, code and retry-after of a failed request, from the error itself, its cause, or its message. */
export function failureOf(e: unknown): Failure {
  const err = (e ?? {}) as SdkError;
  const cause = (err.cause ?? {}) as SdkError;
  const message = typeof err.message === 'string' ? err.message : String(e);
  const tag = TAG.exec(message);
  const tagged = tag ? (/^\d+$/.test(tag[1]!) ? Number(tag[1]) : tag[1]) : undefined;
  // The first that says something is the status; any that names a transient failure makes it one (a network error
  // may carry a generic code of the HTTP client's, with the socket's own in its cause or message).
  const said = [err.code, err.name === 'TimeoutError' ? 'TimeoutError' : undefined, tagged, cause.code,
    NO_ANSWER.find(([pattern]) => pattern.test(message))?.[1]].filter((s) => s !== undefined);
  const retryAfterMs = err.retryAfterInMs ?? (tag?.[2] !== undefined ? Number(tag[2]) : undefined) ?? cause.retryAfterInMs;
  return { status: said[0], transient: said.some((s) => TRANSIENT.has(s)), retryAfterMs };
}

/** The status (or code) of a failed request, as `failureOf` reads it. */
export const statusOf = (e: unknown) => failureOf(e).status;

/**
 * An SDK plugin that keeps a failed bulk request's status in the one thing `items.bulk` passes on, the message:
 * it appends `[cosmos status S]` (and the server's retry-after), so that `failureOf` can tell a 429 or a 503 from a
 * refusal. (Plugins are the SDK's own extension point, run around every operation; this one touches nothing else.)
 */
export const bulkFailureTag: PluginConfig = {
  on: 'operation',
  plugin: async (context, diagnosticNode, next) => {
    try {
      return await next(context);
    } catch (e) {
      if (context.headers?.['x-ms-cosmos-is-batch-request'] && e instanceof Error && !TAG.test(e.message)) {
        const err = e as SdkError;
        const status = err.code ?? (err.name === 'TimeoutError' ? 'TimeoutError' : (err.cause as SdkError | undefined)?.code);
        if (status !== undefined) {
          e.message += ` [cosmos status ${status}${err.retryAfterInMs !== undefined ? `, retry after ${err.retryAfterInMs} ms` : ''}]`;
        }
      }
      throw e;
    }
  },
};

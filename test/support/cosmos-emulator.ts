/**
 * Azure Cosmos DB for the tests: @vercel/cosmosdb-server started in this process (HTTPS with keep-alive, a random
 * free port), driven by the real @azure/cosmos SDK. Its known gaps are listed in shared/reference/cosmos-emulator.md;
 * the driver is designed so that none of them matters (the partition key is always in the WHERE clause, no
 * OFFSET/LIMIT, DISTINCT or GROUP BY, no patch inside a batch).
 *
 * A fault injector sits in front of the server's request handler: tests queue faults (429 with retry-after, 503, a
 * delay before or after a write is applied, a connection reset) for requests that match a predicate. Bulk requests
 * carry no partition key header (they name a partition key range, their operations' keys are in the body): match
 * them by container (`inContainer`), or as `isBulkRequest`.
 */
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpsServer } from '@vercel/cosmosdb-server';

const require = createRequire(import.meta.url);

/**
 * The server's query engine builds each query's working set with an O(n²) spread; this rewrites that one
 * expression into a push, making every query linear in the container's size (see the emulator notes). Test
 * support only: it changes the stand-in, never the driver.
 */
function patchQueryEngine(): void {
  const serverPath = require.resolve('@vercel/cosmosdb-server');
  const query = createRequire(serverPath)('@zeit/cosmosdb-query') as { default: (sql: string) => { code: string; _code?: string } };
  if ((query as { __linear?: boolean }).__linear) return;
  const original = query.default;
  query.default = (sql: string) => {
    const q = original(sql);
    q._code = q.code.replace(/\[\.\.\.\$, \{\s*(\w+): (\w+)\s*\}\]/g, '($.push({ $1: $2 }), $)');
    return q;
  };
  (query as { __linear?: boolean }).__linear = true;
}

export type FaultKind =
  | { kind: '429'; retryAfterMs: number }
  | { kind: '503' }
  | { kind: 'delayRequest'; ms: number }
  | { kind: 'delayResponse'; ms: number }
  | { kind: 'reset' };

export interface FaultRule {
  /** Which requests: by method and URL (e.g. writes to documents), default all. */
  readonly match: (req: IncomingMessage) => boolean;
  /** How many matching requests get the fault (then the rule is spent). */
  remaining: number;
  /** The fault, or a choice per matching request (undefined: this one passes untouched and the rule is not spent). */
  readonly fault: FaultKind | ((req: IncomingMessage) => FaultKind | undefined);
  /** How many requests got each kind of fault. */
  readonly injected: Record<FaultKind['kind'], number>;
}

export interface CosmosEmulator {
  readonly endpoint: string;
  /** Requests that reached the server (faulted ones included). */
  readonly requestCount: () => number;
  /** Body bytes of those requests (by their content-length) and of the server's answers, for the benchmarks. */
  readonly bodyBytes: () => { readonly requests: number; readonly responses: number };
  /** Queues a fault; returns the rule so a test can see how much of it was used. */
  inject(rule: Omit<FaultRule, 'remaining' | 'injected'> & { times: number }): FaultRule;
  clearFaults(): void;
  close(): Promise<void>;
}

/** Any request to the container named (point reads, queries, writes, bulk requests), by its URL. */
export function inContainer(container: string): (req: IncomingMessage) => boolean {
  return (req) => (req.url ?? '').includes(`/colls/${container}/`);
}

/** A bulk request (`items.bulk`): many operations of one partition key range in one POST. */
export function isBulkRequest(req: IncomingMessage): boolean {
  return req.headers['x-ms-cosmos-is-batch-request'] !== undefined;
}

/**
 * Faults for one request in `period`, the kinds taken in turn (a 20% mix of five kinds: period 5): a choice per
 * request for a rule's `fault`.
 */
export function faultMix(period: number, kinds: readonly FaultKind[]): (req: IncomingMessage) => FaultKind | undefined {
  let seen = 0;
  let faulted = 0;
  return () => (++seen % period === 0 ? kinds[faulted++ % kinds.length] : undefined);
}

/** A request that writes a document: create/upsert (POST without the query header), replace, patch, delete. */
export function isDocumentWrite(req: IncomingMessage): boolean {
  const url = req.url ?? '';
  if (!/\/docs(\/|$)/.test(url)) return false;
  if (req.method === 'POST') return req.headers['x-ms-documentdb-isquery'] === undefined;
  return req.method === 'PUT' || req.method === 'PATCH' || req.method === 'DELETE';
}

export async function startCosmosEmulator(): Promise<CosmosEmulator> {
  patchQueryEngine();
  const server = createHttpsServer({ keepAlive: true });
  const handler = server.listeners('request')[0] as (req: IncomingMessage, res: ServerResponse) => void;
  server.removeAllListeners('request');
  let rules: FaultRule[] = [];
  let requests = 0;
  const bytes = { requests: 0, responses: 0 };
  const countBody = (chunk: unknown) => {
    if (typeof chunk === 'string') bytes.responses += Buffer.byteLength(chunk);
    else if (chunk instanceof Uint8Array) bytes.responses += chunk.byteLength;
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    requests++;
    bytes.requests += Number(req.headers['content-length'] ?? 0);
    const write = res.write.bind(res) as (...a: unknown[]) => boolean;
    const end = res.end.bind(res) as (...a: unknown[]) => ServerResponse;
    (res as { write: (...a: unknown[]) => boolean }).write = (...a: unknown[]) => { countBody(a[0]); return write(...a); };
    (res as { end: (...a: unknown[]) => ServerResponse }).end = (...a: unknown[]) => { if (typeof a[0] !== 'function') countBody(a[0]); return end(...a); };
    const rule = rules.find((r) => r.remaining > 0 && r.match(req));
    const f = typeof rule?.fault === 'function' ? rule.fault(req) : rule?.fault;
    if (!rule || !f) return handler(req, res);
    rule.remaining--;
    rule.injected[f.kind]++;
    switch (f.kind) {
      case '429':
        res.writeHead(429, { 'content-type': 'application/json', 'x-ms-retry-after-ms': String(f.retryAfterMs), 'x-ms-substatus': '3200' });
        return res.end(JSON.stringify({ code: 'TooManyRequests', message: 'injected 429' }));
      case '503':
        res.writeHead(503, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ code: 'ServiceUnavailable', message: 'injected 503' }));
      case 'delayRequest':
        // Lost in transit: if the client gave up (timed out and closed the socket) the request is never applied.
        return void setTimeout(() => (req.socket.destroyed ? undefined : handler(req, res)), f.ms);
      case 'delayResponse': {
        // The write is applied now; the client hears of it only after its timeout: an ambiguous write.
        const end = res.end.bind(res) as (...a: unknown[]) => ServerResponse;
        (res as { end: (...a: unknown[]) => ServerResponse }).end = (...a: unknown[]) => { setTimeout(() => end(...a), f.ms); return res; };
        return handler(req, res);
      }
      case 'reset':
        req.socket.destroy();
        return;
    }
  });
  // The emulator prints a stack for every 500 it answers; our fault rules make none, so keep real ones visible.
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `https://127.0.0.1:${port}/`,
    requestCount: () => requests,
    bodyBytes: () => ({ ...bytes }),
    inject(rule) {
      const r: FaultRule = {
        match: rule.match, fault: rule.fault, remaining: rule.times,
        injected: { '429': 0, '503': 0, delayRequest: 0, delayResponse: 0, reset: 0 },
      };
      rules.push(r);
      return r;
    },
    clearFaults() { rules = []; },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** The config keys that point a store at the emulator (any key works: it does not check authentication). */
export function emulatorConfig(emulator: CosmosEmulator, database: string, container: string, tenant: string): Record<string, unknown> {
  return {
    backend: 'cosmosdb',
    cosmosdb: {
      endpoint: emulator.endpoint, key: Buffer.from('emulator-key').toString('base64'), database, container, tenant,
      create_if_missing: true, disable_tls_verification: true, request_timeout_ms: 5000,
    },
  };
}

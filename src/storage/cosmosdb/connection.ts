import type { Container, ContainerDefinition, CosmosClient, PluginConfig, PriorityLevel } from '@azure/cosmos';
import { loadOptionalPackage } from '../../di/optional-packages.js';
import https from 'node:https';
import type { CosmosConfig } from '../../config/schema.js';
import { ConfigError, StoreUnavailableError } from '../../types/errors.js';
import { redactUrl } from '../../config/redact.js';
import { RequestAccounting } from '../shared/request-accounting.js';
import type { Tx, UnitOfWork } from '../tables/index.js';
import { partitionKey } from './ids.js';
import { Lru } from './lru.js';
import { CosmosRequests } from './requests.js';
import { bulkFailureTag } from './failures.js';
import { Sequence } from './sequences.js';

/** The account endpoint as messages show it: from the connection string if that is what was given, user info hidden. */
function endpointOf(config: CosmosConfig): string {
  const fromString = /(?:^|;)\s*AccountEndpoint=([^;]*)/i.exec(config.connectionString)?.[1];
  return redactUrl(config.endpoint || fromString || '(no endpoint)');
}

/** The DI token the Cosmos DB tables take their connection by (it is also the driver's UnitOfWork). */
export const COSMOS_CONNECTION = Symbol.for('matrix-storage.cosmosdb.Connection');

/**
 * The container's definition when this driver creates it: partition key /pk (large partition keys, version 2, so
 * keys up to 2 KB are accepted), and the bulky payloads left out of the index, which keeps writes cheap in RUs.
 */
async function againOnConflict<T>(create: () => Promise<T>): Promise<T> {
  try {
    return await create();
  } catch (e) {
    if ((e as { code?: unknown }).code !== 409) throw e;
    return create();
  }
}

export function containerDefinition(id: string): ContainerDefinition {
  return {
    id,
    partitionKey: { paths: ['/pk'], version: 2 },
    indexingPolicy: {
      indexingMode: 'consistent',
      automatic: true,
      includedPaths: [{ path: '/*' }],
      excludedPaths: [{ path: '/json/?' }, { path: '/bytes/?' }, { path: '/invites/*' }, { path: '/"_etag"/?' }],
    },
  };
}

/**
 * An SDK plugin that spares every single-partition query its query-plan request: the 4.x SDK asks the gateway for a
 * plan before each query, in parallel, and uses it only when the query turns out to span partitions. Every query
 * of this driver that names its partition key is served whole by that partition, so the plan is never used: it is
 * answered at once with an error the SDK keeps unread (and would report, were a plan ever needed). Cross-partition
 * queries (no partition key) still get theirs.
 */
export const noPlanForSinglePartitionQueries: PluginConfig = {
  on: 'request',
  plugin: async (context, _diagnosticNode, next) => {
    if (context.headers?.['x-ms-cosmos-is-query-plan-request'] === 'True' && (context.options as { partitionKey?: unknown } | undefined)?.partitionKey !== undefined) {
      throw Object.assign(new Error('no query plan is fetched for a single-partition query'), { code: 'NoQueryPlan' });
    }
    return next(context);
  },
};

/** Sequences, with where their values start. Stream positions are taken one at a time so they keep their order. */
const SEQUENCES = {
  // Ranges of 1,000: a NID costs a request once per range (gaps from ranges a process does not use up are allowed).
  event: { first: 1, range: 1000 },
  room: { first: 1, range: 10 },
  eventType: { first: 65_536, range: 10 },
  stateKey: { first: 65_536, range: 1000 },
  stateBlock: { first: 1, range: 1000 },
  stateSnapshot: { first: 1, range: 1000 },
  order: { first: 1, range: 1 },
} as const;
export type SequenceName = keyof typeof SEQUENCES;

/**
 * The Cosmos DB driver's unit of work. Cosmos DB has no transaction across logical partitions, so `transaction`
 * runs `fn` as it is: the shared layer orders every multi-document write so that it is safe without one (README,
 * "Architecture"), and where a read-modify-write must be exclusive the tables use ETag conditions instead of locks.
 */
export class CosmosConnection implements UnitOfWork {
  readonly engine = 'cosmosdb';
  readonly atomicTransactions = false;
  readonly autocommit = {} as Tx;
  readonly accounting = new RequestAccounting();
  readonly requests: CosmosRequests;
  /**
   * State key NID -> state key, as this process wrote or read the mappings (immutable once created): what a
   * membership document repeats of its user, known without reading the mapping again.
   */
  readonly stateKeyNames = new Lru<number, string>(200_000);
  /**
   * State blocks this process created (their hash documents are its own) that no snapshot has named yet: a snapshot
   * naming one cannot be stored, so it is stored without looking its hash up first (should another writer have
   * raced to it, its hash document's conflict says so). A block leaves this set when a snapshot first names it.
   */
  readonly newBlocks = new Lru<number, true>(10_000);
  private readonly sequences = new Map<string, Sequence>();

  private constructor(
    private readonly client: CosmosClient,
    readonly container: Container,
    readonly config: CosmosConfig,
  ) {
    this.requests = new CosmosRequests(container, this.accounting, { transientRetries: config.transientRetries, baseDelayMs: 50 }, endpointOf(config),
      config.priorityLevel === 'default' ? {} : { priorityLevel: (config.priorityLevel === 'low' ? 'Low' : 'High') as PriorityLevel });
  }

  static async open(config: CosmosConfig): Promise<CosmosConnection> {
    const { CosmosClient: Client } = await loadOptionalPackage<typeof import('@azure/cosmos')>('@azure/cosmos');
    const client = new Client({
      ...(config.connectionString ? { connectionString: config.connectionString } : { endpoint: config.endpoint, key: config.key }),
      consistencyLevel: config.consistencyLevel,
      connectionPolicy: {
        requestTimeout: config.requestTimeoutMs,
        retryOptions: { maxRetryAttemptCount: config.maxRetryAttempts, maxWaitTimeInSeconds: config.maxRetryWaitSeconds, fixedRetryIntervalInMilliseconds: 0 },
      },
      // Keeps a failed bulk request's status where items.bulk leaves it, the message (see failures.ts), and spares
      // single-partition queries their query plan. `plugins` is an SDK option its typings hide.
      ...({ plugins: [bulkFailureTag, noPlanForSinglePartitionQueries] } as object),
      // The emulators' certificates are self-signed: trust them on this client's own agent only, never process-wide.
      ...(config.disableTlsVerification ? { agent: new https.Agent({ rejectUnauthorized: false, keepAlive: true }) } : {}),
    });
    try {
      let container: Container;
      if (config.createIfMissing) {
        // createIfNotExists reads, then creates: two instances opening a new store at once both create, and the
        // loser's conflict means it exists now; reading it again is the answer.
        const { database } = await againOnConflict(() => client.databases.createIfNotExists({ id: config.database }));
        const definition = containerDefinition(config.container);
        ({ container } = await againOnConflict(() => database.containers.createIfNotExists(definition, config.throughput > 0 ? { offerThroughput: config.throughput } : {})));
      } else {
        container = client.database(config.database).container(config.container);
        const { resource } = await container.read();
        if (!resource) throw Object.assign(new Error('not found'), { code: 404 });
        if (resource.partitionKey?.paths?.[0] !== '/pk') {
          throw new ConfigError(`Cosmos DB container "${config.container}" is partitioned on ${resource.partitionKey?.paths?.join(',')}, not /pk. Fix: point cosmosdb.container at a container partitioned on /pk, or let this create one (cosmosdb.create_if_missing: true).`);
        }
      }
      return new CosmosConnection(client, container, config);
    } catch (e) {
      client.dispose();
      if (e instanceof ConfigError) throw e;
      const status = (e as { code?: unknown }).code;
      if (status === 404) {
        throw new ConfigError(`Cosmos DB database "${config.database}" or container "${config.container}" does not exist. Fix: create it, or set cosmosdb.create_if_missing: true.`);
      }
      const at = endpointOf(config);
      if (status === 401 || status === 403) {
        throw new StoreUnavailableError(`Cosmos DB at ${at} refused the credentials (status ${status}). Fix: check cosmosdb.key / COSMOS_KEY (or the connection string).`, false);
      }
      // No cause attached: the SDK's error objects carry the request, headers included.
      const why = String((e as Error)?.message ?? e).split('\n')[0]!.slice(0, 200);
      throw new StoreUnavailableError(`cannot reach Cosmos DB at ${at}: ${why}. Fix: check cosmosdb.endpoint (or COSMOS_ENDPOINT) and that the account is reachable from here.`, true);
    }
  }

  /** Where this store is, for messages: the endpoint (no secrets), database, container and tenant. */
  get description(): string {
    return `at ${endpointOf(this.config)} (database ${this.config.database}, container ${this.config.container}, tenant ${this.config.tenant})`;
  }

  /** A partition key value of this tenant. */
  pk(kind: string, ...parts: (string | number)[]): string {
    return partitionKey(this.config.tenant, kind, ...parts);
  }

  /** The prefix every partition key of this tenant starts with. */
  get tenantPrefix(): string {
    return `${partitionKey(this.config.tenant, '')}`;
  }

  sequence(name: SequenceName): Sequence {
    let s = this.sequences.get(name);
    if (!s) {
      const { first, range } = SEQUENCES[name];
      s = new Sequence(this.requests, this.config.tenant, name, first, range);
      this.sequences.set(name, s);
    }
    return s;
  }

  /** A per-key counter handing out exact consecutive ranges (e.g. a user's device-list stream IDs). */
  keyedSequence(name: string, key: string): Sequence {
    return new Sequence(this.requests, this.config.tenant, `${name}|${key}`, 1, 1);
  }

  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const tx: { last?: Promise<unknown> } = {};
    const result = await fn(tx as unknown as Tx);
    await tx.last;
    return result;
  }

  lastWrites(tx: Tx, writes: Promise<unknown>): void {
    (tx as unknown as { last?: Promise<unknown> }).last = writes;
  }

  /** Nothing is ever rolled back here: what a call wrote stays, so caches may learn it at once. */
  afterCommit(_tx: Tx, hook: () => void): void {
    hook();
  }

  async close(): Promise<void> {
    this.client.dispose();
  }
}

import { context, metrics, SpanKind, SpanStatusCode, trace, type Attributes, type Counter, type Histogram, type Meter, type Span } from '@opentelemetry/api';

/**
 * Metrics and traces of the Database operations, through @opentelemetry/api: a no-op until the application
 * registers an OpenTelemetry SDK (a MeterProvider, a TracerProvider), then one span per Database operation and
 * these instruments, whose attributes are a fixed, small set (the driver, the operation's name such as
 * "roomserver.appendEvent", and the outcome), never a room, user or event ID:
 * - matrix_storage.operation.duration (histogram, seconds),
 * - matrix_storage.operation.requests (counter: statements on SQL drivers, requests on Cosmos DB),
 * - matrix_storage.operation.request_charge (counter: request units on Cosmos DB, 0 on the SQL drivers).
 */
export const INSTRUMENTATION_SCOPE = 'matrix-storage';

/** What one Database operation cost, summed by the request accounting of the driver that served it. */
export interface OperationUsage {
  readonly name: string;
  requests: number;
  requestCharge: number;
}

/** The `db.system` the OpenTelemetry conventions name each built-in driver by (another driver: its own name). */
const DB_SYSTEM: Readonly<Record<string, string>> = { sqlite: 'sqlite', postgres: 'postgresql', cosmosdb: 'cosmosdb' };

interface Instruments {
  readonly meter: Meter;
  readonly duration: Histogram;
  readonly requests: Counter;
  readonly requestCharge: Counter;
}

let instruments: Instruments | undefined;

/** The instruments of the meter provider registered now (re-created when the application registers another). */
function instrumentsOf(meter: Meter): Instruments {
  if (instruments?.meter === meter) return instruments;
  instruments = {
    meter,
    duration: meter.createHistogram('matrix_storage.operation.duration', {
      unit: 's', description: 'Duration of a Database operation',
      advice: { explicitBucketBoundaries: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] },
    }),
    requests: meter.createCounter('matrix_storage.operation.requests', { unit: '{request}', description: 'Requests (statements) a Database operation made' }),
    requestCharge: meter.createCounter('matrix_storage.operation.request_charge', { unit: '{RU}', description: 'Request units a Database operation was charged (Cosmos DB)' }),
  };
  return instruments;
}

/** Whether an application registered an SDK: without one, nothing is measured (the per-call accounting is skipped). */
export function telemetryActive(): boolean {
  const provider = trace.getTracerProvider() as { getDelegate?: () => object };
  const tracer = provider.getDelegate?.() ?? provider;
  return tracer.constructor.name !== 'NoopTracerProvider' || metrics.getMeterProvider().constructor.name !== 'NoopMeterProvider';
}

/** How many rows a result holds, where that means something (an array, a Map or a Set). */
function rowsOf(result: unknown): number | undefined {
  if (Array.isArray(result)) return result.length;
  if (result instanceof Map || result instanceof Set) return result.size;
  return undefined;
}

/**
 * Runs one Database operation measured: a span around it (the application's current span its parent), then its
 * duration, requests and charge recorded. `run` runs the operation with `usage` as the accounting context.
 */
export function measured<T>(driver: string, usage: OperationUsage, run: () => T): T {
  const meter = metrics.getMeter(INSTRUMENTATION_SCOPE);
  const attributes: Attributes = { 'matrix_storage.driver': driver, 'matrix_storage.operation': usage.name };
  const span = trace.getTracer(INSTRUMENTATION_SCOPE).startSpan(usage.name, {
    kind: SpanKind.CLIENT, attributes: { ...attributes, 'db.system': DB_SYSTEM[driver] ?? driver, 'db.operation.name': usage.name },
  });
  const started = performance.now();
  const finish = (outcome: 'ok' | 'error', result: unknown, error?: unknown) => {
    const i = instrumentsOf(meter);
    const tagged = { ...attributes, 'matrix_storage.outcome': outcome };
    i.duration.record((performance.now() - started) / 1000, tagged);
    if (usage.requests > 0) i.requests.add(usage.requests, tagged);
    if (usage.requestCharge > 0) i.requestCharge.add(usage.requestCharge, tagged);
    if (span.isRecording()) endSpan(span, usage, outcome, result, error);
  };
  let result: T;
  try {
    result = context.with(trace.setSpan(context.active(), span), run);
  } catch (e) {
    finish('error', undefined, e);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then((value: unknown) => { finish('ok', value); return value; }, (e: unknown) => { finish('error', undefined, e); throw e; }) as T;
  }
  finish('ok', result);
  return result;
}

function endSpan(span: Span, usage: OperationUsage, outcome: 'ok' | 'error', result: unknown, error: unknown): void {
  const rows = rowsOf(result);
  span.setAttributes({
    'matrix_storage.requests': usage.requests, 'matrix_storage.request_charge': usage.requestCharge, ...(rows !== undefined ? { 'matrix_storage.rows': rows } : {}),
  });
  if (outcome === 'error') {
    // The error's class only: a message could quote stored data, and spans leave the process.
    const type = (error as Error)?.name ?? 'Error';
    span.setAttribute('error.type', type);
    span.setStatus({ code: SpanStatusCode.ERROR, message: type });
  }
  span.end();
}

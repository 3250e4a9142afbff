import { AsyncLocalStorage } from 'node:async_hooks';
import type { OperationCost, RequestStats, RequestStatsReader } from '../tables/request-stats.js';

import { measured, telemetryActive, type OperationUsage } from './telemetry.js';

/** The Database operation the current async call chain is serving (set by `namedOperations`), and what it has cost. */
const currentOperation = new AsyncLocalStorage<OperationUsage>();

/**
 * How many stores of this process are tracking requests by Database operation. Labelling a call costs an
 * AsyncLocalStorage context (about 9 µs, measured on the write path), so calls are labelled only while one is, or
 * while the application has registered an OpenTelemetry SDK (telemetry.ts).
 */
let trackingStores = 0;

/**
 * Wraps a Database API object so that every call of its methods runs under its name ("roomserver.appendEvent"):
 * requests made anywhere below it, in the tables and the driver, are then charged to it, and with an OpenTelemetry
 * SDK registered it is one span and one measurement (telemetry.ts). Nested calls keep the outermost name, which is
 * the operation the caller asked for. `driver`: the backend serving it, a metric attribute.
 */
export function namedOperations<T extends object>(api: string, target: T, driver: string): T {
  return new Proxy(target, {
    get(t, prop, receiver) {
      const value = Reflect.get(t, prop, receiver) as unknown;
      if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'constructor') return value;
      const name = `${api}.${prop}`;
      return (...args: unknown[]) => {
        const call = () => (value as (...a: unknown[]) => unknown).apply(t, args);
        if (currentOperation.getStore() !== undefined) return call();
        const measuring = telemetryActive();
        if (trackingStores === 0 && !measuring) return call();
        const usage: OperationUsage = { name, requests: 0, requestCharge: 0 };
        return measuring ? measured(driver, usage, () => currentOperation.run(usage, call)) : currentOperation.run(usage, call);
      };
    },
  });
}

/** Sums requests and charges, per table operation and per Database operation; used by the drivers that count. */
export class RequestAccounting implements RequestStatsReader {
  private totals: OperationCost = { requests: 0, requestCharge: 0 };
  private roundTrips: number | undefined;

  /** `countsRoundTrips`: the driver reports its round trips (`roundTrip`), and snapshots carry them. */
  constructor(countsRoundTrips = false) {
    if (countsRoundTrips) this.roundTrips = 0;
  }
  private byOperation = new Map<string, OperationCost>();
  private byDatabaseOperation = new Map<string, OperationCost>();
  private tracking = false;

  record(operation: string, requestCharge: number): void {
    this.totals.requests++;
    this.totals.requestCharge += requestCharge;
    add(this.byOperation, operation, requestCharge);
    const current = currentOperation.getStore();
    if (current) {
      current.requests++;
      current.requestCharge += requestCharge;
    }
    if (this.tracking) add(this.byDatabaseOperation, current?.name ?? '(outside a Database operation)', requestCharge);
  }

  /**
   * A charge for work that rode along a request counted under another operation (a bulk request carries operations
   * of several tables): charged to its own operation, no request counted.
   */
  chargeAlong(operation: string, requestCharge: number): void {
    this.totals.requestCharge += requestCharge;
    add(this.byOperation, operation, requestCharge, 0);
    const current = currentOperation.getStore();
    if (current) current.requestCharge += requestCharge;
    if (this.tracking) add(this.byDatabaseOperation, current?.name ?? '(outside a Database operation)', requestCharge, 0);
  }

  trackDatabaseOperations(on: boolean): void {
    if (on === this.tracking) return;
    this.tracking = on;
    trackingStores += on ? 1 : -1;
  }

  /** A statement that waits a full network round trip (the drivers that can tell: PostgreSQL). */
  roundTrip(): void {
    this.roundTrips = (this.roundTrips ?? 0) + 1;
  }

  snapshot(): RequestStats {
    return {
      ...this.totals, byOperation: copy(this.byOperation), byDatabaseOperation: copy(this.byDatabaseOperation),
      ...(this.roundTrips !== undefined ? { roundTrips: this.roundTrips } : {}),
    };
  }

  reset(): void {
    this.totals = { requests: 0, requestCharge: 0 };
    if (this.roundTrips !== undefined) this.roundTrips = 0;
    this.byOperation = new Map();
    this.byDatabaseOperation = new Map();
  }
}

function add(map: Map<string, OperationCost>, key: string, charge: number, requests = 1): void {
  let cost = map.get(key);
  if (!cost) map.set(key, (cost = { requests: 0, requestCharge: 0 }));
  cost.requests += requests;
  cost.requestCharge += charge;
}

/**
 * The operation a SQL statement is counted under: its table and verb, e.g. "roomserver_events SELECT" (a statement
 * naming no table, such as a sequence's nextval, is "sequence"). Computed once per statement text by the drivers.
 */
export function statementOperation(sql: string): string {
  const table = /\b(?:FROM|INTO|UPDATE)\s+(\w+)/i.exec(sql)?.[1] ?? 'sequence';
  const verb = /\b(SELECT|INSERT|UPDATE|DELETE)\b/i.exec(sql.replace(/^\s*WITH\s+\w+\s+AS\s*\(/i, ''))?.[1]?.toUpperCase() ?? 'SELECT';
  return `${table} ${verb}`;
}

const copy = (map: Map<string, OperationCost>) => Object.fromEntries([...map].map(([k, v]) => [k, { ...v }]));

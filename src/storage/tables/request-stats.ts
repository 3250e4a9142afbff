/** Requests a store made, and what they cost: RUs on Cosmos DB (0 on engines without a charge). */
export interface OperationCost {
  requests: number;
  requestCharge: number;
}

export interface RequestStats extends OperationCost {
  /** Per operation (table method, or the driver's name for internal work such as NID ranges). */
  readonly byOperation: Readonly<Record<string, OperationCost>>;
}

export interface RequestStatsReader {
  snapshot(): RequestStats;
  reset(): void;
}

/** Sums requests and charges; shared by the drivers that count. */
export class RequestAccounting implements RequestStatsReader {
  private totals: OperationCost = { requests: 0, requestCharge: 0 };
  private byOperation = new Map<string, OperationCost>();

  record(operation: string, requestCharge: number): void {
    this.totals.requests++;
    this.totals.requestCharge += requestCharge;
    let op = this.byOperation.get(operation);
    if (!op) this.byOperation.set(operation, (op = { requests: 0, requestCharge: 0 }));
    op.requests++;
    op.requestCharge += requestCharge;
  }

  snapshot(): RequestStats {
    return {
      ...this.totals,
      byOperation: Object.fromEntries([...this.byOperation].map(([k, v]) => [k, { ...v }])),
    };
  }

  reset(): void {
    this.totals = { requests: 0, requestCharge: 0 };
    this.byOperation = new Map();
  }
}

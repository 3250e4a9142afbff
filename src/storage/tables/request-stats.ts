/** Requests a store made, and what they cost: RUs on Cosmos DB (0 on engines without a charge). */
export interface OperationCost {
  requests: number;
  requestCharge: number;
}

export interface RequestStats extends OperationCost {
  /** Per Database operation (e.g. "roomserver.appendEvent"): the API call that caused the requests. */
  readonly byDatabaseOperation: Readonly<Record<string, OperationCost>>;
  /** Per table operation (e.g. "events.insert"), or the driver's name for internal work such as NID ranges. */
  readonly byOperation: Readonly<Record<string, OperationCost>>;
}

export interface RequestStatsReader {
  snapshot(): RequestStats;
  reset(): void;
}

/** Requests a store made, and what they cost: RUs on Cosmos DB (0 on engines without a charge). */
export interface OperationCost {
  requests: number;
  requestCharge: number;
}

export interface RequestStats extends OperationCost {
  /**
   * Sequential round trips to the server (PostgreSQL): statements pipelined behind one in flight share its round
   * trip. Absent where the driver does not tell (SQLite runs in-process; Cosmos DB's requests are counted above).
   */
  readonly roundTrips?: number;
  /**
   * Per Database operation (e.g. "roomserver.appendEvent"): the API call that caused the requests. Filled only
   * while `trackDatabaseOperations(true)` is in force (labelling every call has a cost); empty otherwise.
   */
  readonly byDatabaseOperation: Readonly<Record<string, OperationCost>>;
  /** Per table operation (e.g. "events.insert"), or the driver's name for internal work such as NID ranges. */
  readonly byOperation: Readonly<Record<string, OperationCost>>;
}

export interface RequestStatsReader {
  snapshot(): RequestStats;
  reset(): void;
  /** Starts (or stops) charging requests to the Database operation that made them (`byDatabaseOperation`). */
  trackDatabaseOperations(on: boolean): void;
}

/** Figures about a whole store, for the CLI's summaries and the benchmarks. */
export interface StoreStats {
  readonly rooms: number;
  readonly events: number;
  readonly stateSnapshots: number;
  readonly stateBlocks: number;
  /** Entries summed over every state block: what the state model costs in tuples. */
  readonly stateTuples: number;
  /** Bytes the state blocks and snapshots take (payload only, without indexes). */
  readonly stateBytes: number;
  /** Bytes the whole store takes (on disk for SQL engines), or undefined where the engine cannot tell. */
  readonly totalBytes: number | undefined;
}

export interface StoreStatsReader {
  collect(): Promise<StoreStats>;
  /**
   * A SHA-256 (hex) over every row of every table of the store (Cosmos DB: every document of the tenant, its system
   * properties aside), in a fixed order: equal before and after an operation exactly when it changed nothing, and
   * equal for two stores of one driver holding the same data (the record of when migrations ran is left out). For
   * tests and tools that must prove a store untouched; it reads the whole store.
   */
  fingerprint(): Promise<string>;
}

/** What a schema migration run did. */
export interface MigrationReport {
  /** Versions applied by this run (empty when the schema was already current). */
  readonly applied: readonly number[];
  /** The schema version now in place. */
  readonly version: number;
}

/** Where a store's schema stands against this build, without changing anything (`matrix-storage migrate --status`). */
export interface MigrationStatus {
  /** The version in place: 0 when the store or its schema has not been created. */
  readonly version: number;
  /** The version this build needs. */
  readonly latest: number;
  /** The migrations opening with migrate_on_open (or `matrix-storage migrate`) would apply, in order. */
  readonly pending: readonly { readonly version: number; readonly name: string }[];
}

import type { Tx } from './unit-of-work.js';

export interface PartitionOffset {
  readonly partition: number;
  readonly offset: number;
}

/**
 * Where a stream consumer got to: per (topic, partition), the offset of the LAST PROCESSED message, so the
 * consumer resumes at offset + 1. Setting it is an UPSERT with no monotonicity check (it may go backwards).
 * Database code depends on this interface (bound to TOKENS.PartitionStorer by DI), never on a table or SQL.
 * Topic names are shared by every component of the store: a component prefixes its own.
 */
export interface PartitionStorer {
  /** Every stored offset of the topic (empty if none), sorted by partition. */
  partitionOffsets(topic: string): Promise<PartitionOffset[]>;
  /** UPSERT; the offset may go backwards. */
  setPartitionOffset(topic: string, partition: number, offset: number): Promise<void>;
}

/** partition_offsets: the table behind the default PartitionStorer (storage/shared/partition-storer.ts). */
export interface PartitionOffsetsTable {
  /** Sorted by partition; empty if none. */
  selectPartitionOffsets(tx: Tx, topic: string): Promise<PartitionOffset[]>;
  /** UPSERT on (topic, partition), overwriting the offset. */
  upsertPartitionOffset(tx: Tx, topic: string, partition: number, offset: number): Promise<void>;
}

import type { Tx } from './unit-of-work.js';

export interface PartitionOffset {
  readonly partition: number;
  readonly offset: number;
}

/**
 * Where a stream consumer got to: per (topic, partition), the offset of the LAST PROCESSED message, so the
 * consumer resumes at offset + 1. Setting it is an UPSERT with no monotonicity check (it may go backwards).
 * Database code depends on this interface (bound by DI), never on a table or SQL.
 */
export interface PartitionStorer {
  /** Every stored offset of the topic (empty if none), sorted by partition. */
  partitionOffsets(topic: string): Promise<PartitionOffset[]>;
  setPartitionOffset(topic: string, partition: number, offset: number): Promise<void>;
}

/** partition_offsets: the table behind the default PartitionStorer. */
export interface PartitionOffsetsTable {
  selectPartitionOffsets(tx: Tx, topic: string): Promise<PartitionOffset[]>;
  upsertPartitionOffset(tx: Tx, topic: string, partition: number, offset: number): Promise<void>;
}

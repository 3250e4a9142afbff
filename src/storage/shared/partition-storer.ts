import { inject, injectable } from 'inversify';
import { TOKENS } from '../../di/tokens.js';
import { checkID, checkPartition } from '../../types/keys.js';
import { checkInteger } from '../../types/input.js';
import type { PartitionOffset, PartitionOffsetsTable, PartitionStorer, UnitOfWork } from '../tables/index.js';

/**
 * The default PartitionStorer, over PartitionOffsetsTable; bound to TOKENS.PartitionStorer by the shared module.
 * A driver with a better place for offsets rebinds that token in its own module. Each write is a single upsert,
 * so it needs no ordering and no transaction.
 */
@injectable()
export class TablePartitionStorer implements PartitionStorer {
  constructor(
    @inject(TOKENS.UnitOfWork) private readonly uow: UnitOfWork,
    @inject(TOKENS.PartitionOffsetsTable) private readonly table: PartitionOffsetsTable,
  ) {}

  async partitionOffsets(topic: string): Promise<PartitionOffset[]> {
    checkID('topic', topic);
    return this.table.selectPartitionOffsets(this.uow.autocommit, topic);
  }

  async setPartitionOffset(topic: string, partition: number, offset: number): Promise<void> {
    checkID('topic', topic);
    checkPartition('partition', partition);
    checkInteger('offset', offset);
    await this.uow.transaction((tx) => this.table.upsertPartitionOffset(tx, topic, partition, offset));
  }
}

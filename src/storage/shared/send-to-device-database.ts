import { inject, injectable } from 'inversify';
import { TOKENS } from '../../di/tokens.js';
import { InvalidInputError } from '../../types/errors.js';
import { checkCount, checkFunction, checkIdentifier, checkUserID, preview } from '../../types/input.js';
import { checkID, checkText, type SendToDeviceContent, type SendToDeviceMessage } from '../../types/keys.js';
import type { SendToDeviceRow, SendToDeviceTable, UnitOfWork } from '../tables/index.js';
import type { StorageOptions } from './storage-options.js';

/** Messages a retention run deletes per write: a purge of millions holds no long lock, and each write is short. */
export const SEND_TO_DEVICE_PURGE_BATCH = 1000;

const DAY_MS = 86_400_000;

/** The stored form of a message: the JSON of { sender, type, content }. */
function encode(event: SendToDeviceContent): string {
  if (typeof event !== 'object' || event === null) throw new InvalidInputError(`a send-to-device message must be an object, got ${preview(event)}`);
  checkUserID('sender', event.sender);
  checkIdentifier('type', event.type);
  const c = event.content;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new InvalidInputError(`content must be a JSON object, got ${preview(c)}`);
  let json: string;
  try {
    json = JSON.stringify({ sender: event.sender, type: event.type, content: c });
  } catch (e) {
    throw new InvalidInputError(`content is not JSON-serialisable: ${(e as Error).message}`);
  }
  return checkText('send-to-device message', json);
}

/** The message, or undefined when its stored JSON is not a { sender, type, content } object. */
function decode(row: SendToDeviceRow): SendToDeviceMessage | undefined {
  let o: unknown;
  try {
    o = JSON.parse(row.content);
  } catch {
    return undefined;
  }
  if (typeof o !== 'object' || o === null) return undefined;
  const { sender, type, content } = o as Record<string, unknown>;
  if (typeof sender !== 'string' || typeof type !== 'string' || typeof content !== 'object' || content === null || Array.isArray(content)) return undefined;
  return { id: row.id, userID: row.userID, deviceID: row.deviceID, sender, type, content: content as Record<string, unknown> };
}

/**
 * Send-to-device messages (the sync API's to-device stream, with the post-2022 semantics: oldest first, and a
 * clean-up deletes up to AND including the position the device has acknowledged). Each call is one write.
 */
@injectable()
export class SendToDeviceDatabase {
  constructor(
    @inject(TOKENS.UnitOfWork) readonly uow: UnitOfWork,
    @inject(TOKENS.SendToDeviceTable) readonly table: SendToDeviceTable,
    @inject(TOKENS.StorageOptions) private readonly options: StorageOptions,
  ) {}

  /** Queues a message for the device and returns its stream position (greater than any before, across all users). */
  async storeNewSendForDeviceMessage(userID: string, deviceID: string, event: SendToDeviceContent): Promise<number> {
    checkUserID('user ID', userID);
    checkID('device ID', deviceID);
    const content = encode(event);
    return this.uow.transaction((tx) => this.table.insertSendToDeviceMessage(tx, userID, deviceID, content, Date.now()));
  }

  /**
   * The device's messages with from < position <= to, oldest first (stored content that does not parse is
   * skipped). lastPosition is the highest position read, or `to` when there were none.
   */
  async sendToDeviceUpdatesForSync(userID: string, deviceID: string, from: number, to: number): Promise<{ lastPosition: number; events: SendToDeviceMessage[] }> {
    checkUserID('user ID', userID);
    checkID('device ID', deviceID);
    checkCount('from position', from);
    checkCount('to position', to);
    const { lastPosition, events } = await this.table.selectSendToDeviceMessages(this.uow.autocommit, userID, deviceID, from, to);
    return { lastPosition, events: events.map(decode).filter((m): m is SendToDeviceMessage => m !== undefined) };
  }

  /** Deletes the device's messages up to AND including `upTo` (what the device has acknowledged). */
  async cleanSendToDeviceUpdates(userID: string, deviceID: string, upTo: number): Promise<void> {
    checkUserID('user ID', userID);
    checkID('device ID', deviceID);
    checkCount('position', upTo);
    await this.uow.transaction((tx) => this.table.deleteSendToDeviceMessages(tx, userID, deviceID, upTo));
  }

  /**
   * Deletes every message, of any user and device, stored before `before` (milliseconds since 1970), whether its
   * device has fetched it or not: retention for messages whose device never comes back. In writes of
   * SEND_TO_DEVICE_PURGE_BATCH messages, each committed on its own (`onBatch` hears the running total): an
   * interrupted purge keeps what it deleted, and running it again finishes the job. Returns how many it deleted.
   */
  async deleteSendToDeviceMessagesSentBefore(before: number, onBatch?: (deletedSoFar: number) => void): Promise<number> {
    checkCount('before (milliseconds since 1970)', before);
    if (onBatch !== undefined) checkFunction('onBatch', onBatch);
    let deleted = 0;
    for (;;) {
      const n = await this.uow.transaction((tx) => this.table.deleteSendToDeviceMessagesSentBefore(tx, before, SEND_TO_DEVICE_PURGE_BATCH));
      deleted += n;
      if (n > 0) onBatch?.(deleted);
      if (n < SEND_TO_DEVICE_PURGE_BATCH) return deleted;
    }
  }

  /**
   * The configured retention (`send_to_device.max_age_days`): deletes the messages stored more than that many days
   * before `now` (milliseconds since 1970, the current time unless given), as deleteSendToDeviceMessagesSentBefore
   * does. `before` is the cut, undefined (and nothing deleted) when the setting is 0, keeping messages until their
   * device fetches them.
   */
  async deleteExpiredSendToDeviceMessages(now: number = Date.now(), onBatch?: (deletedSoFar: number) => void): Promise<{ deleted: number; before: number | undefined }> {
    checkCount('now (milliseconds since 1970)', now);
    if (onBatch !== undefined) checkFunction('onBatch', onBatch);
    const days = this.options.sendToDeviceMaxAgeDays ?? 0;
    if (days === 0) return { deleted: 0, before: undefined };
    const before = Math.max(0, now - days * DAY_MS);
    return { deleted: await this.deleteSendToDeviceMessagesSentBefore(before, onBatch), before };
  }

  /** The highest position handed out that still has a message, over all users; 0 if none. */
  maxStreamPositionForSendToDeviceMessages(): Promise<number> {
    return this.table.selectMaxSendToDeviceMessageID(this.uow.autocommit);
  }
}

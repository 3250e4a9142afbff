import { inject, injectable } from 'inversify';
import { TOKENS } from '../../di/tokens.js';
import { InvalidInputError } from '../../types/errors.js';
import { checkCount, checkIdentifier, checkUserID, preview } from '../../types/input.js';
import { checkID, checkText, type SendToDeviceContent, type SendToDeviceMessage } from '../../types/keys.js';
import type { SendToDeviceRow, SendToDeviceTable, UnitOfWork } from '../tables/index.js';

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
  ) {}

  /** Queues a message for the device and returns its stream position (greater than any before, across all users). */
  async storeNewSendForDeviceMessage(userID: string, deviceID: string, event: SendToDeviceContent): Promise<number> {
    checkUserID('user ID', userID);
    checkID('device ID', deviceID);
    const content = encode(event);
    return this.uow.transaction((tx) => this.table.insertSendToDeviceMessage(tx, userID, deviceID, content));
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

  /** The highest position handed out that still has a message, over all users; 0 if none. */
  maxStreamPositionForSendToDeviceMessages(): Promise<number> {
    return this.table.selectMaxSendToDeviceMessageID(this.uow.autocommit);
  }
}

import type { Tx } from './unit-of-work.js';

export interface SendToDeviceRow {
  /** The stream position. */
  readonly id: number;
  readonly userID: string;
  readonly deviceID: string;
  /** The JSON of { sender, type, content }, as stored (the table does not parse it). */
  readonly content: string;
}

/** send_to_device: messages waiting for a device, by stream position (the post-2022 semantics). */
export interface SendToDeviceTable {
  /**
   * Returns the new stream position: strictly greater than any handed out before, across all users. `sentAt`:
   * milliseconds since 1970, what retention goes by.
   */
  insertSendToDeviceMessage(tx: Tx, userID: string, deviceID: string, content: string, sentAt: number): Promise<number>;
  /**
   * The device's messages with from < id <= to, oldest first. lastPosition is the highest ID returned, or `to`
   * when none is.
   */
  selectSendToDeviceMessages(tx: Tx, userID: string, deviceID: string, from: number, to: number): Promise<{ lastPosition: number; events: SendToDeviceRow[] }>;
  /** Deletes the device's messages with id <= upTo (up to AND including it); no-op if none. */
  deleteSendToDeviceMessages(tx: Tx, userID: string, deviceID: string, upTo: number): Promise<void>;
  /**
   * Deletes at most `limit` messages, of any user, sent before `before` (milliseconds since 1970), the oldest
   * first; returns how many it deleted.
   */
  deleteSendToDeviceMessagesSentBefore(tx: Tx, before: number, limit: number): Promise<number>;
  /** The highest ID over all users, 0 if there are no messages. */
  selectMaxSendToDeviceMessageID(tx: Tx): Promise<number>;
}

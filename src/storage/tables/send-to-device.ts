import type { Tx } from './unit-of-work.js';

export interface SendToDeviceEvent {
  /** The stream position. */
  readonly id: number;
  readonly userID: string;
  readonly deviceID: string;
  /** The JSON of { sender, type, content }. */
  readonly content: string;
}

/** send_to_device: messages waiting for a device, by stream position. */
export interface SendToDeviceTable {
  /** Returns the new stream position (strictly greater than any before, across all users). */
  insertSendToDeviceMessage(tx: Tx, userID: string, deviceID: string, content: string): Promise<number>;
  /**
   * Messages with from < id <= to, oldest first; unparseable content is skipped. lastPosition is the highest ID
   * returned, or `to` when nothing is.
   */
  selectSendToDeviceMessages(tx: Tx, userID: string, deviceID: string, from: number, to: number): Promise<{ lastPosition: number; events: SendToDeviceEvent[] }>;
  /** Deletes the device's messages with id <= upTo. */
  deleteSendToDeviceMessages(tx: Tx, userID: string, deviceID: string, upTo: number): Promise<void>;
  /** The highest ID over all users, 0 if none. */
  selectMaxSendToDeviceMessageID(tx: Tx): Promise<number>;
}

import type { Storage } from '../index.js';
import { checkCount, checkInteger } from '../types/input.js';

/**
 * Send-to-device retention (what `matrix-storage purge-send-to-device` runs): deletes the messages a device has not
 * fetched within an age, so that messages for devices that never come back do not pile up for ever.
 */
export interface SendToDevicePurgeOptions {
  /** Delete messages stored more than this many days ago; without it, the configured send_to_device.max_age_days. */
  readonly olderThanDays?: number;
  /** The time the age is counted from, milliseconds since 1970 (now unless given). */
  readonly now?: number;
  /** Hears the running total after each write. */
  readonly onBatch?: (deletedSoFar: number) => void;
}

export interface SendToDevicePurgeReport {
  /** Where the age came from: the option, the configuration, or nowhere (retention off: nothing deleted). */
  readonly age: 'option' | 'config' | 'off';
  /** The cut: messages stored before it were deleted (ISO 8601); null when retention is off. */
  readonly before: string | null;
  readonly deleted: number;
}

const DAY_MS = 86_400_000;

export async function purgeSendToDevice(storage: Storage, options: SendToDevicePurgeOptions = {}): Promise<SendToDevicePurgeReport> {
  const now = options.now ?? Date.now();
  checkCount('now (milliseconds since 1970)', now);
  if (options.olderThanDays === undefined) {
    const { deleted, before } = await storage.sendToDevice.deleteExpiredSendToDeviceMessages(now, options.onBatch);
    return before === undefined ? { age: 'off', before: null, deleted } : { age: 'config', before: new Date(before).toISOString(), deleted };
  }
  checkInteger('older than (days)', options.olderThanDays);
  checkCount('older than (days)', options.olderThanDays);
  const before = Math.max(0, now - options.olderThanDays * DAY_MS);
  const deleted = await storage.sendToDevice.deleteSendToDeviceMessagesSentBefore(before, options.onBatch);
  return { age: 'option', before: new Date(before).toISOString(), deleted };
}

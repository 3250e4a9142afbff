import type { SendToDevicePurgeReport } from '../../io/send-to-device-retention.js';
import { fmtInt } from '../output.js';

/** What `matrix-storage purge-send-to-device` prints. */
export function formatSendToDevicePurge(report: SendToDevicePurgeReport): string {
  if (report.age === 'off') {
    return 'send-to-device retention is off (send_to_device.max_age_days: 0): nothing deleted; set it, or give --older-than-days N';
  }
  return `deleted ${fmtInt(report.deleted)} send-to-device messages stored before ${report.before} ` +
    `(${report.age === 'option' ? '--older-than-days' : 'send_to_device.max_age_days'})`;
}

import { redactEvent } from '../../matrix/redaction.js';

/**
 * The stored form of a redacted event: the redaction algorithm of the room's version (matrix/redaction.ts), with
 * `unsigned.redacted_because` set to the redaction event, as clients are shown it.
 */
export function redactEventJSON(eventJSON: string, redactionEventJSON: string, roomVersion: string): string {
  const redacted = redactEvent(JSON.parse(eventJSON) as Record<string, unknown>, roomVersion);
  redacted.unsigned = { redacted_because: JSON.parse(redactionEventJSON) as unknown };
  return JSON.stringify(redacted);
}

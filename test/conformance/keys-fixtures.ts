import { expect } from 'chai';
import type { DeviceMessage } from '../../src/index.js';

/** A device message; stream ID 0 and no display name unless given. */
export const dm = (userID: string, deviceID: string, keyJSON: string, streamID = 0, displayName?: string): DeviceMessage => ({
  userID, deviceID, keyJSON, streamID, ...(displayName !== undefined ? { displayName } : {}),
});

/** Plain (user, device, key JSON, stream ID, display name) tuples, for comparisons that ignore object shape. */
export const deviceTuples = (messages: readonly DeviceMessage[]) =>
  messages.map((m) => [m.userID, m.deviceID, m.keyJSON, m.streamID, m.displayName ?? null]);

/**
 * Identifiers a naive driver mangles: SQL quoting, LIKE wildcards, characters Cosmos DB forbids in an item id,
 * path separators, unicode in both normal forms, case and trailing-space variants (which must stay distinct),
 * and names that are special on JavaScript objects.
 */
export const HOSTILE_IDS = [
  "it's", '"quoted"', '100%', 'under_score', '%', '_', 'a/b\\c', 'what?', 'hash#tag', 'ünïcødé 🎉',
  "'; DROP TABLE keyserver_device_keys; --", 'caf\u00e9', 'cafe\u0301', 'Case', 'case', 'trailing ', 'trailing',
  '__proto__', 'constructor', '{"json": [1]}', '$1',
  // The old Cosmos DB port mapped / \\ ? # to ",": these must stay five different IDs.
  'a,b', 'a/b', 'a\\b', 'a?b', 'a#b', 'a|b',
];

/** User IDs built from the hostile strings (plus a server with a port). */
export const HOSTILE_USERS = [
  ...HOSTILE_IDS.map((s) => `@${s}:example.org`),
  '@alice:example.org:8448',
  '@alice:EXAMPLE.org',
];

/** Exactly 255 bytes (the most an identifier may have), half of them multi-byte: a user ID and a device ID. */
export const LONG_USER = `@${'é'.repeat(60)}${'u'.repeat(255 - 1 - 120 - ':example.org'.length)}:example.org`;
export const LONG_DEVICE = `${'ü'.repeat(50)}${'D'.repeat(255 - 100)}`;
/** One byte too many. */
export const TOO_LONG_USER = `@${'u'.repeat(255 - 1 - ':example.org'.length + 1)}:example.org`;

/** Asserts the lengths the fixtures promise. */
export function checkFixtureLengths(): void {
  expect(Buffer.byteLength(LONG_USER)).to.equal(255);
  expect(Buffer.byteLength(LONG_DEVICE)).to.equal(255);
  expect(Buffer.byteLength(TOO_LONG_USER)).to.equal(256);
}

export { rejectsAsync } from './fixtures.js';

/** Runs `n` calls at once and waits for all of them (rejections included). */
export const parallel = <T>(n: number, call: (i: number) => Promise<T>): Promise<PromiseSettledResult<T>[]> =>
  Promise.allSettled(Array.from({ length: n }, (_, i) => call(i)));

/** The values of fulfilled results; fails the test on any rejection. */
export function fulfilled<T>(results: readonly PromiseSettledResult<T>[]): T[] {
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length > 0) throw new Error(`${failures.length} of ${results.length} concurrent calls failed; first: ${(failures[0]!.reason as Error)?.stack ?? failures[0]!.reason}`);
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

import { InvalidInputError } from './errors.js';
import { MAX_EVENT_BYTES } from './event.js';
import { asString, checkIdentifier, checkString, preview } from './input.js';


/**
 * Key server, key backup and send-to-device value types, and the checks every Database API applies to its input
 * before anything is written. Each check names the field (as the caller passed it) in its InvalidInputError.
 */

/** Cross-signing key purposes, stored as small integers. */
export const CrossSigningKeyPurpose = { master: 1, selfSigning: 2, userSigning: 3 } as const;
export type CrossSigningKeyPurpose = (typeof CrossSigningKeyPurpose)[keyof typeof CrossSigningKeyPurpose];

/** The Matrix name of each purpose, as a cross-signing key's `usage` spells it. */
export const CROSS_SIGNING_USAGE = { 1: 'master', 2: 'self_signing', 3: 'user_signing' } as const satisfies Record<CrossSigningKeyPurpose, string>;
export type CrossSigningKeyUsage = (typeof CROSS_SIGNING_USAGE)[CrossSigningKeyPurpose];

export const isCrossSigningKeyPurpose = (n: unknown): n is CrossSigningKeyPurpose => n === 1 || n === 2 || n === 3;

/** A user's cross-signing key as the key server returns it (the shape of the Matrix `CrossSigningKey` object). */
export interface CrossSigningKey {
  readonly userID: string;
  /** The one purpose this key has, e.g. ["master"]. */
  readonly usage: readonly CrossSigningKeyUsage[];
  /** `ed25519:<unpadded base64 of the key>` -> the key (unpadded base64). */
  readonly keys: ReadonlyMap<string, string>;
  /** Only the user's own signatures: user ID -> (key ID -> signature). Empty if none. */
  readonly signatures: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

/** Means "no upper bound" as the `toOffset` of a key-change range (Kafka's OffsetNewest). */
export const OFFSET_NEWEST = -1;

/** What a send-to-device message carries, as the sender gave it. */
export interface SendToDeviceContent {
  readonly sender: string;
  readonly type: string;
  readonly content: Readonly<Record<string, unknown>>;
}

/** A stored send-to-device message: its stream position, recipient and content. */
export interface SendToDeviceMessage extends SendToDeviceContent {
  readonly id: number;
  readonly userID: string;
  readonly deviceID: string;
}

/** Free text the store keeps verbatim (key JSON, auth data, session data, display names) is capped at 64 KiB. */
export const MAX_TEXT_BYTES = MAX_EVENT_BYTES;

/** A server name (the blacklist's key): a non-empty string of at most 255 bytes, no NUL. */
export const checkServerName = (what: string, value: unknown): string => checkIdentifier(what, value);

/** A device ID, key ID, session ID or topic: a non-empty string of at most 255 bytes, no NUL. */
export const checkID = (what: string, value: unknown): string => checkIdentifier(what, value);

/** An algorithm name: an identifier without ":" (one-time keys are named "algorithm:keyID"). */
export function checkAlgorithm(what: string, value: unknown): string {
  const algorithm = checkIdentifier(what, value);
  if (algorithm.includes(':')) throw new InvalidInputError(`${what} must not contain ":": ${preview(algorithm)}`);
  return algorithm;
}

/** "algorithm:keyID" split at the first ":", each part checked. */
export function splitAlgorithmKeyID(what: string, value: unknown): { algorithm: string; keyID: string } {
  if (typeof value !== 'string') throw new InvalidInputError(`${what} must be a string, got ${preview(value)}`);
  const colon = value.indexOf(':');
  if (colon < 0) throw new InvalidInputError(`${what} must be "algorithm:keyID", got ${preview(value)}`);
  return { algorithm: checkAlgorithm(`${what} (algorithm)`, value.slice(0, colon)), keyID: checkID(`${what} (key ID)`, value.slice(colon + 1)) };
}

/** Text kept verbatim: a string (possibly empty), no NUL, at most 64 KiB. */
export function checkText(what: string, value: unknown): string {
  checkString(what, value);
  const bytes = Buffer.byteLength(value as string, 'utf8');
  if (bytes > MAX_TEXT_BYTES) throw new InvalidInputError(`${what} is ${bytes} bytes long; at most ${MAX_TEXT_BYTES} are accepted`);
  return value as string;
}

/** A Kafka-style partition number: 0 to 2^31 - 1. */
export function checkPartition(what: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0x7fff_ffff) {
    throw new InvalidInputError(`${what} must be an integer from 0 to ${0x7fff_ffff}, got ${preview(value)}`);
  }
  return value;
}

/** Standard base64 (Matrix keys are unpadded; padding is accepted), non-empty, at most 255 bytes. */
export function checkBase64(what: string, value: unknown): string {
  const s = checkIdentifier(what, value);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s)) throw new InvalidInputError(`${what} must be base64, got ${preview(s)}`);
  return s;
}

/** The key ID Matrix gives an ed25519 public key: "ed25519:" + the key in unpadded base64. */
export const ed25519KeyID = (base64Key: string): string => `ed25519:${base64Key.replace(/=+$/, '')}`;

/**
 * A key backup version as callers pass it: a decimal number. Returns its canonical form ("007" -> "7").
 * InvalidInputError if it is not a number.
 */
export function checkBackupVersion(what: string, value: unknown): string {
  if (typeof value !== 'string' || !/^[0-9]{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new InvalidInputError(`${what} must be a backup version (a decimal number in a string), got ${preview(value)}${asString(value)}`);
  }
  return String(Number(value));
}

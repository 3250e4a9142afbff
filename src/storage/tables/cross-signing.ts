import type { Tx } from './unit-of-work.js';

/** Cross-signing key purposes, stored as small integers. */
export const CrossSigningKeyPurpose = { master: 1, selfSigning: 2, userSigning: 3 } as const;
export type CrossSigningKeyPurpose = (typeof CrossSigningKeyPurpose)[keyof typeof CrossSigningKeyPurpose];

/** cross_signing_keys: a user's master, self-signing and user-signing public keys. */
export interface CrossSigningKeysTable {
  /** purpose -> key data (base64); an empty map if none. CorruptionError on a stored purpose that is not 1-3. */
  selectCrossSigningKeysForUser(tx: Tx, userID: string): Promise<Map<CrossSigningKeyPurpose, string>>;
  /** UPSERT. InvalidInputError on an unknown purpose. */
  upsertCrossSigningKeysForUser(tx: Tx, userID: string, purpose: CrossSigningKeyPurpose, keyData: string): Promise<void>;
}

/** cross_signing_sigs: who signed which key of which user. */
export interface CrossSigningSigsTable {
  /** originUserID -> (originKeyID -> signature); an empty map if none. */
  selectCrossSigningSigsForTarget(tx: Tx, targetUserID: string, targetKeyID: string): Promise<Map<string, Map<string, string>>>;
  /**
   * UPSERT on (origin user, target user, target key): replaces the origin key ID and signature, so each origin
   * user keeps one signature per target key.
   */
  upsertCrossSigningSigsForTarget(
    tx: Tx, originUserID: string, originKeyID: string, targetUserID: string, targetKeyID: string, signature: string,
  ): Promise<void>;
  /** No-op if none. */
  deleteCrossSigningSigsForTarget(tx: Tx, targetUserID: string, targetKeyID: string): Promise<void>;
}

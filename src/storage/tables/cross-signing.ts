import type { CrossSigningKeyPurpose } from '../../types/keys.js';
import type { Tx } from './unit-of-work.js';

/** cross_signing_keys: a user's master, self-signing and user-signing public keys. */
export interface CrossSigningKeysTable {
  /** purpose -> key data (base64), in purpose order; an empty map if none. CorruptionError on a stored purpose that is not 1-3. */
  selectCrossSigningKeysForUser(tx: Tx, userID: string): Promise<Map<CrossSigningKeyPurpose, string>>;
  /** UPSERT: replaces the key data. InvalidInputError on a purpose that is not 1-3. */
  upsertCrossSigningKeysForUser(tx: Tx, userID: string, purpose: CrossSigningKeyPurpose, keyData: string): Promise<void>;
}

/** cross_signing_sigs: who signed which key of which user. */
export interface CrossSigningSigsTable {
  /** originUserID -> (originKeyID -> signature), origin users sorted; an empty map if none. */
  selectCrossSigningSigsForTarget(tx: Tx, targetUserID: string, targetKeyID: string): Promise<Map<string, Map<string, string>>>;
  /**
   * UPSERT on (origin user, target user, target key): replaces the origin key ID and signature, so each origin
   * user keeps one signature per target key.
   */
  upsertCrossSigningSigsForTarget(
    tx: Tx, originUserID: string, originKeyID: string, targetUserID: string, targetKeyID: string, signature: string,
  ): Promise<void>;
  /** Deletes every signature of that target key; no-op if none. */
  deleteCrossSigningSigsForTarget(tx: Tx, targetUserID: string, targetKeyID: string): Promise<void>;
}

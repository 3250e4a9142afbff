import type { Tx } from './unit-of-work.js';

export interface RedactionInfo {
  readonly redactionEventID: string;
  readonly redactsEventID: string;
  /** True once the redaction has been applied to the redacted event's stored JSON. */
  readonly validated: boolean;
}

/** redactions: which event redacts which, and whether that was applied. */
export interface RedactionsTable {
  /** DO NOTHING on a duplicate redaction event ID. */
  insertRedaction(tx: Tx, info: RedactionInfo): Promise<void>;
  /** null if missing. */
  selectRedactionInfoByRedactionEventID(tx: Tx, redactionEventID: string): Promise<RedactionInfo | null>;
  /** null if missing; if several redactions target the event, the first stored. */
  selectRedactionInfoByEventBeingRedacted(tx: Tx, eventID: string): Promise<RedactionInfo | null>;
  /** No error if missing. */
  markRedactionValidated(tx: Tx, redactionEventID: string, validated: boolean): Promise<void>;
  /** selectRedactionInfoByEventBeingRedacted for many events: redacted event ID -> its first stored redaction. */
  bulkSelectRedactionInfoByEventsBeingRedacted(tx: Tx, eventIDs: readonly string[]): Promise<Map<string, RedactionInfo>>;
}

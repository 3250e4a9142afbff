import { inject, injectable } from 'inversify';
import type { RedactionInfo, RedactionsTable, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';
import { addToSetDocument, readSetDocument, readSetDocuments } from './set-document.js';

/**
 * redactions on Cosmos DB: `red|<redaction ID>` holds the redaction; `redt|<event ID>` lists, in the order stored,
 * the redactions naming that event. The list entry is written first (an idempotent set-add), the redaction
 * document last; a reader ignores list entries whose redaction document is missing or names another event.
 */
@injectable()
export class CosmosRedactionsTable implements RedactionsTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private read(redactionEventID: string) {
    return this.conn.requests.read<RedactionInfo>('redactions.select', 'red', this.conn.pk('red', redactionEventID));
  }

  /** The redaction's document and its target's list, together (a reader counts a redaction only where both are). */
  async insertRedaction(_tx: Tx, info: RedactionInfo): Promise<void> {
    await Promise.all([
      addToSetDocument(this.conn, 'redactions.insert', 'redt', info.redactsEventID, info.redactionEventID),
      this.conn.requests.create('redactions.insert', this.doc(info)),
    ]);
  }

  /**
   * The input path's record of a redaction it stores (CosmosRoomCommit): as insertRedaction, but written over a
   * document left by a call that stopped before its room committed (which counts for nothing), so that a redaction
   * applied at once is recorded validated in one write.
   */
  async recordRedaction(info: RedactionInfo): Promise<void> {
    await Promise.all([
      addToSetDocument(this.conn, 'redactions.insert', 'redt', info.redactsEventID, info.redactionEventID),
      this.conn.requests.upsert('redactions.insert', this.doc(info)),
    ]);
  }

  private doc(info: RedactionInfo) {
    return {
      id: 'red', pk: this.conn.pk('red', info.redactionEventID), k: 'redaction',
      redactionEventID: info.redactionEventID, redactsEventID: info.redactsEventID, validated: info.validated,
    };
  }

  async selectRedactionInfoByRedactionEventID(_tx: Tx, redactionEventID: string): Promise<RedactionInfo | null> {
    const doc = await this.read(redactionEventID);
    return doc ? { redactionEventID: doc.redactionEventID, redactsEventID: doc.redactsEventID, validated: doc.validated } : null;
  }

  async selectRedactionInfoByEventBeingRedacted(tx: Tx, eventID: string): Promise<RedactionInfo | null> {
    for (const id of (await readSetDocument(this.conn, 'redactions.selectByTarget', 'redt', eventID)) ?? []) {
      const info = await this.selectRedactionInfoByRedactionEventID(tx, String(id));
      if (info && info.redactsEventID === eventID) return info;
    }
    return null;
  }

  async bulkSelectRedactionInfoByEventsBeingRedacted(tx: Tx, eventIDs: readonly string[]): Promise<Map<string, RedactionInfo>> {
    // Two bulk reads: each target's list of redactions, then every redaction those lists name; the first whose
    // document exists and names the target counts (see the class comment).
    const out = new Map<string, RedactionInfo>();
    const targets = [...new Set(eventIDs)];
    const lists = await readSetDocuments(this.conn, 'redactions.selectByTarget', 'redt', targets);
    const named = [...new Set(lists.flatMap((l) => (l ?? []).map(String)))];
    if (named.length === 0) return out;
    const docs = await this.conn.requests.readMany<RedactionInfo>('redactions.select', named.map((id) => ({ id: 'red', pk: this.conn.pk('red', id) })));
    const byID = new Map(named.map((id, i) => [id, docs[i]]));
    targets.forEach((target, i) => {
      for (const id of lists[i] ?? []) {
        const doc = byID.get(String(id));
        if (doc && doc.redactsEventID === target) {
          out.set(target, { redactionEventID: doc.redactionEventID, redactsEventID: doc.redactsEventID, validated: doc.validated });
          return;
        }
      }
    });
    return out;
  }

  async markRedactionValidated(_tx: Tx, redactionEventID: string, validated: boolean): Promise<void> {
    await this.conn.requests.patch('redactions.markValidated', 'red', this.conn.pk('red', redactionEventID),
      [{ op: 'set', path: '/validated', value: validated }]);
  }
}

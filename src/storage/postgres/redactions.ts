import { inject, injectable } from 'inversify';
import type { RedactionInfo, RedactionsTable, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';

const COLUMNS = 'redaction_event_id AS "redactionEventID", redacts_event_id AS "redactsEventID", validated';

@injectable()
export class PostgresRedactionsTable implements RedactionsTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async insertRedaction(tx: Tx, info: RedactionInfo): Promise<void> {
    await this.conn.query(tx, `INSERT INTO roomserver_redactions (redaction_event_id, redacts_event_id, validated) VALUES ($1, $2, $3)
      ON CONFLICT DO NOTHING`, [info.redactionEventID, info.redactsEventID, info.validated]);
  }

  async selectRedactionInfoByRedactionEventID(tx: Tx, redactionEventID: string): Promise<RedactionInfo | null> {
    const r = await this.conn.query<RedactionInfo>(tx, `SELECT ${COLUMNS} FROM roomserver_redactions WHERE redaction_event_id = $1`, [redactionEventID]);
    return r.rows[0] ?? null;
  }

  async selectRedactionInfoByEventBeingRedacted(tx: Tx, eventID: string): Promise<RedactionInfo | null> {
    const r = await this.conn.query<RedactionInfo>(tx, `SELECT ${COLUMNS} FROM roomserver_redactions WHERE redacts_event_id = $1
      ORDER BY insertion LIMIT 1`, [eventID]);
    return r.rows[0] ?? null;
  }

  async bulkSelectRedactionInfoByEventsBeingRedacted(tx: Tx, eventIDs: readonly string[]): Promise<Map<string, RedactionInfo>> {
    if (eventIDs.length === 0) return this.conn.nothing(tx, new Map());
    const r = await this.conn.query<RedactionInfo>(tx, `SELECT DISTINCT ON (redacts_event_id) ${COLUMNS} FROM roomserver_redactions
      WHERE redacts_event_id = ANY($1::text[]) ORDER BY redacts_event_id, insertion`, [[...new Set(eventIDs)]]);
    return new Map(r.rows.map((row) => [row.redactsEventID, row]));
  }

  async markRedactionValidated(tx: Tx, redactionEventID: string, validated: boolean): Promise<void> {
    await this.conn.query(tx, 'UPDATE roomserver_redactions SET validated = $1 WHERE redaction_event_id = $2', [validated, redactionEventID]);
  }
}

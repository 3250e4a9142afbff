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

  async markRedactionValidated(tx: Tx, redactionEventID: string, validated: boolean): Promise<void> {
    await this.conn.query(tx, 'UPDATE roomserver_redactions SET validated = $1 WHERE redaction_event_id = $2', [validated, redactionEventID]);
  }
}

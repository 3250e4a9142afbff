import { inject, injectable } from 'inversify';
import type { RedactionInfo, RedactionsTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { bool } from './values.js';

const COLUMNS = 'redaction_event_id AS redactionEventID, redacts_event_id AS redactsEventID, validated';
const infoOf = (row: (Omit<RedactionInfo, 'validated'> & { validated: number }) | undefined): RedactionInfo | null =>
  row ? { ...row, validated: row.validated === 1 } : null;

@injectable()
export class SqliteRedactionsTable implements RedactionsTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertRedaction(tx: Tx, info: RedactionInfo): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt(`INSERT INTO roomserver_redactions (redaction_event_id, redacts_event_id, validated) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`)
        .run(info.redactionEventID, info.redactsEventID, bool(info.validated));
    });
  }

  selectRedactionInfoByRedactionEventID(tx: Tx, redactionEventID: string): Promise<RedactionInfo | null> {
    return this.conn.run(tx, (c) => infoOf(c.stmt(`SELECT ${COLUMNS} FROM roomserver_redactions WHERE redaction_event_id = ?`)
      .get(redactionEventID) as never));
  }

  selectRedactionInfoByEventBeingRedacted(tx: Tx, eventID: string): Promise<RedactionInfo | null> {
    return this.conn.run(tx, (c) => infoOf(c.stmt(`SELECT ${COLUMNS} FROM roomserver_redactions WHERE redacts_event_id = ?
      ORDER BY rowid LIMIT 1`).get(eventID) as never));
  }

  markRedactionValidated(tx: Tx, redactionEventID: string, validated: boolean): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt('UPDATE roomserver_redactions SET validated = ? WHERE redaction_event_id = ?').run(bool(validated), redactionEventID);
    });
  }
}

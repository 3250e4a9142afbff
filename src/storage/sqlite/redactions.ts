import { inject, injectable } from 'inversify';
import type { RedactionInfo, RedactionsTable, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';
import { bool, IN_LIST, textList } from './values.js';
import { unique } from '../shared/contracts.js';

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

  bulkSelectRedactionInfoByEventsBeingRedacted(tx: Tx, eventIDs: readonly string[]): Promise<Map<string, RedactionInfo>> {
    return this.conn.run(tx, (c) => {
      const rows = c.stmt(`SELECT ${COLUMNS} FROM roomserver_redactions WHERE redacts_event_id ${IN_LIST} ORDER BY rowid`)
        .all(textList(unique(eventIDs))) as (Omit<RedactionInfo, 'validated'> & { validated: number })[];
      const out = new Map<string, RedactionInfo>();
      for (const r of rows) if (!out.has(r.redactsEventID)) out.set(r.redactsEventID, infoOf(r)!);
      return out;
    });
  }

  markRedactionValidated(tx: Tx, redactionEventID: string, validated: boolean): Promise<void> {
    return this.conn.run(tx, (c) => {
      c.stmt('UPDATE roomserver_redactions SET validated = ? WHERE redaction_event_id = ?').run(bool(validated), redactionEventID);
    });
  }
}

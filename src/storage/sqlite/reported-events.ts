import { inject, injectable } from 'inversify';
import type { ReportedEventRow, ReportedEventsTable, ReportQuery, StoredReport, Tx } from '../tables/index.js';
import { SQLITE_CONNECTION, type SqliteConnection } from './connection.js';

const COLUMNS = `id AS reportID, room_nid AS roomNID, event_nid AS eventNID, reporting_user_nid AS reportingUserNID,
  event_sender_nid AS eventSenderNID, reason, score, received_ts AS receivedTS`;
const FILTER = '(? IS NULL OR room_nid = ?) AND (? IS NULL OR reporting_user_nid = ?)';

@injectable()
export class SqliteReportedEventsTable implements ReportedEventsTable {
  constructor(@inject(SQLITE_CONNECTION) private readonly conn: SqliteConnection) {}

  insertReportedEvent(tx: Tx, r: ReportedEventRow): Promise<number> {
    return this.conn.run(tx, (c) => (c.stmt(`INSERT INTO roomserver_reported_events
      (room_nid, event_nid, reporting_user_nid, event_sender_nid, reason, score, received_ts) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`)
      .get(r.roomNID, r.eventNID, r.reportingUserNID, r.eventSenderNID, r.reason, r.score, r.receivedTS) as { id: number }).id);
  }

  selectReportedEvents(tx: Tx, q: ReportQuery): Promise<{ reports: StoredReport[]; total: number }> {
    const room = q.roomNID ?? null;
    const user = q.reportingUserNID ?? null;
    const order = q.backwards ? 'DESC' : 'ASC';
    return this.conn.run(tx, (c) => ({
      reports: c.stmt(`SELECT ${COLUMNS} FROM roomserver_reported_events WHERE ${FILTER}
        ORDER BY received_ts ${order}, id ${order} LIMIT ? OFFSET ?`).all(room, room, user, user, q.limit, q.from) as StoredReport[],
      total: (c.stmt(`SELECT COUNT(*) AS n FROM roomserver_reported_events WHERE ${FILTER}`).get(room, room, user, user) as { n: number }).n,
    }));
  }

  selectReportedEvent(tx: Tx, reportID: number): Promise<StoredReport | null> {
    return this.conn.run(tx, (c) => (c.stmt(`SELECT ${COLUMNS} FROM roomserver_reported_events WHERE id = ?`).get(reportID) as StoredReport | undefined) ?? null);
  }

  deleteReportedEvent(tx: Tx, reportID: number): Promise<boolean> {
    return this.conn.run(tx, (c) => c.stmt('DELETE FROM roomserver_reported_events WHERE id = ?').run(reportID).changes > 0);
  }
}

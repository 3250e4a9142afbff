import { inject, injectable } from 'inversify';
import type { ReportedEventRow, ReportedEventsTable, ReportQuery, StoredReport, Tx } from '../tables/index.js';
import { POSTGRES_CONNECTION, type PostgresConnection } from './connection.js';
import { changed } from './values.js';

const COLUMNS = `id AS "reportID", room_nid AS "roomNID", event_nid AS "eventNID", reporting_user_nid AS "reportingUserNID",
  event_sender_nid AS "eventSenderNID", reason, score, received_ts AS "receivedTS"`;
const FILTER = '($1::bigint IS NULL OR room_nid = $1) AND ($2::bigint IS NULL OR reporting_user_nid = $2)';

@injectable()
export class PostgresReportedEventsTable implements ReportedEventsTable {
  constructor(@inject(POSTGRES_CONNECTION) private readonly conn: PostgresConnection) {}

  async insertReportedEvent(tx: Tx, r: ReportedEventRow): Promise<number> {
    const res = await this.conn.query<{ id: number }>(tx, `INSERT INTO roomserver_reported_events
      (room_nid, event_nid, reporting_user_nid, event_sender_nid, reason, score, received_ts) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
    [r.roomNID, r.eventNID, r.reportingUserNID, r.eventSenderNID, r.reason, r.score, r.receivedTS]);
    return Number(res.rows[0]!.id);
  }

  /** The page and the count, sent together (one round trip where the connection pipelines). */
  async selectReportedEvents(tx: Tx, q: ReportQuery): Promise<{ reports: StoredReport[]; total: number }> {
    const order = q.backwards ? 'DESC' : 'ASC';
    const params = [q.roomNID ?? null, q.reportingUserNID ?? null];
    const [page, count] = await Promise.all([
      this.conn.query<StoredReport>(tx, `SELECT ${COLUMNS} FROM roomserver_reported_events WHERE ${FILTER}
        ORDER BY received_ts ${order}, id ${order} LIMIT $3 OFFSET $4`, [...params, q.limit, q.from]),
      this.conn.query<{ n: number }>(tx, `SELECT COUNT(*)::bigint AS n FROM roomserver_reported_events WHERE ${FILTER}`, params),
    ]);
    return { reports: page.rows.map(toReport), total: Number(count.rows[0]!.n) };
  }

  async selectReportedEvent(tx: Tx, reportID: number): Promise<StoredReport | null> {
    const r = await this.conn.query<StoredReport>(tx, `SELECT ${COLUMNS} FROM roomserver_reported_events WHERE id = $1`, [reportID]);
    return r.rows[0] ? toReport(r.rows[0]) : null;
  }

  async deleteReportedEvent(tx: Tx, reportID: number): Promise<boolean> {
    return changed(await this.conn.query(tx, 'DELETE FROM roomserver_reported_events WHERE id = $1', [reportID])) > 0;
  }
}

const toReport = (r: StoredReport): StoredReport => ({
  reportID: Number(r.reportID), roomNID: r.roomNID, eventNID: r.eventNID, reportingUserNID: r.reportingUserNID,
  eventSenderNID: r.eventSenderNID, reason: r.reason, score: Number(r.score), receivedTS: Number(r.receivedTS),
});

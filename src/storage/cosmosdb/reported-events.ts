import { inject, injectable } from 'inversify';
import type { ReportedEventRow, ReportedEventsTable, ReportQuery, StoredReport, Tx } from '../tables/index.js';
import { COSMOS_CONNECTION, type CosmosConnection } from './connection.js';

/**
 * reported_events on Cosmos DB: one small tenant-wide partition `reports` (reports are read by a server's admins,
 * a few thousand at most), a document per report under its ID, drawn from the `order` counter. Listing is one
 * single-partition query of the matching reports' fields; the page is cut here.
 */
@injectable()
export class CosmosReportedEventsTable implements ReportedEventsTable {
  constructor(@inject(COSMOS_CONNECTION) private readonly conn: CosmosConnection) {}

  private get pk() {
    return this.conn.pk('reports');
  }

  async insertReportedEvent(_tx: Tx, r: ReportedEventRow): Promise<number> {
    const reportID = await this.conn.sequence('order').nextValue();
    await this.conn.requests.upsert('reportedEvents.insert', { id: String(reportID), pk: this.pk, k: 'report', reportID, ...r });
    return reportID;
  }

  async selectReportedEvents(_tx: Tx, q: ReportQuery): Promise<{ reports: StoredReport[]; total: number }> {
    const rows = await this.conn.requests.query<StoredReport>('reportedEvents.select', this.pk,
      `SELECT c.reportID, c.roomNID, c.eventNID, c.reportingUserNID, c.eventSenderNID, c.reason, c.score, c.receivedTS FROM c
        WHERE c.pk = @pk AND c.k = 'report' AND (@room = null OR c.roomNID = @room) AND (@user = null OR c.reportingUserNID = @user)`,
      [{ name: '@room', value: q.roomNID ?? null }, { name: '@user', value: q.reportingUserNID ?? null }]);
    const sign = q.backwards ? -1 : 1;
    rows.sort((a, b) => sign * (a.receivedTS - b.receivedTS || a.reportID - b.reportID));
    return { reports: rows.slice(q.from, q.from + q.limit).map(plain), total: rows.length };
  }

  async selectReportedEvent(_tx: Tx, reportID: number): Promise<StoredReport | null> {
    const doc = await this.conn.requests.read<StoredReport>('reportedEvents.selectOne', String(reportID), this.pk);
    return doc ? plain(doc) : null;
  }

  async deleteReportedEvent(_tx: Tx, reportID: number): Promise<boolean> {
    return this.conn.requests.delete('reportedEvents.delete', String(reportID), this.pk);
  }
}

const plain = (d: StoredReport): StoredReport => ({
  reportID: d.reportID, roomNID: d.roomNID, eventNID: d.eventNID, reportingUserNID: d.reportingUserNID,
  eventSenderNID: d.eventSenderNID, reason: d.reason, score: d.score, receivedTS: d.receivedTS,
});

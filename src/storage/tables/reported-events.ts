import type { EventNID, EventStateKeyNID, RoomNID } from '../../types/nids.js';
import type { Tx } from './unit-of-work.js';

/** An event a user reported to the server's admins. */
export interface ReportedEventRow {
  readonly roomNID: RoomNID;
  readonly eventNID: EventNID;
  readonly reportingUserNID: EventStateKeyNID;
  readonly eventSenderNID: EventStateKeyNID;
  readonly reason: string;
  readonly score: number;
  /** When the report arrived, in ms since the epoch. */
  readonly receivedTS: number;
}

export interface StoredReport extends ReportedEventRow {
  readonly reportID: number;
}

/** Which reports to list: an offset into them in order of arrival (newest first with `backwards`), and filters. */
export interface ReportQuery {
  readonly from: number;
  readonly limit: number;
  readonly backwards: boolean;
  readonly roomNID?: RoomNID;
  readonly reportingUserNID?: EventStateKeyNID;
}

/** reported_events: event reports (Dendrite's roomserver_reported_events), numbered in order of arrival. */
export interface ReportedEventsTable {
  /** Stores the report under a fresh report ID, never handed out before; returns it. */
  insertReportedEvent(tx: Tx, report: ReportedEventRow): Promise<number>;
  /**
   * The reports matching the filters in order of arrival (received time, then report ID; reversed with
   * `backwards`), `limit` of them from offset `from`, and how many match in all.
   */
  selectReportedEvents(tx: Tx, query: ReportQuery): Promise<{ reports: StoredReport[]; total: number }>;
  /** null if there is no such report. */
  selectReportedEvent(tx: Tx, reportID: number): Promise<StoredReport | null>;
  /** Returns whether there was such a report. */
  deleteReportedEvent(tx: Tx, reportID: number): Promise<boolean>;
}

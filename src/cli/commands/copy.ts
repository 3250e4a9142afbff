import type { CheckReport } from '../../io/check.js';
import type { CopySummary } from '../../io/copy.js';
import type { VerifyReport } from '../../io/verify.js';
import { fmtBytes, fmtInt, fmtSeconds } from '../output.js';

/** The text summaries of `copy`, `copy --verify-only` and `check` (their --json forms are the reports as they are). */

const pad = (s: string, n: number) => s.padEnd(n);
const rpad = (s: string, n: number) => s.padStart(n);

export function formatCopySummary(summary: CopySummary, target: string): string[] {
  const lines: string[] = [];
  if (summary.alreadyComplete) {
    lines.push(`the target (${target}) already holds the finished copy of ${summary.source}: nothing to copy`);
  } else {
    lines.push(`${summary.resumed ? 'finished the copy' : 'copied'} ${summary.source} -> ${target}: ${fmtInt(summary.rows)} rows, ` +
      `${fmtBytes(summary.bytes)} in ${fmtSeconds(summary.elapsedMs)} (${fmtBytes(summary.bytesPerSecond)}/s)${summary.resumed ? ' by this run' : ''}`);
    lines.push(`  ${pad('table', 22)} ${rpad('rows', 12)} ${rpad('bytes', 11)} ${rpad('time', 9)}`);
    for (const t of summary.tables) {
      lines.push(`  ${pad(t.table, 22)} ${rpad(fmtInt(t.totalRows), 12)} ${rpad(fmtBytes(t.bytes), 11)} ${rpad(fmtSeconds(t.elapsedMs), 9)}`);
    }
  }
  if (summary.verification) lines.push(...formatVerifyReport(summary.verification));
  return lines;
}

export function formatVerifyReport(report: VerifyReport): string[] {
  const rows = report.tables.reduce((n, t) => n + t.sourceRows, 0);
  if (report.equal) {
    return [`verified: ${report.tables.length} tables equal (${fmtInt(rows)} rows, counted and digested), the current state of ` +
      `${fmtInt(report.rooms)} rooms and the state after ${fmtInt(report.sampledEvents)} sampled events equal (${fmtSeconds(report.elapsedMs)})`];
  }
  return [`source and target differ (${report.differences.length} differences):`, ...report.differences.map((d) => `  ${d}`)];
}

export function formatCheckReport(report: CheckReport, store: string): string[] {
  const rows = Object.values(report.rows).reduce((n, r) => n + (r ?? 0), 0);
  const head = `${store}: ${fmtInt(rows)} rows read, the current state of ${fmtInt(report.roomsStateChecked)} rooms checked` +
    `${report.roomsWithSeveralLatest ? ` (${fmtInt(report.roomsWithSeveralLatest)} rooms with several latest events not)` : ''} in ${fmtSeconds(report.elapsedMs)}`;
  if (report.ok) return [head, 'no violations'];
  const total = Object.values(report.counts).reduce((n, c) => n + (c ?? 0), 0);
  const lines = [head, `${fmtInt(total)} violations:`];
  for (const [kind, n] of Object.entries(report.counts)) lines.push(`  ${kind}: ${fmtInt(n ?? 0)}`);
  for (const v of report.violations) lines.push(`  - ${v.kind}: ${v.message}`);
  return lines;
}

import type { ConformanceCaseResult, ConformanceReport } from '../../io/conformance-run.js';

/** The text forms of `matrix-storage conformance` (its --json form is the report as it is). */

export { runConformance } from '../../io/conformance-run.js';

/** The one line on stdout: `N passed, N failed, N skipped`. */
export function formatConformanceReport(report: Pick<ConformanceReport, 'passed' | 'failed' | 'skipped'>): string {
  return `${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`;
}

/** A case's progress line (stderr): its outcome, its title path without the suite's root, and its time or why. */
export function formatCaseResult(result: ConformanceCaseResult): string {
  const title = result.title.slice(1).join(' > ') || result.fullTitle;
  switch (result.state) {
    case 'passed':
      return `  ok      ${title} (${result.durationMs} ms)`;
    case 'pending':
      return `  skipped ${title.replace(/ \[opted out by [^\]]*\]$/, '')}${result.reason ? ` (opted out: ${result.reason})` : ''}`;
    case 'failed':
      return `  FAILED  ${title}: ${(result.error ?? 'failed').split('\n')[0]}`;
  }
}

/**
 * What stderr says at the end, even with --quiet: the failures again (so that they are not lost among the progress
 * lines), and any scratch namespace that could not be removed.
 */
export function formatConformanceProblems(report: ConformanceReport): string[] {
  const lines = report.cases.filter((c) => c.state === 'failed').map((c) => `failed: ${c.title.slice(1).join(' > ')}: ${c.error ?? 'failed'}`);
  for (const left of report.leftBehind) lines.push(`could not remove the scratch namespace ${left.namespace}: ${left.error}`);
  return lines;
}

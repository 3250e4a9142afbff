import type { ImportSummary } from '../../io/import.js';
import { fmtBytes, fmtInt, fmtSeconds } from '../output.js';

/** What `import` prints once the file is stored. */
export function formatImportSummary(s: ImportSummary, engine: string): string {
  const total = s.applied + s.alreadyStored;
  return [
    `imported ${fmtInt(s.applied)} new event${s.applied === 1 ? '' : 's'}` +
      (s.alreadyStored > 0 ? ` (${fmtInt(s.alreadyStored)} already stored)` : '') +
      ` in ${fmtSeconds(s.elapsedMs)}: ${fmtInt(s.eventsPerSecond)} events/s (${engine}, ${s.format})`,
    ...(s.redactedForContentHash > 0
      ? [`  ${fmtInt(s.redactedForContentHash)} event${s.redactedForContentHash === 1 ? '' : 's'} stored redacted: the content hash did not match`]
      : []),
    `  store: ${fmtInt(s.stats.rooms)} rooms, ${fmtInt(s.stats.events)} events, ${fmtInt(s.stats.stateSnapshots)} state snapshots, ` +
      `${fmtInt(s.stats.stateBlocks)} state blocks`,
    `  state tuples stored: ${fmtInt(s.stats.stateTuples)} (${(s.stats.stateTuples / Math.max(1, s.stats.events)).toFixed(2)} per event), ` +
      `state bytes: ${fmtBytes(s.stats.stateBytes)}`,
    `  database size: ${fmtBytes(s.stats.totalBytes)}`,
    ...(s.requests ? [
      `  requests: ${fmtInt(s.requests.requests)} (${(s.requests.requests / Math.max(1, total)).toFixed(1)} per event)` +
        // SQLite and PostgreSQL count their statements but have no request charge: no RU figure for them.
        (s.requests.requestCharge > 0
          ? `, request charge: ${fmtInt(s.requests.requestCharge)} RU (${(s.requests.requestCharge / Math.max(1, total)).toFixed(1)} per event)`
          : ''),
    ] : []),
  ].join('\n');
}

import { COPY_EXCLUSIONS } from '../io/copy.js';
import type { DumpTableName } from '../storage/tables/dump.js';
import { InvalidInputError } from '../types/errors.js';
import { checkEventID, preview } from '../types/input.js';
import { roomVersionRules } from '../matrix/room-versions.js';
import { MAX_APPEND_BATCH } from '../storage/shared/event-appender.js';
import { ROOM_SORTS, type RoomSort } from '../io/room-sizes.js';
import type { HistoryCut } from '../io/purge.js';
import { CliError, EXIT } from './output.js';

/** The parsers of the commands' option values: a value the command cannot take is a usage error (exit 2), shown short. */

export function wholeNumber(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new CliError(`--${name} takes a whole number, got ${preview(value)}`, EXIT.usage);
    return Number(value);
  };
}

/** A share between 0 and 1 (a plain decimal number). */
export function shareOption(name: string) {
  return (value: string): number => {
    const n = /^(?:0|1|0?\.\d+|1\.0*)$/.test(value) ? Number(value) : NaN;
    if (!(n >= 0 && n <= 1)) throw new CliError(`--${name} takes a number from 0 to 1, such as 0.02, got ${preview(value)}`, EXIT.usage);
    return n;
  };
}

export function batchOption(value: string): number {
  const n = wholeNumber('batch')(value);
  if (n < 1 || n > MAX_APPEND_BATCH) throw new CliError(`--batch takes a whole number from 1 to ${MAX_APPEND_BATCH}, got ${preview(value)}`, EXIT.usage);
  return n;
}

export function pageSizeOption(value: string): number {
  const n = wholeNumber('page-size')(value);
  if (n < 1 || n > 10_000) throw new CliError(`--page-size takes a whole number from 1 to 10,000, got ${preview(value)}`, EXIT.usage);
  return n;
}

export function sortOption(value: string): RoomSort {
  if (!(ROOM_SORTS as readonly string[]).includes(value)) throw new CliError(`--sort takes one of ${ROOM_SORTS.join(', ')}, got ${preview(value)}`, EXIT.usage);
  return value as RoomSort;
}

/** --before: an event ID ($...), milliseconds since 1970, or a date and time (ISO 8601, e.g. 2026-01-31T12:00:00Z). */
export function cutOption(value: string): HistoryCut {
  if (value.startsWith('$')) {
    checkArgument('--before', () => checkEventID('--before EVENT_ID', value));
    return { beforeEventID: value };
  }
  const ms = /^\d+$/.test(value) ? Number(value) : /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : NaN;
  if (!Number.isSafeInteger(ms)) throw new CliError(`--before takes an event ID ($...), milliseconds since 1970 or an ISO date and time, got ${preview(value)}`, EXIT.usage);
  return { beforeTimestamp: ms };
}

export function roomVersionOption(value: string): string {
  checkArgument('--room-version', () => roomVersionRules(value));
  return value;
}

/** An argument the user typed that the store would refuse: a usage error, shown short. */
export function checkArgument(command: string, check: () => void): void {
  try {
    check();
  } catch (e) {
    if (e instanceof InvalidInputError) throw new CliError(`${command}: ${e.message}`, EXIT.usage);
    throw e;
  }
}

/** --older-than-days: whole days, 1 to 36,500 (a hundred years). */
export function daysOption(value: string): number {
  const n = wholeNumber('older-than-days')(value);
  if (n < 1 || n > 36_500) throw new CliError(`--older-than-days takes a whole number of days from 1 to 36,500, got ${preview(value)}`, EXIT.usage);
  return n;
}

/** copy --without: what a copy may leave out (COPY_EXCLUSIONS), as the table it names. */
export function withoutOption(value: string): DumpTableName {
  const table = COPY_EXCLUSIONS[value];
  if (!table) throw new CliError(`--without takes ${Object.keys(COPY_EXCLUSIONS).join(', ')}, got ${preview(value)}`, EXIT.usage);
  return table;
}

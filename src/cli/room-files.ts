import fs from 'node:fs';
import path from 'node:path';
import type { Storage } from '../index.js';
import { InvalidInputError } from '../types/errors.js';
import { ImportStoppedError, importPDUFile, type ImportSummary } from '../io/import.js';
import { generateRoom } from '../io/generate-room.js';
import { validateGenerateOptions } from '../io/generate-options.js';
import { CliError, EXIT, fmtInt, type CliIO } from './output.js';
import { progress } from './progress.js';

/** The room files of the commands: generating one (generate, demo) and importing one with a progress bar (import, demo). */

/**
 * Named for the PDU format (a sample room written by an older build, with made-up event IDs, is not reused) and for
 * the room's size: `demo --members 300` generates its own room rather than reusing another size's.
 */
export const sampleRoom = (members: number, events: number) => `./data/sample-room-pdus-${members}-members-${events}-events.jsonl`;

/** The sample room's share of messages on concurrent branches: forks for the input path to resolve, about one in 70 events. */
export const DEMO_FORK_SHARE = 0.02;

/** Writes a generated room to a file (or stdout), a line at a time, reporting progress. */
export async function writeRoom(out: NodeJS.WritableStream, lines: Iterable<string>, onLine: (n: number) => void): Promise<number> {
  let n = 0;
  for (const line of lines) {
    n++;
    if (!out.write(`${line}\n`)) await new Promise((resolve) => out.once('drain', resolve));
    onLine(n);
  }
  return n;
}

export async function generateToFile(file: string, options: { members: number; events: number; seed: number; forkShare?: number }, onLine: (n: number) => void): Promise<number> {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.partial`;
  const out = fs.createWriteStream(tmp);
  const n = await writeRoom(out, generateRoom(validateGenerateOptions(options)), onLine);
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  fs.renameSync(tmp, file);
  return n;
}

/**
 * Imports a file with a progress bar (bytes read of the file's size, events so far). A PDU that cannot be stored
 * stops it: exit 1, naming the PDU; everything before it is stored, nothing of it.
 */
export async function runImport(
  s: Storage, file: string, options: { roomVersion?: string | undefined; batch?: number | undefined }, io: CliIO, quiet: boolean,
): Promise<ImportSummary> {
  const bar = progress(io, { label: 'import', quiet });
  let started = false;
  try {
    return await importPDUFile(s, file, {
      ...(options.roomVersion !== undefined ? { roomVersion: options.roomVersion } : {}),
      ...(options.batch !== undefined ? { batchSize: options.batch } : {}),
      onProgress: (p) => {
        if (!started) { bar.start(p.totalBytes, 'bytes'); started = true; }
        bar.update(p.bytesRead, `${fmtInt(p.events)} events`);
      },
    });
  } catch (e) {
    if (e instanceof ImportStoppedError) throw new CliError(`import: ${e.message}. Everything before it is stored; nothing of it is.`, EXIT.failed);
    if (e instanceof InvalidInputError) throw new CliError(`import: ${e.message}`, EXIT.failed);
    throw e;
  } finally {
    bar.stop();
  }
}

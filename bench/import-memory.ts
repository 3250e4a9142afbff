/**
 * Bench 8, import memory: peak RSS and peak V8 heap of importing a generated room of 50,000 members and 500,000
 * events (--quick: 10,000 and 100,000) into SQLite with the default block cache, each import alone in a
 * child process. The floor is the same child importing nothing (an empty file): what Node, the driver and the
 * code take before any event.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { fixed, freshSqliteFile, roomFile, type BenchOptions, type Section } from './support.js';

const run = promisify(execFile);
const MB = 1e6;

interface ChildResult { events: number; seconds: number; peakRSSBytes: number; peakHeapBytes: number }

async function child(file: string, db: string, config?: object): Promise<ChildResult> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'import-memory-child.ts'), file, db, ...(config ? [JSON.stringify(config)] : [])],
    { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildResult;
}

export async function importMemoryBench(o: BenchOptions): Promise<Section> {
  const members = o.quick ? 10_000 : 50_000;
  const room = await roomFile(o, { members, events: members * 10, seed: 1 });
  const empty = path.join(o.dir, 'empty.jsonl');
  fs.writeFileSync(empty, '');
  const floor = await child(empty, freshSqliteFile(o, 'memory-floor'));
  o.log(`  floor: ${(floor.peakRSSBytes / MB).toFixed(0)} MB RSS`);
  const ours = await child(room.file, freshSqliteFile(o, 'memory-import'));
  o.log(`  import: ${(ours.peakRSSBytes / MB).toFixed(0)} MB RSS, ${(ours.peakHeapBytes / MB).toFixed(0)} MB heap, ${ours.seconds.toFixed(0)} s`);
  const small = await child(room.file, freshSqliteFile(o, 'memory-import-small'), { state: { block_cache_entries: 500_000 } });
  o.log(`  import, a quarter of the cache: ${(small.peakRSSBytes / MB).toFixed(0)} MB RSS`);
  return {
    id: 'import-memory',
    title: `Import memory: ${members.toLocaleString('en-US')} members, ${ours.events.toLocaleString('en-US')} events into SQLite`,
    notes: [
      'Each import alone in a child process: peak RSS is the kernel\'s high-water mark, peak heap V8\'s heapUsed sampled every 50 ms.',
      'The floor: the same child importing an empty file. The default block cache: 2,000,000 state entries (state.block_cache_entries), held as JS objects; the goal is a peak RSS of at most 200 MB.',
    ],
    columns: ['what', 'peak RSS (MB)', 'peak heap (MB)', 'seconds', 'events/s'],
    rows: [
      ['floor: an empty file', fixed(floor.peakRSSBytes / MB, 0), fixed(floor.peakHeapBytes / MB, 0), fixed(floor.seconds, 1), '-'],
      ['import, default cache', fixed(ours.peakRSSBytes / MB, 0), fixed(ours.peakHeapBytes / MB, 0), fixed(ours.seconds, 1), fixed(ours.events / ours.seconds, 0)],
      ['import, a quarter of the cache (500,000 entries)', fixed(small.peakRSSBytes / MB, 0), fixed(small.peakHeapBytes / MB, 0), fixed(small.seconds, 1), fixed(small.events / small.seconds, 0)],
      ['goal', fixed(200, 0), '-', '-', '-'],
    ],
    data: { members, floor, ours, small, goalMet: ours.peakRSSBytes <= 200 * MB },
  };
}

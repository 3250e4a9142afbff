/**
 * Bench 8, import memory: peak RSS and peak V8 heap of importing a generated room of 50,000 members and 500,000
 * events (--quick: 10,000 and 100,000) into SQLite with the default block cache, each import alone in a
 * child process. The floor is the same child importing nothing (an empty file): what Node, the driver and the
 * code take before any event.
 *
 * The child runs compiled, as the published command does (dist/, no loader): the code is compiled for this run
 * into the scratch directory. Run through tsx instead, the same import took about 130 MB more (the loader keeps
 * the transformed sources and their source maps), which is a cost of running from a checkout, not of the import.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_BLOCK_CACHE_BYTES } from '../src/storage/shared/block-cache.js';
import { fixed, freshSqliteFile, roomFile, type BenchOptions, type Section } from './support.js';

const run = promisify(execFile);
const MB = 1e6;

interface ChildResult { events: number; seconds: number; peakRSSBytes: number; peakHeapBytes: number }

const ROOT = path.resolve(import.meta.dirname, '..');

/** Compiles the library and the child script into the scratch directory; returns the compiled child. */
async function compileChild(o: BenchOptions): Promise<string> {
  const out = path.join(o.dir, 'compiled');
  const config = path.join(o.dir, 'tsconfig.import-memory.json');
  fs.writeFileSync(config, JSON.stringify({
    extends: path.join(ROOT, 'tsconfig.json'),
    compilerOptions: { noEmit: false, outDir: out, rootDir: ROOT, types: ['node'], typeRoots: [path.join(ROOT, 'node_modules/@types')] },
    include: [path.join(ROOT, 'src'), path.join(ROOT, 'bench/import-memory-child.ts')],
  }));
  await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', config], { maxBuffer: 1 << 24 });
  // Compiled output resolves packages from the nearest node_modules: this checkout's.
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(out, 'node_modules'));
  return path.join(out, 'bench/import-memory-child.js');
}

async function child(script: string, file: string, db: string, config?: object): Promise<ChildResult> {
  const { stdout } = await run(process.execPath, [script, file, db, ...(config ? [JSON.stringify(config)] : [])], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildResult;
}

export async function importMemoryBench(o: BenchOptions): Promise<Section> {
  const members = o.quick ? 10_000 : 50_000;
  const room = await roomFile(o, { members, events: members * 10, seed: 1 });
  const empty = path.join(o.dir, 'empty.jsonl');
  fs.writeFileSync(empty, '');
  const script = await compileChild(o);
  const floor = await child(script, empty, freshSqliteFile(o, 'memory-floor'));
  o.log(`  floor: ${(floor.peakRSSBytes / MB).toFixed(0)} MB RSS`);
  const ours = await child(script, room.file, freshSqliteFile(o, 'memory-import'));
  o.log(`  import: ${(ours.peakRSSBytes / MB).toFixed(0)} MB RSS, ${(ours.peakHeapBytes / MB).toFixed(0)} MB heap, ${ours.seconds.toFixed(0)} s`);
  const small = await child(script, room.file, freshSqliteFile(o, 'memory-import-small'), { state: { block_cache_bytes: DEFAULT_BLOCK_CACHE_BYTES / 4 } });
  o.log(`  import, a quarter of the cache: ${(small.peakRSSBytes / MB).toFixed(0)} MB RSS`);
  return {
    id: 'import-memory',
    title: `Import memory: ${members.toLocaleString('en-US')} members, ${ours.events.toLocaleString('en-US')} events into SQLite`,
    notes: [
      'Each import alone in a child process: peak RSS is the kernel\'s high-water mark, peak heap V8\'s heapUsed sampled every 50 ms.',
      `The floor: the same child importing an empty file. The default block cache: ${DEFAULT_BLOCK_CACHE_BYTES / 2 ** 20} MiB of stored block encodings (state.block_cache_bytes) in one ring of bytes; the goal is a peak RSS of at most 200 MB.`,
      'The child runs compiled, as the published command does (through tsx it takes about 130 MB more: the loader\'s transformed sources and source maps).',
    ],
    columns: ['what', 'peak RSS (MB)', 'peak heap (MB)', 'seconds', 'events/s'],
    rows: [
      ['floor: an empty file', fixed(floor.peakRSSBytes / MB, 0), fixed(floor.peakHeapBytes / MB, 0), fixed(floor.seconds, 1), '-'],
      ['import, default cache', fixed(ours.peakRSSBytes / MB, 0), fixed(ours.peakHeapBytes / MB, 0), fixed(ours.seconds, 1), fixed(ours.events / ours.seconds, 0)],
      [`import, a quarter of the cache (${DEFAULT_BLOCK_CACHE_BYTES / 4 / 2 ** 20} MiB)`, fixed(small.peakRSSBytes / MB, 0), fixed(small.peakHeapBytes / MB, 0), fixed(small.seconds, 1), fixed(small.events / small.seconds, 0)],
      ['goal', fixed(200, 0), '-', '-', '-'],
    ],
    data: { members, floor, ours, small, goalMet: ours.peakRSSBytes <= 200 * MB },
  };
}

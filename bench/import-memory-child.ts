/**
 * The child process of the import-memory bench: imports one file into a fresh SQLite store and prints, as one JSON
 * line, its peak RSS and the peak of the V8 heap (sampled every 50 ms), so that one import's memory is measured
 * alone, without the bench runner's own.
 *
 * Peak RSS is the kernel's high-water mark of this process's memory, VmHWM in /proc/self/status. Not
 * process.resourceUsage().maxRSS: Linux carries ru_maxrss across exec from the parent that forked the child, so
 * that reports at least the bench runner's own RSS (169 MB for an empty import after the copy bench had run).
 */
import fs from 'node:fs';
import 'reflect-metadata';
import { createStorage } from '../src/index.js';
import { importPDUFile } from '../src/io/import.js';

/** VmHWM where the kernel reports it (Linux); elsewhere maxRSS, which is this process's own there. */
function peakRSS(): number {
  try {
    const line = fs.readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'));
    if (line) return Number(line.replace(/\D+/g, '')) * 1024;
  } catch {
    // Not Linux: fall through.
  }
  return process.resourceUsage().maxRSS * 1024;
}

const [file, db, configJSON] = process.argv.slice(2) as [string, string, string | undefined];
let peakHeap = 0;
const sample = () => { peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed); };
const timer = setInterval(sample, 50);
const started = performance.now();
const storage = await createStorage({ ...(configJSON ? JSON.parse(configJSON) as object : {}), backend: 'sqlite', sqlite: { path: db } });
const summary = await importPDUFile(storage, file, { batchSize: 100 });
await storage.close();
clearInterval(timer);
sample();
console.log(JSON.stringify({
  events: summary.applied, seconds: (performance.now() - started) / 1000,
  peakRSSBytes: peakRSS(), peakHeapBytes: peakHeap,
}));

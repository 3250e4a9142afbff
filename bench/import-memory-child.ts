/**
 * The child process of the import-memory bench: imports one file into a fresh SQLite store and prints, as one JSON
 * line, its peak RSS (the kernel's high-water mark, process.resourceUsage().maxRSS) and the peak of the V8 heap
 * (sampled every 50 ms), so that one import's memory is measured alone, without the bench runner's own.
 */
import 'reflect-metadata';
import { createStorage } from '../src/index.js';
import { importPDUFile } from '../src/io/import.js';

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
  peakRSSBytes: process.resourceUsage().maxRSS * 1024, peakHeapBytes: peakHeap,
}));

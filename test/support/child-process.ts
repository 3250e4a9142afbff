import { spawn } from 'node:child_process';
import path from 'node:path';

/** This repository's launcher of the CLI from its sources (bin/matrix-storage.js). */
export const CLI_BIN = path.resolve(import.meta.dirname, '../../bin/matrix-storage.js');

/**
 * Runs the command in a child process and kills it with SIGKILL after `ms`, as a crash or an operator's kill -9
 * would: 'killed', or 0 if it ended first; any other exit is an error carrying what it printed on stderr.
 */
export function runKilledAfter(args: readonly string[], ms: number): Promise<'killed' | 0> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve('killed');
      else if (code === 0) resolve(0);
      else reject(new Error(`exit ${code}: ${err}`));
    });
  });
}

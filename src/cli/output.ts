/** Small formatting helpers shared by the commands. */
export const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
export const fmtBytes = (n: number | undefined) => {
  if (n === undefined) return 'n/a';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
};
export const fmtSeconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** A CLI failure with the message to print and the exit code: no stack trace for a user's mistake. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'CliError';
  }
}

/** Exit codes, the same on every backend (README "CLI reference"). */
export const EXIT = { ok: 0, failed: 1, usage: 2, unavailable: 3, pending: 4 } as const;

/** Where a command writes: its output (stdout) and its messages and progress (stderr), a line at a time. */
export interface CliIO {
  out(line: string): void;
  err(line: string): void;
}

export const processIO: CliIO = {
  out: (line) => { process.stdout.write(`${line}\n`); },
  err: (line) => { process.stderr.write(`${line}\n`); },
};

import cliProgress from 'cli-progress';
import { fmtBytes, fmtInt, processIO, type CliIO } from './output.js';

/**
 * Progress of a long command (import, generate, migrate, copy): a bar on a terminal (done/total, rate, ETA), drawn
 * by cli-progress (a maintained progress-bar library: ANSI redraws, ETA smoothing), plain periodic lines when
 * stderr is not a terminal (a log file, CI), and nothing at all with --quiet.
 */
export interface Progress {
  /** What is counted: `bytes` (shown in KiB/MiB), or a plural noun such as "events". */
  start(total: number, unit: string): void;
  /** `done` of the total; `note` is shown beside (e.g. "12,345 events"). */
  update(done: number, note?: string): void;
  stop(): void;
}

export interface ProgressOptions {
  readonly label: string;
  readonly quiet: boolean;
  /** A bar (stderr is a terminal) rather than lines; the default asks the process's stderr. */
  readonly tty?: boolean;
  /** Seconds between two plain lines. */
  readonly everySeconds?: number;
}

const show = (n: number, unit: string) => (unit === 'bytes' ? fmtBytes(n) : fmtInt(n));

export function progress(io: CliIO, options: ProgressOptions): Progress {
  if (options.quiet) return { start() {}, update() {}, stop() {} };
  const tty = options.tty ?? (io === processIO && process.stderr.isTTY === true);
  return tty ? new Bar(options.label) : new Lines(io, options.label, (options.everySeconds ?? 2) * 1000);
}

class Bar implements Progress {
  private bar: cliProgress.SingleBar | undefined;
  private unit = '';
  private started = 0;

  constructor(private readonly label: string) {}

  start(total: number, unit: string): void {
    this.unit = unit;
    this.started = Date.now();
    this.bar = new cliProgress.SingleBar({
      format: `${this.label} [{bar}] {percentage}% | {shown} of {totalShown} | {rate} | ETA {eta_formatted}{note}`,
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 40,
      fps: 5,
    }, cliProgress.Presets.shades_classic);
    this.bar.start(Math.max(1, total), 0, this.payload(0, total, ''));
  }

  update(done: number, note = ''): void {
    this.bar?.update(done, this.payload(done, this.bar.getTotal(), note));
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }

  private payload(done: number, total: number, note: string) {
    const seconds = Math.max(0.001, (Date.now() - this.started) / 1000);
    return { shown: show(done, this.unit), totalShown: show(total, this.unit), rate: `${show(done / seconds, this.unit)}/s`, note: note ? ` | ${note}` : '' };
  }
}

class Lines implements Progress {
  private total = 0;
  private unit = '';
  private started = 0;
  private last = 0;

  constructor(private readonly io: CliIO, private readonly label: string, private readonly intervalMs: number) {}

  start(total: number, unit: string): void {
    this.total = total;
    this.unit = unit;
    this.started = this.last = Date.now();
  }

  update(done: number, note = ''): void {
    const now = Date.now();
    if (now - this.last < this.intervalMs) return;
    this.last = now;
    const seconds = (now - this.started) / 1000;
    const rate = done / Math.max(0.001, seconds);
    const eta = rate > 0 && this.total > done ? ` ETA ${Math.ceil((this.total - done) / rate)} s,` : '';
    const pct = this.total > 0 ? ` (${Math.floor((100 * done) / this.total)}%)` : '';
    this.io.err(`${this.label}: ${show(done, this.unit)} of ${show(this.total, this.unit)}${pct},${eta} ${show(rate, this.unit)}/s${note ? `, ${note}` : ''}`);
  }

  stop(): void {}
}

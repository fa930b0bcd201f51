/**
 * Progress of a long balance on stderr, only when stderr is a terminal and --quiet is not given
 * (so pipes, logs and --json consumers never see it): the phases as they start (reading, planning,
 * the check, balancing, writing) and one line per cycle, rewritten in place with '\r' at most
 * 10 times a second, showing the cycle, the energy (the largest scale change |log d| for p = ∞,
 * whose energy is not what the stopping rule watches) and the elapsed time.
 */
import { clean } from '../model-io/text.js';

export interface Progress {
  /** A phase starts: ends any cycle line and prints `text` on its own line. */
  phase(text: string): void;
  /** After cycle `cycle` (onCycle's arguments). */
  cycle(cycle: number, energy: number, info?: { maxScaleChange?: number; distance?: number }): void;
  /** Ends a pending cycle line (before the report or an error is printed). */
  done(): void;
}

/** Fewest milliseconds between two cycle lines: at most 10 lines a second. */
export const PROGRESS_INTERVAL_MS = 100;

const SILENT: Progress = { phase() {}, cycle() {}, done() {} };

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * The progress printer for `write` (stderr): silent unless `tty` and not `quiet`. `p` picks what
 * a cycle line shows; `now` is the clock in milliseconds (tests pass a fake one).
 */
export function progressFor(write: (text: string) => void, o: { tty: boolean; quiet: boolean; p: number; now?: () => number }): Progress {
  if (!o.tty || o.quiet) return SILENT;
  const now = o.now ?? (() => performance.now());
  const start = now();
  let last = -Infinity;
  let pending = false; // a '\r' line is on screen without its newline
  let latest = '';
  // Shows the last cycle line even when it came inside the interval, then ends the line.
  const finish = () => {
    if (latest) { write(latest); pending = true; latest = ''; }
    if (pending) write('\n');
    pending = false;
  };
  return {
    phase(text) {
      finish();
      last = -Infinity;
      write(`enorm: ${clean(text, 300)} (${seconds(now() - start)})\n`);
    },
    cycle(cycle, energy, info) {
      const change = info?.maxScaleChange;
      const distance = info?.distance !== undefined && Number.isFinite(info.distance) ? `  distance ${info.distance.toExponential(2)}` : '';
      const measure = (o.p === Infinity && change !== undefined ? `largest scale change ${change.toExponential(3)}` : `energy ${energy.toExponential(6)}`) + distance;
      latest = `\renorm: cycle ${cycle}  ${measure}  ${seconds(now() - start)}\x1b[K`;
      const t = now();
      if (t - last < PROGRESS_INTERVAL_MS) return;
      last = t;
      write(latest);
      latest = '';
      pending = true;
    },
    done: finish,
  };
}

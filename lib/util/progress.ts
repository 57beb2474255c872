/**
 * Progress reporting for long work. On a terminal one status line is redrawn
 * in place (epoch, step, loss, samples/s, ETA); when output is piped, only
 * whole lines are printed: one per epoch and at most one every `intervalS`
 * seconds in between, so logs stay short but show that work goes on.
 * @module
 */

/** Where progress goes. */
export interface ProgressSink {
  /** A transient status (overwritten by the next one on a TTY). */
  status(text: string): void;
  /** A permanent line. */
  line(text: string): void;
}

/**
 * A sink writing to stderr: redraws on a TTY, rate-limited lines otherwise.
 *
 * @example
 * ```ts
 * import { consoleProgress } from "./progress.ts";
 * const p = consoleProgress({ quiet: true });
 * p.line("done"); // quiet: prints nothing
 * ```
 */
export function consoleProgress(opts: { quiet?: boolean; intervalS?: number } = {}): ProgressSink {
  const enc = new TextEncoder();
  const tty = Deno.stderr.isTerminal();
  const interval = (opts.intervalS ?? 30) * 1000;
  let last = 0;
  let dirty = false;
  const write = (s: string) => Deno.stderr.writeSync(enc.encode(s));
  if (opts.quiet) return { status: () => {}, line: () => {} };
  return {
    status(text) {
      if (tty) {
        write(`\r\x1b[2K${text}`);
        dirty = true;
      } else if (Date.now() - last >= interval) {
        last = Date.now();
        write(text + "\n");
      }
    },
    line(text) {
      if (tty && dirty) write("\r\x1b[2K");
      dirty = false;
      last = Date.now();
      write(text + "\n");
    },
  };
}

/**
 * Formats seconds as `1h02m`, `3m05s` or `12s`.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./progress.ts";
 * if (formatDuration(185) !== "3m05s") throw new Error();
 * ```
 */
export function formatDuration(s: number): string {
  if (!isFinite(s)) return "?";
  s = Math.max(0, Math.round(s));
  if (s >= 3600) {
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  }
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

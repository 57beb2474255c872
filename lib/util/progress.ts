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
  /** One training step finished in `seconds` (for whole-run estimates; optional). */
  tick?(seconds: number): void;
  /** A training epoch finished and its checkpoint is saved (optional). */
  epoch?(): void;
}

/**
 * A sink writing to stderr: redraws on a TTY, rate-limited lines otherwise.
 *
 * @example
 * ```ts
 * import { consoleProgress } from "./progress.ts";
 * const p = consoleProgress({ quiet: true });
 * p.line("done"); // quiet: prints nothing but lines starting "warning:"
 * ```
 */
export function consoleProgress(opts: { quiet?: boolean; intervalS?: number } = {}): ProgressSink {
  const enc = new TextEncoder();
  const tty = Deno.stderr.isTerminal();
  const interval = (opts.intervalS ?? 30) * 1000;
  let last = 0;
  let dirty = false;
  const write = (s: string) => Deno.stderr.writeSync(enc.encode(s));
  // quiet: only warnings, which say the numbers mean little
  if (opts.quiet) {
    return { status: () => {}, line: (t) => void (/^warning:/.test(t) && write(t + "\n")) };
  }
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

/**
 * A progress callback for scoring images one by one: `label: 1200/10000 images, ETA 12s` as a
 * status line (redrawn on a terminal; piped, a line every 10 s), and nothing once done.
 *
 * @example
 * ```ts
 * import { consoleProgress, imageProgress } from "./progress.ts";
 * const tick = imageProgress("eval", consoleProgress({ quiet: true }));
 * for (let i = 1; i <= 3; i++) tick(i, 3);
 * ```
 */
export function imageProgress(
  label: string,
  sink: ProgressSink = consoleProgress({ intervalS: 10 }),
): (done: number, total: number) => void {
  const t0 = performance.now();
  // a terminal shows progress after 2 s; a log after 10 s (short tasks keep logs clean)
  const quietFor = Deno.stderr.isTerminal() ? 2 : 10;
  let shown = false;
  return (done, total) => {
    if (done >= total) {
      if (shown) {
        sink.line(
          `${label}: ${total} images in ${formatDuration((performance.now() - t0) / 1000)}`,
        );
      }
      return;
    }
    const s = (performance.now() - t0) / 1000;
    if (s < quietFor) return; // a short task prints nothing
    shown = true;
    sink.status(
      `${label}: ${done}/${total} images, ETA ${formatDuration((s / done) * (total - done))}`,
    );
  };
}

/**
 * A progress callback for loading a dataset: one {@link imageProgress} per stage it names
 * (`generating training images`, `decoding images`, ...).
 *
 * @example
 * ```ts
 * import { consoleProgress, loadingProgress } from "./progress.ts";
 * const tell = loadingProgress(consoleProgress({ quiet: true }));
 * tell(64, 128, "generating training images");
 * ```
 */
export function loadingProgress(
  sink: ProgressSink = consoleProgress({ intervalS: 10 }),
): (done: number, total: number, what: string) => void {
  const stages = new Map<string, (done: number, total: number) => void>();
  return (done, total, what) => {
    if (!stages.has(what)) stages.set(what, imageProgress(what, sink));
    stages.get(what)!(done, total);
  };
}

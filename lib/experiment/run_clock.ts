/**
 * Where a run is and when it will end: the runner tells the clock when each
 * variant starts and ends and how long each training step took; the clock
 * answers with the whole run's position (variant k of n, step s of S) and an
 * estimate of the time left, from the step times measured so far (float and
 * fake-quantized steps apart, as they differ) plus each variant's measured
 * time outside training (evaluation, export). Pure: no I/O.
 * @module
 */
import type { RunProgress } from "../run/run_dir.ts";
import { formatDuration } from "../util/progress.ts";

/** A variant as the clock plans it: its training steps (all phases) and their kind. */
export interface PlannedVariant {
  name: string;
  steps: number;
  /** Fake-quantized steps (slower than float ones). */
  quantized: boolean;
}

/**
 * A run's clock.
 *
 * @example
 * ```ts
 * import { RunClock } from "./run_clock.ts";
 * let t = 0;
 * const c = new RunClock([
 *   { name: "float", steps: 10, quantized: false },
 *   { name: "qat", steps: 5, quantized: true },
 * ], () => t * 1000);
 * c.startVariant("float");
 * for (let i = 0; i < 4; i++) { t += 2; c.step(2); } // 2 s per float step
 * // 6 float steps left at 2 s; qat's 5 steps unmeasured: at the float rate
 * const p = c.position();
 * if (p.index !== 1 || p.step !== 4 || p.etaSeconds !== 6 * 2 + 5 * 2) throw new Error(JSON.stringify(p));
 * ```
 */
export class RunClock {
  readonly #plan: PlannedVariant[];
  readonly #now: () => number;
  #current = -1;
  #stepsDone = 0;
  #variantStart = 0;
  #variantStepSeconds = 0;
  #rate = { float: { s: 0, n: 0 }, quantized: { s: 0, n: 0 } };
  #overhead = { s: 0, n: 0 };

  /** `now` gives milliseconds (default `performance.now`). */
  constructor(plan: PlannedVariant[], now: () => number = () => performance.now()) {
    this.#plan = plan;
    this.#now = now;
  }

  /** A variant starts (`stepsDone`: steps an earlier process of a resumed run already trained). */
  startVariant(name: string, stepsDone = 0): void {
    this.#current = this.#plan.findIndex((v) => v.name === name);
    this.#stepsDone = stepsDone;
    this.#variantStart = this.#now();
    this.#variantStepSeconds = 0;
  }

  /** One training step of the current variant took `seconds`. */
  step(seconds: number): void {
    const v = this.#plan[this.#current];
    if (!v) return;
    const r = v.quantized ? this.#rate.quantized : this.#rate.float;
    r.s += seconds;
    r.n++;
    this.#stepsDone++;
    this.#variantStepSeconds += seconds;
  }

  /** The current variant ended: its time outside training steps joins the estimate. */
  endVariant(): void {
    const wall = (this.#now() - this.#variantStart) / 1000;
    this.#overhead.s += Math.max(0, wall - this.#variantStepSeconds);
    this.#overhead.n++;
  }

  /** Seconds per step of a kind: measured, else the other kind's, else unknown. */
  #perStep(quantized: boolean): number | null {
    const [own, other] = quantized
      ? [this.#rate.quantized, this.#rate.float]
      : [this.#rate.float, this.#rate.quantized];
    if (own.n) return own.s / own.n;
    return other.n ? other.s / other.n : null;
  }

  /** The run's position and the estimated seconds to its end (null until a step was timed). */
  position(): Omit<RunProgress, "at"> {
    const i = Math.max(0, this.#current), v = this.#plan[i];
    const overhead = this.#overhead.n ? this.#overhead.s / this.#overhead.n : 0;
    let eta: number | null = 0;
    for (let k = i; k < this.#plan.length && eta !== null; k++) {
      const w = this.#plan[k];
      const left = k === i ? Math.max(0, w.steps - this.#stepsDone) : w.steps;
      const rate = left ? this.#perStep(w.quantized) : 0;
      eta = rate === null ? null : eta + left * rate + overhead;
    }
    return {
      variant: v?.name ?? "",
      index: i + 1,
      of: this.#plan.length,
      step: this.#stepsDone,
      steps: v?.steps ?? 0,
      etaSeconds: eta === null ? null : Math.round(eta),
    };
  }

  /**
   * The position as a status suffix: `run: variant 2/15, ETA 1h05m`.
   *
   * @example
   * ```ts
   * import { RunClock } from "./run_clock.ts";
   * const c = new RunClock([{ name: "f", steps: 3, quantized: false }]);
   * c.startVariant("f");
   * if (c.text() !== "run: variant 1/1, ETA ?") throw new Error(c.text());
   * ```
   */
  text(): string {
    const p = this.position();
    return `run: variant ${p.index}/${p.of}, ETA ${
      p.etaSeconds === null ? "?" : formatDuration(p.etaSeconds)
    }`;
  }
}

/**
 * Lambda schedules for the QGT regularizer, as pure functions of training
 * progress t = step / totalSteps in [0, 1].
 * @module
 */

/** A lambda schedule. Ramps run from `start` to `end` fractions of training (defaults 0 and 1). */
export type LambdaSchedule =
  | { type: "constant"; lambda: number }
  | { type: "linear"; from?: number; to: number; start?: number; end?: number }
  | { type: "exp"; from: number; to: number; start?: number; end?: number };

/**
 * Lambda at progress t:
 * - constant: lambda
 * - linear: from + (to - from) * r
 * - exp: from * (to / from)^r (geometric; from > 0)
 * with r = clamp((t - start) / (end - start), 0, 1).
 *
 * @example
 * ```ts
 * import { lambdaAt } from "./lambda.ts";
 * if (lambdaAt({ type: "linear", to: 2 }, 0.5) !== 1) throw new Error();
 * if (Math.abs(lambdaAt({ type: "exp", from: 0.01, to: 1 }, 0.5) - 0.1) > 1e-12) throw new Error();
 * ```
 */
export function lambdaAt(s: LambdaSchedule, t: number): number {
  if (s.type === "constant") return s.lambda;
  const start = s.start ?? 0, end = s.end ?? 1;
  const r = end > start
    ? Math.min(1, Math.max(0, (t - start) / (end - start)))
    : t >= start
    ? 1
    : 0;
  if (s.type === "linear") {
    const from = s.from ?? 0;
    return from + (s.to - from) * r;
  }
  if (!(s.from > 0) || !(s.to > 0)) throw new Error("lambda schedule exp: from and to must be > 0");
  return s.from * Math.pow(s.to / s.from, r);
}

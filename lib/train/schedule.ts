/**
 * Learning-rate schedules as pure functions of the step.
 * @module
 */

/** A schedule: base rate, shape, optional linear warm-up. */
export type ScheduleSpec =
  & { lr: number; warmupSteps?: number }
  & (
    | { type: "constant" }
    | { type: "step"; stepEvery: number; gamma?: number }
    | { type: "cosine"; minLr?: number }
  );

/**
 * Learning rate at `step` (0-based) of `totalSteps`.
 *
 * - constant: lr
 * - step: lr * gamma^floor(step / stepEvery)  (gamma defaults to 0.1)
 * - cosine: minLr + (lr - minLr) * (1 + cos(pi * t)) / 2, t = step / totalSteps
 *
 * With `warmupSteps = w > 0`, steps 0..w-1 use lr * (step + 1) / w and the
 * schedule proper starts after warm-up (cosine then spans the remaining steps).
 *
 * @example
 * ```ts
 * import { learningRate } from "./schedule.ts";
 * const s = { type: "cosine", lr: 1 } as const;
 * if (learningRate(s, 0, 10) !== 1 || Math.abs(learningRate(s, 5, 10) - 0.5) > 1e-12) throw new Error();
 * ```
 */
export function learningRate(spec: ScheduleSpec, step: number, totalSteps: number): number {
  const w = spec.warmupSteps ?? 0;
  if (step < w) return (spec.lr * (step + 1)) / w;
  const s = step - w, total = Math.max(1, totalSteps - w);
  switch (spec.type) {
    case "constant":
      return spec.lr;
    case "step":
      return spec.lr * Math.pow(spec.gamma ?? 0.1, Math.floor(s / spec.stepEvery));
    case "cosine": {
      const min = spec.minLr ?? 0;
      const t = Math.min(1, s / total);
      return min + ((spec.lr - min) * (1 + Math.cos(Math.PI * t))) / 2;
    }
  }
}

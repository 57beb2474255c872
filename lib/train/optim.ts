/**
 * Optimizers on plain Float32Arrays: Adam (Kingma & Ba 2015, optionally with
 * AdamW's decoupled weight decay) and SGD with (Nesterov) momentum, as in
 * PyTorch. They run on the host, not as tensor ops: one pass over ~200k
 * parameters costs about a millisecond, the result does not depend on the
 * backend, and gradients from data-parallel workers arrive as arrays anyway.
 * The learning rate is passed per step so schedules stay outside.
 * @module
 */

/** Optimizer settings. */
export type OptimizerSpec =
  | { type: "adam"; beta1?: number; beta2?: number; epsilon?: number; weightDecay?: number }
  | { type: "sgd"; momentum?: number; nesterov?: boolean; weightDecay?: number };

/** Saved optimizer state. */
export interface OptimizerState {
  steps: number;
  slots: Float32Array[];
  /** State of the step setup's post-step hook (e.g. oscillation trackers), saved with the optimizer's. */
  setup?: Float32Array[];
}

/** An optimizer over a fixed, ordered list of parameter arrays (updated in place). */
export interface Optimizer {
  /** Applies one update with learning rate `lr`; `grads[i]` belongs to `params[i]`. */
  step(params: Float32Array[], grads: Float32Array[], lr: number): void;
  /** Number of steps taken. */
  readonly steps: number;
  getState(): OptimizerState;
  setState(s: OptimizerState): void;
}

/**
 * Creates an optimizer for parameters of the given sizes; `lrScales[i]`
 * (default 1) multiplies the learning rate of parameter array `i` (weight
 * decay included, as PyTorch's per-group `lr` does).
 *
 * Adam: m <- b1 m + (1-b1) g; v <- b2 v + (1-b2) g^2;
 * w <- w - lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) - lr wd w (decoupled).
 * SGD: g' = g + wd w; b <- mu b + g' (b = g' on the first step);
 * w <- w - lr (nesterov ? g' + mu b : b).
 *
 * @example
 * ```ts
 * import { createOptimizer } from "./optim.ts";
 * const w = new Float32Array([1]);
 * const opt = createOptimizer({ type: "sgd", momentum: 0 }, [1]);
 * opt.step([w], [new Float32Array([2])], 0.1);
 * if (Math.abs(w[0] - 0.8) > 1e-6) throw new Error();
 * ```
 */
export function createOptimizer(
  spec: OptimizerSpec,
  sizes: number[],
  lrScales?: number[],
): Optimizer {
  if (lrScales && lrScales.length !== sizes.length) {
    throw new Error(`optimizer: expected ${sizes.length} learning-rate multipliers`);
  }
  const zeros = () => sizes.map((n) => new Float32Array(n));
  const slots: Float32Array[] = [];
  let t = 0;
  let update: (w: Float32Array, g: Float32Array, i: number, lr: number) => void;
  if (spec.type === "adam") {
    const b1 = spec.beta1 ?? 0.9, b2 = spec.beta2 ?? 0.999, eps = spec.epsilon ?? 1e-7;
    const wd = spec.weightDecay ?? 0;
    const m = zeros(), v = zeros();
    slots.push(...m, ...v);
    update = (w, g, i, lr) => {
      const a = lr / (1 - Math.pow(b1, t)), c2 = 1 - Math.pow(b2, t);
      const mi = m[i], vi = v[i];
      for (let j = 0; j < w.length; j++) {
        const gj = g[j];
        const mj = (mi[j] = b1 * mi[j] + (1 - b1) * gj);
        const vj = (vi[j] = b2 * vi[j] + (1 - b2) * gj * gj);
        w[j] = w[j] - (a * mj) / (Math.sqrt(vj / c2) + eps) - lr * wd * w[j];
      }
    };
  } else {
    const mu = spec.momentum ?? 0.9, nesterov = spec.nesterov ?? false;
    const wd = spec.weightDecay ?? 0;
    const buf = zeros();
    slots.push(...buf);
    update = (w, g, i, lr) => {
      const b = buf[i];
      for (let j = 0; j < w.length; j++) {
        const gj = g[j] + wd * w[j];
        const bj = (b[j] = t === 1 ? gj : mu * b[j] + gj);
        w[j] -= lr * (nesterov ? gj + mu * bj : bj);
      }
    };
  }
  return {
    get steps() {
      return t;
    },
    step(params, grads, lr) {
      if (params.length !== sizes.length || grads.length !== sizes.length) {
        throw new Error(`optimizer: expected ${sizes.length} parameter and gradient arrays`);
      }
      t++;
      for (let i = 0; i < params.length; i++) {
        update(params[i], grads[i], i, lrScales ? lr * lrScales[i] : lr);
      }
    },
    getState: () => ({ steps: t, slots: slots.map((s) => s.slice()) }),
    setState(s) {
      if (s.slots.length !== slots.length) throw new Error("optimizer state: slot count mismatch");
      s.slots.forEach((x, i) => {
        if (x.length !== slots[i].length) throw new Error("optimizer state: slot size mismatch");
      });
      t = s.steps;
      s.slots.forEach((x, i) => slots[i].set(x));
    },
  };
}

/**
 * The training-step setup for quantized training modes, built from plain
 * options so that data-parallel workers build the same one
 * (`{ module: TRAINING_SETUP_MODULE, options }`):
 *
 * - `fakeQuant`: weights of the listed layers are fake-quantized in the
 *   forward pass with a straight-through estimator (QAT, and QGT's final phase);
 * - `regularizer`: adds lambda * sum_l a_l m_l R(W_l) to the loss, with
 *   lambda from the step's `vars.lambda`, per-layer multipliers m_l, and the
 *   reduction weights a_l: `"weights"` (default) a_l = N_l / sum_k N_k, the
 *   mean over every quantized weight of the network, so each weight is pulled
 *   equally hard (in quantization steps) whatever the size of its layer;
 *   `"layers"` a_l = 1 / L, the mean over layers, so each layer's mean
 *   error counts equally (weights of small layers, e.g. depthwise, are then
 *   pulled far harder than those of large ones);
 * - `decoupled` (grid regularizer only): instead of adding the term to the
 *   loss, pulls each weight towards its grid point after the optimizer step,
 *   as AdamW decouples weight decay (see {@link decoupledGridPull});
 * - `freeze`: iterative weight freezing (Nagel et al. 2022, see
 *   {@link OscillationTracker}): after each optimizer step (and grid pull),
 *   weights whose integer level keeps oscillating are frozen at their average
 *   level; the step reports `frozen` (fraction of quantized weights frozen)
 *   and `oscillating` (fraction that oscillated in the step) with its loss terms
 *   (so the epoch metrics hold their means over the epoch's steps);
 * - `activations`: fake-quantizes each weight layer's output on a fixed range
 *   (ReLU6 layers [0, 6]; others as calibrated);
 * - `lsq`: learned step sizes (Esser et al., ICLR 2020) for the listed layers:
 *   one trainable step per scale (`<layer>/lsq_step`, trained by the same
 *   optimizer, gradient scale 1 / sqrt(N qmax), see `lsqQuantize`), starting
 *   from the given values and kept >= MIN_SCALE after each optimizer step. The
 *   grid regularizer and the decoupled pull use the current learned step as the
 *   grid and move the weights only: the step gets no gradient from them.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Model } from "../models/model.ts";
import { profilePhase } from "../backend/profile.ts";
import type { StepSetup } from "../train/step.ts";
import type { QuantSpec } from "../quant/spec.ts";
import { fakeQuantOp, fakeQuantValues, lsqQuantize, MIN_SCALE } from "../quant/quantizer.ts";
import { fakeQuantRange } from "../quant/activation.ts";
import { regularizer, type RegularizerKind } from "./regularizers.ts";
import {
  type FreezeOptions,
  freezeStep,
  OscillationTracker,
  TRACKER_ARRAYS,
} from "./oscillation.ts";

/** Module URL of this file, for `SetupRef`s. */
export const TRAINING_SETUP_MODULE: string = import.meta.url;

/** How per-layer regularizer values are combined into one loss term. */
export type Reduction = "weights" | "layers";

/** Names of the reductions, for validation. */
export const REDUCTIONS: readonly Reduction[] = ["weights", "layers"];

/** Plain, serialisable options of a quantized training step. */
export interface TrainingSetupOptions {
  /** Quantizer of each quantized weight layer; absent layers stay float. */
  specs: Record<string, QuantSpec>;
  /** Fake-quantize weights in the forward pass. */
  fakeQuant?: boolean;
  /** Regularizer pulling weights onto their grids; lambda comes from `vars.lambda`. */
  regularizer?: RegularizerKind;
  /** Per-layer lambda multipliers (default 1). */
  layerLambda?: Record<string, number>;
  /** How layers are combined (default "weights": the mean over all quantized weights). */
  reduction?: Reduction;
  /**
   * Apply the grid pull after the optimizer step (w <- w - lr lambda m_l (w - q(w)))
   * instead of through the loss, so Adam's per-weight normalisation does not rescale it.
   */
  decoupled?: boolean;
  /** Iterative weight freezing of oscillating weights (needs `fakeQuant`). */
  freeze?: FreezeOptions;
  /** Activation fake quantization: bits and [lo, hi] per layer. */
  activations?: { bits: number; ranges: Record<string, [number, number]> };
  /** Learned step sizes: each listed layer's starting steps (one per scale of its spec). */
  lsq?: Record<string, number[]>;
  /** Learning-rate multiplier of the learned steps (default 1: the weights' learning rate). */
  lsqStepLr?: number;
}

/** The variable name of a layer's learned step sizes. */
export function lsqStepName(layer: string): string {
  return `${layer}/lsq_step`;
}

/**
 * Specs quantizing with the given learned steps (`QuantSpec.steps`) where a
 * layer has them; other layers' specs unchanged.
 *
 * @example
 * ```ts
 * import { withSteps } from "./training_setup.ts";
 * const spec = { bits: 2, symmetric: true, perChannel: false, scale: "lsq" as const };
 * const s = withSteps({ a: spec, b: spec }, { a: [0.5] });
 * if ((s.a.steps as number[])[0] !== 0.5 || s.b.steps !== undefined) throw new Error();
 * ```
 */
export function withSteps(
  specs: Record<string, QuantSpec>,
  steps: Record<string, ArrayLike<number>> | undefined,
): Record<string, QuantSpec> {
  if (!steps) return specs;
  return Object.fromEntries(
    Object.entries(specs).map(([l, spec]) => [
      l,
      steps[l] ? { ...spec, steps: Array.from(steps[l]) } : spec,
    ]),
  );
}

/**
 * Learned steps of the unfolded kernels mapped onto the folded ones: per
 * output channel s |a| with a the fold factor (the same levels; per-tensor
 * steps cannot follow a per-channel fold and are an error).
 *
 * @example
 * ```ts
 * import { foldSteps } from "./training_setup.ts";
 * const f = foldSteps({ c: Float32Array.of(0.5, 0.5), d: Float32Array.of(1) }, { c: Float32Array.of(2, -0.5) });
 * if (f.c.join() !== "1,0.25" || f.d[0] !== 1) throw new Error();
 * ```
 */
export function foldSteps(
  steps: Record<string, Float32Array>,
  factors: Record<string, Float32Array>,
): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [layer, st] of Object.entries(steps)) {
    const a = factors[layer];
    if (!a) {
      out[layer] = st;
      continue;
    }
    if (st.length !== a.length) {
      throw new Error(
        `lsq: layer ${layer} has ${st.length} learned steps but ${a.length} BatchNorm channels ` +
          `(a per-tensor step cannot be folded: use perChannel or train the folded network)`,
      );
    }
    out[layer] = Float32Array.from(
      st,
      (x, c) => Math.max(Math.fround(x * Math.abs(a[c])), MIN_SCALE),
    );
  }
  return out;
}

/**
 * sum_l a_l m_l R(W_l) (a_l from the reduction), and each layer's R(W_l).
 *
 * @example
 * ```ts ignore
 * const { total } = regularizationLoss(model, options);
 * ```
 */
export function regularizationLoss(
  model: Model,
  opts: TrainingSetupOptions,
): { total: tf.Scalar; perLayer: Record<string, tf.Scalar> } {
  const reg = regularizer(opts.regularizer ?? "grid");
  const layers = Object.keys(opts.specs);
  const kernels = layers.map((layer) => {
    const w = model.params.get(`${layer}/kernel`);
    if (!w) throw new Error(`qgt setup: no kernel for layer ${layer}`);
    return w;
  });
  const byWeights = (opts.reduction ?? "weights") === "weights";
  const nTotal = kernels.reduce((a, w) => a + w.size, 0);
  const perLayer: Record<string, tf.Scalar> = {};
  let total: tf.Scalar = tf.scalar(0);
  layers.forEach((layer, i) => {
    const r = reg(kernels[i], opts.specs[layer]);
    perLayer[layer] = r;
    const a = byWeights ? kernels[i].size / nTotal : 1 / layers.length;
    total = tf.add(total, tf.mul(r, a * (opts.layerLambda?.[layer] ?? 1)));
  });
  return { total, perLayer };
}

/**
 * Decoupled grid pull, after the optimizer step, on the host arrays: each
 * quantized kernel moves a fraction c = min(1, lr lambda m_l) of the way to its
 * grid point, w <- w - c (w - q(w)), q(w) = s clamp(round(w / s), qmin, qmax)
 * with the layer's quantizer (scale from the current weights). This is a
 * plain gradient step of lr lambda m_l (w - q(w))^2 / 2 taken outside the
 * optimizer, as AdamW decouples weight decay from Adam (Loshchilov & Hutter,
 * "Decoupled Weight Decay Regularization", ICLR 2019): with Adam, a grid term
 * in the loss is divided by each weight's gradient scale, so weights whose
 * cross-entropy gradient is small are pulled at full learning-rate speed
 * whatever lambda is. Here the pull is proportional to lambda for every
 * weight. lambda comes from `vars.lambda`; nothing changes while it is 0.
 *
 * @example
 * ```ts
 * import { decoupledGridPull } from "./training_setup.ts";
 * const w = new Float32Array([0.4, -1, 0.9, 0]);
 * const spec = { bits: 2, symmetric: true, perChannel: false, narrowRange: true, steps: 1 };
 * decoupledGridPull(new Map([["l/kernel", w]]), { l: spec }, { l: [4] }, 0.5, {}, 1);
 * // grid {-1, 0, 1}: halfway to 0, -1, 1, 0
 * if (Math.abs(w[0] - 0.2) > 1e-6 || w[1] !== -1 || Math.abs(w[2] - 0.95) > 1e-6) throw new Error();
 * ```
 */
export function decoupledGridPull(
  params: Map<string, Float32Array>,
  specs: Record<string, QuantSpec>,
  shapes: Record<string, number[]>,
  lr: number,
  layerLambda: Record<string, number>,
  lambda: number,
): void {
  if (!(lambda > 0)) return;
  for (const [layer, spec] of Object.entries(specs)) {
    const w = params.get(`${layer}/kernel`);
    if (!w) throw new Error(`qgt setup: no kernel for layer ${layer}`);
    const c = Math.min(1, lr * lambda * (layerLambda[layer] ?? 1));
    if (c === 0) continue;
    const q = fakeQuantValues(w, shapes[layer], spec);
    for (let i = 0; i < w.length; i++) w[i] -= c * (w[i] - q[i]);
  }
}

/**
 * Builds the step setup (the `createStepSetup` of a `SetupRef`).
 *
 * @example
 * ```ts
 * import { createModel, smallCnn } from "../models/mod.ts";
 * import { createStepSetup } from "./training_setup.ts";
 * const m = createModel(smallCnn(), 1);
 * const s = createStepSetup(m, { specs: { conv1: { bits: 2, symmetric: true, perChannel: true, axis: 3 } }, fakeQuant: true });
 * if (!s.kernelTransform || s.extraLoss) throw new Error();
 * ```
 */
export function createStepSetup(model: Model, opts: TrainingSetupOptions): StepSetup {
  for (const layer of Object.keys(opts.specs)) {
    if (!model.params.has(`${layer}/kernel`)) {
      throw new Error(`qgt setup: no weight layer ${layer}`);
    }
  }
  const setup: StepSetup = {};
  const lsq = opts.lsq ?? {};
  const stepVars = new Map<string, tf.Variable>();
  for (const [layer, values] of Object.entries(lsq)) {
    const spec = opts.specs[layer];
    if (!spec) throw new Error(`qgt setup: lsq steps for ${layer}, which is not quantized`);
    if (values.some((x) => !(x > 0))) throw new Error(`qgt setup: ${layer}: lsq steps must be > 0`);
    stepVars.set(layer, tf.variable(tf.tensor1d(values), true));
  }
  if (stepVars.size) {
    if (!opts.fakeQuant) throw new Error("qgt setup: lsq needs fakeQuant");
    if (opts.freeze) throw new Error("qgt setup: lsq and freeze cannot be combined");
    setup.extraVars = [...stepVars].map(([l, v]) => [lsqStepName(l), v]);
    if (opts.lsqStepLr !== undefined) {
      if (!(opts.lsqStepLr > 0)) throw new Error("qgt setup: lsqStepLr must be > 0");
      setup.extraLrScale = opts.lsqStepLr;
    }
    setup.dispose = () => stepVars.forEach((v) => v.dispose());
  }
  // the grid the regularizer measures against: the current learned steps (held constant)
  const gridSpecs = (): Record<string, QuantSpec> =>
    stepVars.size
      ? withSteps(
        opts.specs,
        Object.fromEntries([...stepVars].map(([l, v]) => [l, v.dataSync() as Float32Array])),
      )
      : opts.specs;
  if (opts.fakeQuant) {
    setup.kernelTransform = (layer, k) => {
      const spec = opts.specs[layer];
      if (!spec) return k;
      const step = stepVars.get(layer);
      return profilePhase(
        "fake-quant",
        () => step ? lsqQuantize(k, step, spec) : fakeQuantOp(k, spec),
      );
    };
  }
  if (opts.activations) {
    const { bits, ranges } = opts.activations;
    setup.activationTransform = (layer, y) => {
      const r = ranges[layer];
      return r ? profilePhase("fake-quant", () => fakeQuantRange(y, r[0], r[1], bits)) : y;
    };
  }
  const shapes = Object.fromEntries(
    Object.keys(opts.specs).map((l) => [l, model.params.get(`${l}/kernel`)!.shape]),
  );
  const pull = opts.regularizer && opts.decoupled;
  if (pull && opts.regularizer !== "grid") {
    throw new Error(`qgt setup: decoupled needs the grid regularizer, got ${opts.regularizer}`);
  }
  if (opts.freeze && !opts.fakeQuant) throw new Error("qgt setup: freeze needs fakeQuant");
  const freezer = opts.freeze ? weightFreezer(opts.specs, shapes, opts.freeze) : undefined;
  if (pull || freezer || stepVars.size) {
    setup.postStep = (params, lr, vars) => {
      // learned steps stay positive (the optimizer could step one below zero)
      const steps: Record<string, Float32Array> = {};
      for (const layer of stepVars.keys()) {
        const st = params.get(lsqStepName(layer))!;
        for (let i = 0; i < st.length; i++) if (!(st[i] >= MIN_SCALE)) st[i] = MIN_SCALE;
        steps[layer] = st;
      }
      if (pull) {
        const specs = withSteps(opts.specs, steps);
        decoupledGridPull(params, specs, shapes, lr, opts.layerLambda ?? {}, vars.lambda ?? 0);
      }
      return freezer?.step(params);
    };
  }
  if (freezer) {
    setup.state = () => freezer.state();
    setup.setState = (a) => freezer.setState(a);
  }
  if (opts.regularizer && !opts.decoupled) {
    setup.extraLoss = {
      reg: ({ vars }) => {
        const lambda = vars.lambda ?? 0;
        if (lambda === 0) return tf.scalar(0);
        return tf.mul(regularizationLoss(model, { ...opts, specs: gridSpecs() }).total, lambda);
      },
    };
  }
  return setup;
}

/**
 * One {@link OscillationTracker} per quantized layer of 2 or more bits,
 * stepped together; returns the fractions of those layers' weights frozen and
 * oscillating. The state is the trackers' arrays in layer order.
 *
 * @example
 * ```ts
 * import { weightFreezer } from "./training_setup.ts";
 * const spec = { bits: 2, symmetric: true, perChannel: false, narrowRange: true, steps: 1 };
 * const f = weightFreezer({ l: spec }, { l: [2] }, { momentum: 0.5, threshold: 0.4 });
 * for (const v of [0.45, 0.55, 0.45]) f.step(new Map([["l/kernel", new Float32Array([v, 1])]]));
 * if (f.step(new Map([["l/kernel", new Float32Array([0.9, 1])]])).frozen !== 0.5) throw new Error();
 * ```
 */
export function weightFreezer(
  specs: Record<string, QuantSpec>,
  shapes: Record<string, number[]>,
  options: FreezeOptions,
): {
  step(params: Map<string, Float32Array>): { frozen: number; oscillating: number };
  state(): Float32Array[];
  setState(arrays: Float32Array[]): void;
} {
  // 1-bit layers have two levels and no threshold to oscillate around in the same sense; not tracked
  const layers = Object.keys(specs).filter((l) => specs[l].bits > 1);
  const trackers = layers.map((l) =>
    new OscillationTracker(shapes[l].reduce((a, b) => a * b, 1), options)
  );
  const total = trackers.reduce((a, t) => a + t.size, 0);
  return {
    step(params) {
      let frozen = 0, oscillated = 0;
      layers.forEach((layer, i) => {
        const w = params.get(`${layer}/kernel`);
        if (!w) throw new Error(`qgt setup: no kernel for layer ${layer}`);
        const s = freezeStep(w, shapes[layer], specs[layer], trackers[i]);
        frozen += s.frozen;
        oscillated += s.oscillated;
      });
      return { frozen: frozen / total, oscillating: oscillated / total };
    },
    state() {
      const parts = trackers.map((t) => t.state());
      return parts.some((p) => p.length === 0) ? [] : parts.flat();
    },
    setState(arrays) {
      const k = TRACKER_ARRAYS.length;
      if (arrays.length !== 0 && arrays.length !== k * trackers.length) {
        throw new Error(
          `qgt setup: freeze state has ${arrays.length} arrays, expected ${k * trackers.length}`,
        );
      }
      trackers.forEach((t, i) => t.setState(arrays.slice(i * k, (i + 1) * k)));
    },
  };
}

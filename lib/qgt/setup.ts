/**
 * The training-step setup for quantized training modes, built from plain
 * options so that data-parallel workers build the same one
 * (`{ module: QGT_SETUP_MODULE, options }`):
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
 * - `activations`: fake-quantizes each weight layer's output on a fixed range
 *   (ReLU6 layers [0, 6]; others as calibrated).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Model } from "../models/model.ts";
import type { StepSetup } from "../train/step.ts";
import type { QuantSpec } from "../quant/spec.ts";
import { fakeQuantOp } from "../quant/quantizer.ts";
import { fakeQuantRange } from "../quant/activation.ts";
import { regularizer, type RegularizerKind } from "./regularizers.ts";

/** Module URL of this file, for `SetupRef`s. */
export const QGT_SETUP_MODULE: string = import.meta.url;

/** How per-layer regularizer values are combined into one loss term. */
export type Reduction = "weights" | "layers";

/** Names of the reductions, for validation. */
export const REDUCTIONS: readonly Reduction[] = ["weights", "layers"];

/** Plain, serialisable options of a quantized training step. */
export interface QgtSetupOptions {
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
  /** Activation fake quantization: bits and [lo, hi] per layer. */
  activations?: { bits: number; ranges: Record<string, [number, number]> };
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
  opts: QgtSetupOptions,
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
 * Builds the step setup (the `createStepSetup` of a `SetupRef`).
 *
 * @example
 * ```ts
 * import { createModel, smallCnn } from "../models/mod.ts";
 * import { createStepSetup } from "./setup.ts";
 * const m = createModel(smallCnn(), 1);
 * const s = createStepSetup(m, { specs: { conv1: { bits: 2, symmetric: true, perChannel: true, axis: 3 } }, fakeQuant: true });
 * if (!s.kernelTransform || s.extraLoss) throw new Error();
 * ```
 */
export function createStepSetup(model: Model, opts: QgtSetupOptions): StepSetup {
  for (const layer of Object.keys(opts.specs)) {
    if (!model.params.has(`${layer}/kernel`)) {
      throw new Error(`qgt setup: no weight layer ${layer}`);
    }
  }
  const setup: StepSetup = {};
  if (opts.fakeQuant) {
    setup.kernelTransform = (layer, k) => {
      const spec = opts.specs[layer];
      return spec ? fakeQuantOp(k, spec) : k;
    };
  }
  if (opts.activations) {
    const { bits, ranges } = opts.activations;
    setup.activationTransform = (layer, y) => {
      const r = ranges[layer];
      return r ? fakeQuantRange(y, r[0], r[1], bits) : y;
    };
  }
  if (opts.regularizer) {
    setup.extraLoss = {
      reg: ({ vars }) => {
        const lambda = vars.lambda ?? 0;
        if (lambda === 0) return tf.scalar(0);
        return tf.mul(regularizationLoss(model, opts).total, lambda);
      },
    };
  }
  return setup;
}

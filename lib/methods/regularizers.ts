/**
 * QGT regularizers: terms added to the loss that pull each weight onto its
 * quantization grid (Ghamari et al., "Quantization-Guided Training for Compact
 * TinyML Models", tinyML 2021). Each is zero exactly on grid points, positive
 * between them, and normalised per layer (a mean over the layer's weights of a
 * distance measured in quantization steps), so one lambda means the same on
 * every layer. The grid (scale, zero point) is taken from the current weights
 * with the layer's quantizer spec and held constant for the gradient.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { levelRange, type QuantSpec } from "../quant/spec.ts";
import { quantParams } from "../quant/quantizer.ts";
import { sumLeading } from "../backend/grad_math.ts";

/**
 * u = w / s (+ z): the weight in units of quantization steps, where levels are
 * integers. s and z come from the current weights but are held constant for
 * the gradient (du/dw = 1/s), so the pull is towards a grid, not a moving one.
 * Binary levels +-s map to the integers 0 and 1: u = (w / s + 1) / 2.
 */
function stepUnits(w: tf.Tensor, spec: QuantSpec): { u: tf.Tensor; lo: number; hi: number } {
  const binary = spec.bits === 1;
  const f = (wi: tf.Tensor, save: tf.GradSaveFunc) => {
    const { scale, zeroPoint } = quantParams(wi, spec);
    let u = tf.div(wi, scale);
    if (zeroPoint) u = tf.add(u, zeroPoint);
    if (binary) u = tf.div(tf.add(u, 1), 2);
    const ds = binary ? tf.mul(scale, 2) : scale;
    save([ds]);
    tf.dispose([scale, ...(zeroPoint ? [zeroPoint] : [])]);
    return { value: u, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.div(dy, saved[0])] };
  };
  const u = tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0])(w);
  if (binary) return { u, lo: 0, hi: 1 };
  const { qmin, qmax } = levelRange(spec);
  return { u, lo: qmin, hi: qmax };
}

/**
 * Squared distance to the nearest grid level, in steps:
 * R(w) = mean_i (u_i - clamp(round(u_i), qmin, qmax))^2, u = w / s (+ z).
 * Gradient: dR/dw_i = 2 (u_i - Q(u_i)) / (s N) (Q piecewise constant, s held).
 * Zero on the grid, at most 1/4 between levels inside the range, growing
 * quadratically outside it (pulls clipped weights back).
 * As in QGT (Ghamari et al. 2021) and the oscillation-dampening term of
 * Nagel et al., "Overcoming Oscillations in Quantization-Aware Training", ICML 2022.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { gridRegularizer } from "./regularizers.ts";
 * const spec = { bits: 2, symmetric: true, perChannel: false, narrowRange: true, steps: 1 };
 * if (gridRegularizer(tf.tensor1d([1, 0, -1]), spec).dataSync()[0] !== 0) throw new Error();
 * if (gridRegularizer(tf.tensor1d([0.5, 0]), spec).dataSync()[0] !== 0.125) throw new Error();
 * ```
 */
export function gridRegularizer(w: tf.Tensor, spec: QuantSpec): tf.Scalar {
  return tf.tidy(() => {
    const { u, lo, hi } = stepUnits(w, spec);
    const target = tf.clipByValue(tf.round(u), lo, hi); // constant for the gradient (round has zero gradient)
    return tf.mean(tf.square(tf.sub(u, target)));
  });
}

/**
 * Sinusoidal regularizer, smooth everywhere:
 * R(w) = mean_i [sin^2(pi u_i) / pi^2 + (u_i - clamp(u_i, qmin, qmax))^2],
 * u = w / s (+ z). Gradient: dR/dw_i = [sin(2 pi u_i) / pi + 2 (u_i - clamp(u_i))] / (s N).
 * sin^2(pi u) / pi^2 equals (u - round(u))^2 near each level, so lambda has
 * the same meaning as for {@link gridRegularizer}; the second term keeps weights
 * inside the clipping range. After Elthakeb et al., "WaveQ: Gradient-Based
 * Deep Quantization of Neural Networks through Sinusoidal Adaptive
 * Regularization", 2020, and Naumov et al., "On Periodic Functions as
 * Regularizers for Quantization of Neural Networks", 2018.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { sinRegularizer } from "./regularizers.ts";
 * const spec = { bits: 4, symmetric: true, perChannel: false, steps: 0.5 };
 * if (sinRegularizer(tf.tensor1d([0.5, -1, 0]), spec).dataSync()[0] > 1e-12) throw new Error();
 * ```
 */
export function sinRegularizer(w: tf.Tensor, spec: QuantSpec): tf.Scalar {
  return tf.tidy(() => {
    const { u, lo, hi } = stepUnits(w, spec);
    const periodic = tf.div(tf.square(tf.sin(tf.mul(u, Math.PI))), Math.PI * Math.PI);
    const outside = tf.square(tf.sub(u, tf.clipByValue(u, lo, hi)));
    return tf.mean(tf.add(periodic, outside));
  });
}

/**
 * Bin regularization (Han et al., "Improving Low-Precision Network
 * Quantization via Bin Regularization", ICCV 2021): the weights assigned to
 * each level l form a bin; each bin's mean is pulled to l and its variance
 * shrunk. R(w) = (1/B) sum_{bins l, n_l > 0} [(mean_l(u) - l)^2 + var_l(u)],
 * u = w / s (+ z), B the number of non-empty bins. Gradient:
 * dR/du_i = (2/B) [(mean_l - l) + (u_i - mean_l)] / n_l for u_i in bin l,
 * i.e. (2/B) (u_i - l) / n_l. Zero exactly when every weight sits on its level.
 * Bins are counted with a one-hot matrix (N x 2^b), so bits are limited to 1-6.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { binRegularizer } from "./regularizers.ts";
 * const spec = { bits: 2, symmetric: true, perChannel: false, narrowRange: true, steps: 1 };
 * if (binRegularizer(tf.tensor1d([1, 1, 0, -1]), spec).dataSync()[0] !== 0) throw new Error();
 * ```
 */
export function binRegularizer(w: tf.Tensor, spec: QuantSpec): tf.Scalar {
  if (spec.bits > 6) throw new Error(`bin regularizer: supports 1-6 bits, got ${spec.bits}`);
  return tf.tidy(() => {
    const { u, lo, hi } = stepUnits(w, spec);
    const flat = tf.reshape(u, [-1]);
    const lvl = tf.clipByValue(tf.round(flat), lo, hi);
    // sum over bin of (u - l)^2 / n_l equals (mean_l - l)^2 + var_l (population variance)
    const nBins = hi - lo + 1;
    const ids = tf.cast(tf.sub(lvl, lo), "int32") as tf.Tensor1D;
    const onehot = tf.cast(tf.oneHot(ids, nBins), "float32"); // [N, bins]
    const counts = sumLeading(onehot);
    const perBin = sumLeading(tf.mul(onehot, tf.expandDims(tf.square(tf.sub(flat, lvl)), 1)));
    const nonEmpty = tf.sum(tf.step(counts));
    return tf.div(tf.sum(tf.div(perBin, tf.maximum(counts, 1))), tf.maximum(nonEmpty, 1));
  });
}

/** A regularizer: R(w) for a layer's kernel and spec (a scalar), and what it is in one line. */
export interface RegularizerDef {
  fn: (w: tf.Tensor, spec: QuantSpec) => tf.Scalar;
  doc: string;
}

/** The regularizers qgt provides, by the name experiments give in `qgt.regularizer`. */
export const REGULARIZERS = {
  grid: { fn: gridRegularizer, doc: "squared distance to the nearest level (QGT)" },
  sin: { fn: sinRegularizer, doc: "smooth sinusoidal distance to the levels (WaveQ)" },
  bin: { fn: binRegularizer, doc: "bin regularization: each level's bin mean and variance" },
} as const satisfies Record<string, RegularizerDef>;

/** A regularizer's name. */
export type RegularizerKind = keyof typeof REGULARIZERS;

/** The regularizers' names, for validation. */
export const REGULARIZER_NAMES = Object.keys(REGULARIZERS) as RegularizerKind[];

/**
 * The regularizer of a kind.
 *
 * @example
 * ```ts
 * import { regularizer, gridRegularizer } from "./regularizers.ts";
 * if (regularizer("grid") !== gridRegularizer) throw new Error();
 * ```
 */
export function regularizer(kind: RegularizerKind): (w: tf.Tensor, spec: QuantSpec) => tf.Scalar {
  if (!Object.hasOwn(REGULARIZERS, kind)) {
    throw new Error(
      `regularizer: expected one of ${REGULARIZER_NAMES.join(", ")}, got ${JSON.stringify(kind)}`,
    );
  }
  return REGULARIZERS[kind].fn;
}

/**
 * Activation fake quantization on a fixed range [lo, hi] (8 bits by default),
 * asymmetric with levels 0..2^b-1: s = (hi - lo) / (2^b - 1),
 * z = round(-lo / s), y = s (clamp(round(x / s) + z, 0, 2^b - 1) - z).
 * STE gradient: dy on [lo, hi], 0 outside (Jacob et al. 2018).
 * ReLU6 layers use the fixed range [0, 6]; other layers a calibrated one.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { rangeParams } from "./range.ts";

/**
 * Fake-quantizes an activation tensor on the range [lo, hi].
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fakeQuantRange } from "./activation.ts";
 * const y = fakeQuantRange(tf.tensor1d([0.5, 7]), 0, 3, 2); // levels 0, 1, 2, 3
 * if (y.dataSync().join() !== "1,3") throw new Error();
 * ```
 */
export function fakeQuantRange(x: tf.Tensor, lo: number, hi: number, bits = 8): tf.Tensor {
  const { scale, zeroPoint, qmax } = rangeParams(lo, hi, bits);
  const min = -zeroPoint * scale, max = (qmax - zeroPoint) * scale;
  const f = (xi: tf.Tensor, save: tf.GradSaveFunc) => {
    const q = tf.clipByValue(tf.add(tf.floor(tf.add(tf.div(xi, scale), 0.5)), zeroPoint), 0, qmax);
    save([xi]);
    return {
      value: tf.mul(tf.sub(q, zeroPoint), scale),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const inside = tf.sub(
          1,
          tf.step(tf.abs(tf.sub(saved[0], tf.clipByValue(saved[0], min, max)))),
        );
        return [tf.mul(dy, inside)];
      },
    };
  };
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0])(x);
}

/**
 * The activation quantization of the simulation: each layer's output
 * fake-quantized to `bits` over its range (none for float activations).
 *
 * @example
 * ```ts
 * import { activationTransform } from "./activation.ts";
 * if (activationTransform("float", {}) !== undefined) throw new Error();
 * ```
 */
export function activationTransform(
  bits: number | "float",
  ranges: Record<string, [number, number]>,
): ((layer: string, y: tf.Tensor) => tf.Tensor) | undefined {
  if (bits === "float") return undefined;
  return (layer: string, y: tf.Tensor) => {
    const r = ranges[layer];
    return r ? fakeQuantRange(y, r[0], r[1], bits) : y;
  };
}

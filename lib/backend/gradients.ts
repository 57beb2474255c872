/**
 * Faster gradients for two ops, used only while the `wasm` backend is active
 * (any other backend gets tfjs's stock gradient, so `cpu` stays the reference):
 *
 * - `FusedBatchNorm`: the stock gradient tiles the per-channel scale over the
 *   whole activation and reduces with the (slow) wasm Sum; here
 *   dx = dy * g * rstd, d(offset) = sum(dy), d(scale) = rstd * sum(dy * (x - mean)),
 *   d(mean) = -g * rstd * sum(dy), d(var) = -0.5 * g * rstd^3 * sum(dy * (x - mean)),
 *   with the sums done by average pooling.
 * - `ClipByValue`: dy * [min <= x <= max], built from float ops (the stock one
 *   uses bool kernels and Select, slow on wasm).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { sumLeading } from "./grad_math.ts";

type GradFunc = tf.GradConfig["gradFunc"];

let registered = false;

/**
 * Registers the wasm-only gradient overrides. Idempotent.
 *
 * @example
 * ```ts ignore
 * import { registerWasmGradients } from "./gradients.ts";
 * registerWasmGradients();
 * ```
 */
export function registerWasmGradients(): void {
  if (registered) return;
  const stockBn = tf.getGradient("FusedBatchNorm");
  const stockClip = tf.getGradient("ClipByValue");
  if (!stockBn || !stockClip) throw new Error("qgt: stock gradients not found");

  const bnGrad: GradFunc = (dy, saved, attrs) => {
    const [x, mean, variance, scale] = saved;
    if (tf.getBackend() !== "wasm" || mean.rank !== 1 || x.rank !== 4) {
      return stockBn.gradFunc(dy, saved, attrs);
    }
    const eps = (attrs as { varianceEpsilon: number }).varianceEpsilon;
    const d = dy as tf.Tensor;
    const g = scale == null ? tf.scalar(1) : scale;
    const rstd = tf.rsqrt(tf.add(variance, eps));
    const k = tf.mul(rstd, g);
    const sumDy = sumLeading(d);
    const sumDyXc = tf.tidy(() => sumLeading(tf.mul(d, tf.sub(x, mean))));
    return {
      x: () => tf.mul(d, k),
      mean: () => tf.reshape(tf.mul(tf.neg(k), sumDy), mean.shape),
      variance: () =>
        tf.reshape(tf.mul(tf.mul(tf.mul(tf.pow(rstd, 3), g), -0.5), sumDyXc), mean.shape),
      scale: () => tf.reshape(tf.mul(rstd, sumDyXc), mean.shape),
      offset: () => tf.reshape(sumDy, mean.shape),
    };
  };
  tf.registerGradient({ ...stockBn, gradFunc: bnGrad });

  const clipGrad: GradFunc = (dy, saved, attrs) => {
    if (tf.getBackend() !== "wasm") return stockClip.gradFunc(dy, saved, attrs);
    const [x] = saved;
    const { clipValueMin, clipValueMax } = attrs as { clipValueMin: number; clipValueMax: number };
    return {
      x: () =>
        tf.mul(
          dy as tf.Tensor,
          tf.sub(1, tf.step(tf.abs(tf.sub(x, tf.clipByValue(x, clipValueMin, clipValueMax))))),
        ),
    };
  };
  tf.registerGradient({ ...stockClip, gradFunc: clipGrad });
  registered = true;
}

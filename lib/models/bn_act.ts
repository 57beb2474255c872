/**
 * Training-mode BatchNorm followed by an activation, as one op with a
 * hand-written gradient. tfjs would otherwise differentiate moments,
 * batchNorm and clip separately (about 40 small kernels per layer; on the wasm
 * backend per-kernel overhead dominates); this needs about 20.
 *
 * Forward, over the N*H*W positions (M of them) of each channel:
 *   mu = mean(x), var = mean((x - mu)^2), xhat = (x - mu) / sqrt(var + eps),
 *   y = gamma xhat + beta, z = act(y).
 * Backward (Ioffe & Szegedy 2015, with the batch statistics differentiated):
 *   dy = dz * act'(y)  (relu6: 1 on 0 < y <= 6; relu: 1 on y > 0),
 *   dbeta = sum(dy), dgamma = sum(dy xhat),
 *   dx = gamma / sqrt(var + eps) * (dy - dbeta / M - xhat dgamma / M).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Activation } from "./spec.ts";
import { sumLeading } from "../backend/grad_math.ts";
import { type BnActKernels, bnActKernels } from "../backend/bn_act_kernel.ts";
import { nativeBnAct } from "../backend/native_kernels.ts";

/**
 * The elementwise passes with tfjs ops: the reference the wasm kernel
 * (`bnActKernels`) gives the same bits as, and the path of other backends.
 */
const tensorPasses: BnActKernels = {
  center(x, mean) {
    const xc = tf.sub(x, mean);
    return [xc, tf.square(xc)];
  },
  normAct(xc, rstd, g, b, act) {
    const xhat = tf.mul(xc, rstd);
    const y = tf.add(tf.mul(xhat, g), b);
    const z = act === "relu6" ? tf.clipByValue(y, 0, 6) : act === "relu" ? tf.relu(y) : y;
    return [xhat, y, z];
  },
  actGrad(dz, y, xh, act) {
    let dy = dz;
    if (act === "relu6") dy = tf.mul(dz, tf.sub(tf.step(y), tf.step(tf.sub(y, 6))));
    else if (act === "relu") dy = tf.mul(dz, tf.step(y));
    return [dy, tf.mul(dy, xh)];
  },
  inputGrad(dy, xh, dbm, dgm, k) {
    return tf.mul(tf.sub(tf.sub(dy, dbm), tf.mul(xh, dgm)), k);
  },
};

/**
 * Fused training-mode BatchNorm + activation on NHWC input. `onStats` receives
 * the batch mean and (biased) variance; they are kept, the callee disposes them.
 * On the wasm backend the elementwise passes run as qgt's own kernel
 * (`lib/backend/bn_act_kernel.ts`, the same bits); `reference` keeps the
 * tensor ops, the path the kernel is tested against.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { batchNormActTrain } from "./bn_act.ts";
 * const x = tf.tensor4d([1, 3], [2, 1, 1, 1]);
 * const z = batchNormActTrain(x, tf.ones([1]), tf.zeros([1]), "none", 0);
 * if (z.dataSync().join() !== "-1,1") throw new Error();
 * ```
 */
export function batchNormActTrain(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  act: Activation,
  eps: number,
  onStats?: (mean: tf.Tensor1D, variance: tf.Tensor1D) => void,
  reference = false,
): tf.Tensor {
  const ch = x.shape[x.shape.length - 1];
  const plain = x.dtype === "float32" && gamma.size === ch && beta.size === ch;
  const native = reference || !plain ? null : nativeBnAct();
  if (native) return fusedNative(native, x, gamma, beta, act, eps, onStats);
  const k = (reference ? null : bnActKernels()) ?? tensorPasses;
  const m = x.size / x.shape[x.shape.length - 1];
  const fn = (xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    const mean = tf.div(sumLeading(xi), m);
    const [xc, sq] = k.center(xi, mean);
    const variance = tf.div(sumLeading(sq), m);
    onStats?.(tf.keep(mean) as tf.Tensor1D, tf.keep(variance) as tf.Tensor1D);
    const rstd = tf.rsqrt(tf.add(variance, eps));
    const [xhat, y, z] = k.normAct(xc, rstd, g, b, act);
    save([xhat, y, rstd, g]);
    return {
      value: z,
      gradFunc: (dz: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, yv, rs, gm] = saved;
        const [dy, p] = k.actGrad(dz, yv, xh, act);
        const dbeta = sumLeading(dy);
        const dgamma = sumLeading(p);
        const dx = k.inputGrad(dy, xh, tf.div(dbeta, m), tf.div(dgamma, m), tf.mul(gm, rs));
        return [dx, dgamma, dbeta];
      },
    };
  };
  const f = tf.customGrad(fn as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x, gamma, beta);
}

/**
 * The native backend's path: forward and backward are one call each (`native/bn_act.c`, the same
 * formulas with double-precision sums), so a layer costs two kernels instead of about twenty.
 */
function fusedNative(
  k: NonNullable<ReturnType<typeof nativeBnAct>>,
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  act: Activation,
  eps: number,
  onStats?: (mean: tf.Tensor1D, variance: tf.Tensor1D) => void,
): tf.Tensor {
  const fn = (xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    const [z, xhat, mean, variance, rstd] = k.forward(xi, g, b, act, eps);
    if (onStats) onStats(tf.keep(mean) as tf.Tensor1D, tf.keep(variance) as tf.Tensor1D);
    save([xhat, rstd, g, b]);
    return {
      value: z,
      gradFunc: (dz: tf.Tensor, saved: tf.Tensor[]) => {
        const [xh, rs, gm, bt] = saved;
        return k.backward(dz, xh, gm, bt, rs, act);
      },
    };
  };
  const f = tf.customGrad(fn as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x, gamma, beta);
}

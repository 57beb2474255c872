/**
 * Uniform quantizers: scale selection, fake quantization with a
 * straight-through estimator (STE), integer codes, and LSQ (learned step size).
 *
 * Forward (symmetric, b > 1): q = clamp(round(w / s), qmin, qmax), w_q = s q.
 * Asymmetric: q = clamp(round(w / s) + z, 0, 2^b - 1), w_q = s (q - z).
 * Binary (b = 1): q = sign(w) in {-1, +1} (sign(0) = +1), w_q = s q.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { levelRange, type QuantizedTensor, type QuantSpec, validateQuantSpec } from "./spec.ts";
export type { QuantizedTensor } from "./spec.ts";
import { fusedFakeQuant } from "../backend/fake_quant.ts";

/** Smallest scale used, so that an all-zero channel does not divide by zero. */
export const MIN_SCALE = 1e-12;

/**
 * Clipping ratios (of the max-abs range) searched by the "mse" scale method:
 * dense where low-bit optima lie (2-bit weights: about 0.3-0.6), 12 in all,
 * since training recomputes the search at every step.
 */
export const MSE_RATIOS: readonly number[] = [
  0.15,
  0.2,
  0.25,
  0.3,
  0.35,
  0.4,
  0.45,
  0.5,
  0.6,
  0.7,
  0.85,
  1,
];

/** Axes reduced for per-tensor or per-channel parameters. */
function reduceAxes(rank: number, spec: QuantSpec): number[] {
  const axis = spec.axis ?? rank - 1;
  return Array.from({ length: rank }, (_, i) => i).filter((i) => !spec.perChannel || i !== axis);
}

/** Round half away from zero (as TFLite and C's roundf); tf.round rounds half to even. */
function roundHalfAway(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.sign(x), tf.floor(tf.add(tf.abs(x), 0.5)));
}

/** Integer levels of x for given scale/zero point (in-graph). */
function levels(x: tf.Tensor, s: tf.Tensor, z: tf.Tensor | null, spec: QuantSpec): tf.Tensor {
  const { qmin, qmax } = levelRange(spec);
  if (spec.bits === 1) return tf.sub(tf.mul(tf.sub(1, tf.step(tf.neg(x))), 2), 1); // x >= 0 ? 1 : -1
  let v = roundHalfAway(tf.div(x, s));
  if (z) v = tf.add(v, z);
  return tf.clipByValue(v, qmin, qmax);
}

/**
 * Scale and zero point of `x` under `spec`, shaped to broadcast against `x`
 * (keepDims). Computed with tensor ops; no gradient flows through them.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { quantParams } from "./quantizer.ts";
 * const { scale } = quantParams(tf.tensor1d([-2, 1]), { bits: 8, symmetric: true, perChannel: false });
 * if (Math.abs(scale.dataSync()[0] - 2 / 127) > 1e-9) throw new Error();
 * ```
 */
export function quantParams(
  x: tf.Tensor,
  spec: QuantSpec,
): { scale: tf.Tensor; zeroPoint: tf.Tensor | null } {
  type P = { scale: tf.Tensor; zeroPoint: tf.Tensor | null };
  return tf.tidy(
    (() => {
      const axes = reduceAxes(x.rank, spec);
      const keepShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
      const { qmax } = levelRange(spec);
      if (spec.steps !== undefined) {
        const vals = typeof spec.steps === "number" ? [spec.steps] : [...spec.steps];
        const n = keepShape.reduce((a, b) => a * b, 1);
        if (vals.length !== n && vals.length !== 1) {
          throw new Error(`quant spec: ${vals.length} explicit steps for ${n} channels`);
        }
        const s = tf.reshape(
          tf.tensor1d(vals.length === 1 ? Array(n).fill(vals[0]) : vals),
          keepShape,
        );
        const zp = spec.zeroPoint ? [...spec.zeroPoint] : [0];
        const z = spec.symmetric
          ? null
          : tf.reshape(tf.tensor1d(zp.length === 1 ? Array(n).fill(zp[0]) : zp), keepShape);
        return { scale: s, zeroPoint: z };
      }
      if (spec.bits === 1) {
        return { scale: tf.maximum(tf.mean(tf.abs(x), axes, true), MIN_SCALE), zeroPoint: null };
      }
      if (spec.scale === "lsq") {
        if (!spec.symmetric) throw new Error('quant spec: scale "lsq" needs a symmetric quantizer');
        // LSQ's initial step (Esser et al. 2020): 2 mean|w| / sqrt(qmax)
        const s = tf.div(tf.mul(tf.mean(tf.abs(x), axes, true), 2), Math.sqrt(qmax));
        return { scale: tf.maximum(s, MIN_SCALE), zeroPoint: null };
      }
      const mse = spec.scale === "mse";
      if (spec.symmetric) {
        const m = tf.max(tf.abs(x), axes, true);
        let s = tf.maximum(tf.div(m, qmax), MIN_SCALE);
        if (mse) s = tf.maximum(mseRatio(x, s, null, spec, axes), MIN_SCALE);
        return { scale: s, zeroPoint: null };
      }
      const lo = tf.minimum(tf.min(x, axes, true), 0), hi = tf.maximum(tf.max(x, axes, true), 0);
      const zpOf = (s: tf.Tensor, l: tf.Tensor) =>
        tf.clipByValue(tf.round(tf.div(tf.neg(l), s)), 0, qmax);
      let s = tf.maximum(tf.div(tf.sub(hi, lo), qmax), MIN_SCALE);
      let z = zpOf(s, lo);
      if (mse) {
        s = tf.maximum(mseRatio(x, s, lo, spec, axes), MIN_SCALE);
        const ratio = tf.div(s, tf.maximum(tf.div(tf.sub(hi, lo), qmax), MIN_SCALE));
        z = zpOf(s, tf.mul(lo, ratio));
      }
      return { scale: s, zeroPoint: z };
    }) as unknown as () => tf.TensorContainer,
  ) as unknown as P;
}

/** Scale s * r for the ratio r in MSE_RATIOS minimising sum (x - Q(x))^2 per channel. */
function mseRatio(
  x: tf.Tensor,
  s: tf.Tensor,
  lo: tf.Tensor | null,
  spec: QuantSpec,
  axes: number[],
): tf.Tensor {
  const k = MSE_RATIOS.length;
  const r = tf.reshape(tf.tensor1d([...MSE_RATIOS]), [k, ...s.shape.map(() => 1)]);
  const sk = tf.mul(tf.expandDims(s, 0), r); // [K, ...keep]
  const xe = tf.expandDims(x, 0);
  const zk = lo
    ? tf.clipByValue(
      tf.round(tf.div(tf.neg(tf.mul(tf.expandDims(lo, 0), r)), sk)),
      0,
      levelRange(spec).qmax,
    )
    : null;
  const q = levels(xe, sk, zk, spec);
  const deq = tf.mul(zk ? tf.sub(q, zk) : q, sk);
  const err = tf.sum(tf.square(tf.sub(xe, deq)), axes.map((a) => a + 1), true); // [K, ...keep]
  const best = tf.argMin(err, 0); // [...keep]
  return tf.mul(s, tf.reshape(tf.gather(tf.tensor1d([...MSE_RATIOS]), best), s.shape));
}

const MSE_RATIOS_F32 = Float32Array.from(MSE_RATIOS);

/**
 * The `[rows, channels]` matrix the fused kernel (`lib/backend/fake_quant.ts`)
 * sees `x` as, or null where it does not apply: it handles symmetric grids of
 * 2-8 bits with max-abs or MSE scales, per tensor or per channel along an
 * axis with only size-1 axes after it (conv, depthwise and dense kernels).
 *
 * @example
 * ```ts
 * import { fusedLayout } from "./quantizer.ts";
 * const spec = { bits: 2, symmetric: true, perChannel: true, scale: "mse" as const };
 * if (fusedLayout([3, 3, 8, 16], spec)?.rows !== 72) throw new Error();
 * if (fusedLayout([3, 3, 8, 1], { ...spec, axis: 2 })?.ch !== 8) throw new Error();
 * if (fusedLayout([4, 5], { ...spec, axis: 0 }) !== null) throw new Error();
 * ```
 */
export function fusedLayout(shape: number[], spec: QuantSpec): { rows: number; ch: number } | null {
  if (!spec.symmetric || spec.bits < 2) return null;
  if (spec.steps !== undefined || spec.scale === "lsq") return null;
  const n = shape.reduce((a, b) => a * b, 1);
  if (n === 0) return null;
  if (!spec.perChannel) return { rows: n, ch: 1 };
  const axis = spec.axis ?? shape.length - 1;
  if (shape.slice(axis + 1).some((d) => d !== 1)) return null;
  return { rows: n / shape[axis], ch: shape[axis] };
}

/**
 * Fake quantization of host values through the fused kernel: the same bits
 * as the tensor implementation on the wasm backend. `null` where
 * {@link fusedLayout} does not apply.
 */
function fusedValues(x: Float32Array, shape: number[], spec: QuantSpec) {
  const lay = fusedLayout(shape, spec);
  if (!lay) return null;
  const { qmin, qmax } = levelRange(spec);
  return fusedFakeQuant(x, lay.rows, lay.ch, {
    qmin,
    qmax,
    minScale: MIN_SCALE,
    ratios: spec.scale === "mse" ? MSE_RATIOS_F32 : undefined,
  });
}

/**
 * The fake-quantized values of host weights (no gradient), as
 * {@link fakeQuantOp} computes them on the active backend: through the fused
 * kernel on the wasm backend where it applies, else with tensor ops.
 *
 * @example
 * ```ts
 * import { fakeQuantValues } from "./quantizer.ts";
 * const spec = { bits: 2, symmetric: true, perChannel: false, narrowRange: true };
 * if (fakeQuantValues(new Float32Array([0.4, -1]), [2], spec).join() !== "0,-1") throw new Error();
 * ```
 */
export function fakeQuantValues(x: Float32Array, shape: number[], spec: QuantSpec): Float32Array {
  const fused = tf.getBackend() === "wasm" ? fusedValues(x, shape, spec) : null;
  if (fused) return fused.y;
  return tf.tidy(() => fakeQuantOp(tf.tensor(x, shape), spec).dataSync() as Float32Array);
}

/** w_q from levels. */
function dequant(q: tf.Tensor, s: tf.Tensor, z: tf.Tensor | null): tf.Tensor {
  return tf.mul(z ? tf.sub(q, z) : q, s);
}

/**
 * Fake quantization for training graphs (no input checks): forward returns
 * the dequantized tensor; the gradient is the straight-through estimator
 * dL/dx = dL/dy on the clipping range [s (qmin - z), s (qmax - z)], 0 outside
 * (Bengio et al. 2013; Jacob et al. 2018). Binary quantization (s = mean|x|)
 * passes the gradient everywhere: clipping at |x| <= s would block most
 * weights. On the wasm backend, symmetric grids of 2-8 bits (see
 * {@link fusedLayout}) run as one fused kernel with the same bits as the
 * tensor ops ({@link fakeQuantOpReference}).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fakeQuantOp } from "./quantizer.ts";
 * const y = fakeQuantOp(tf.tensor1d([0.4, -1]), { bits: 2, symmetric: true, perChannel: false, narrowRange: true });
 * if (y.dataSync().join() !== "0,-1") throw new Error();
 * ```
 */
export function fakeQuantOp(x: tf.Tensor, spec: QuantSpec): tf.Tensor {
  return fakeQuantWith(x, spec, true);
}

/**
 * {@link fakeQuantOp} with tensor ops only, on any backend: the reference the
 * fused kernel is tested against.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fakeQuantOpReference } from "./quantizer.ts";
 * const y = fakeQuantOpReference(tf.tensor1d([0.4, -1]), { bits: 2, symmetric: true, perChannel: false, narrowRange: true });
 * if (y.dataSync().join() !== "0,-1") throw new Error();
 * ```
 */
export function fakeQuantOpReference(x: tf.Tensor, spec: QuantSpec): tf.Tensor {
  return fakeQuantWith(x, spec, false);
}

function fakeQuantWith(x: tf.Tensor, spec: QuantSpec, allowFused: boolean): tf.Tensor {
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.mul(dy, saved[0])];
  const f = (xi: tf.Tensor, save: tf.GradSaveFunc) => {
    // the fused kernel gives the wasm backend's bits; other backends keep the tensor ops
    const fused = allowFused && tf.getBackend() === "wasm" && xi.dtype === "float32"
      ? fusedValues(xi.dataSync() as Float32Array, xi.shape, spec)
      : null;
    if (fused) {
      save([tf.tensor(fused.mask, xi.shape)]);
      return { value: tf.tensor(fused.y, xi.shape), gradFunc };
    }
    const { scale, zeroPoint } = quantParams(xi, spec);
    const q = levels(xi, scale, zeroPoint, spec);
    const y = dequant(q, scale, zeroPoint);
    let mask: tf.Tensor;
    if (spec.bits === 1) mask = tf.onesLike(xi);
    else {
      const { qmin, qmax } = levelRange(spec);
      const lo = dequant(tf.fill(scale.shape, qmin), scale, zeroPoint);
      const hi = dequant(tf.fill(scale.shape, qmax), scale, zeroPoint);
      // 1 where lo <= x <= hi, from float ops (bool kernels are slow on wasm)
      mask = tf.sub(1, tf.step(tf.abs(tf.sub(xi, tf.minimum(tf.maximum(xi, lo), hi)))));
    }
    save([mask]);
    tf.dispose([scale, ...(zeroPoint ? [zeroPoint] : [])]);
    return { value: y, gradFunc };
  };
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0])(x);
}

/**
 * Fake quantization with checks: validates the spec against `x` and rejects
 * non-finite values. Forward formula and STE gradient as {@link fakeQuantOp}.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { fakeQuantize } from "./quantizer.ts";
 * const y = fakeQuantize(tf.tensor1d([0.3, 1]), { bits: 2, symmetric: true, perChannel: false });
 * if (y.dataSync().join() !== "0,1") throw new Error();
 * ```
 */
export function fakeQuantize(x: tf.Tensor, spec: QuantSpec): tf.Tensor {
  validateQuantSpec(spec, x.rank);
  assertFinite(x);
  return fakeQuantOp(x, spec);
}

function assertFinite(x: tf.Tensor): void {
  const d = x.dataSync();
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i])) {
      throw new Error(`quantize: tensor has a non-finite value (${d[i]}) at flat index ${i}`);
    }
  }
}

/**
 * Quantizes to integer codes with their per-channel (or per-tensor) scales and
 * zero points. `dequantize(quantizeToInt(x, s))` equals `fakeQuantize(x, s)`.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { quantizeToInt } from "./quantizer.ts";
 * const q = quantizeToInt(tf.tensor1d([-1, 0.5, 1]), { bits: 2, symmetric: true, perChannel: false, narrowRange: true });
 * if (q.codes.join() !== "-1,1,1" || q.scales[0] !== 1) throw new Error(); // 0.5 rounds half away from zero
 * ```
 */
export function quantizeToInt(x: tf.Tensor, spec: QuantSpec): QuantizedTensor {
  validateQuantSpec(spec, x.rank);
  assertFinite(x);
  return tf.tidy(() => {
    const { scale, zeroPoint } = quantParams(x, spec);
    const q = levels(x, scale, zeroPoint, spec);
    return {
      shape: [...x.shape],
      bits: spec.bits,
      symmetric: spec.symmetric,
      axis: spec.perChannel ? (spec.axis ?? x.rank - 1) : -1,
      codes: Int32Array.from(q.dataSync()),
      scales: Float32Array.from(scale.dataSync()),
      zeroPoints: zeroPoint ? Int32Array.from(zeroPoint.dataSync()) : new Int32Array(scale.size),
    };
  });
}

/**
 * Channel index of each flat element for a tensor of `shape` quantized along `axis`.
 *
 * @example
 * ```ts
 * import { channelIndex } from "./quantizer.ts";
 * if (channelIndex([2, 3], 1, 4) !== 1) throw new Error();
 * ```
 */
export function channelIndex(shape: number[], axis: number, flat: number): number {
  if (axis < 0) return 0;
  let inner = 1;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return Math.floor(flat / inner) % shape[axis];
}

/**
 * Dequantizes codes: w = s_c (q - z_c), as Float32Array in the input layout.
 *
 * @example
 * ```ts
 * import { dequantize } from "./quantizer.ts";
 * const w = dequantize({ shape: [2], bits: 8, symmetric: true, axis: -1, codes: Int32Array.from([2, -1]), scales: Float32Array.from([0.5]), zeroPoints: new Int32Array(1) });
 * if (w.join() !== "1,-0.5") throw new Error();
 * ```
 */
export function dequantize(q: QuantizedTensor): Float32Array {
  const out = new Float32Array(q.codes.length);
  for (let i = 0; i < out.length; i++) {
    const c = channelIndex(q.shape, q.axis, i);
    out[i] = Math.fround(q.scales[c] * (q.codes[i] - q.zeroPoints[c]));
  }
  return out;
}

/**
 * LSQ: quantization with a learned step size s (Esser et al., "Learned Step
 * Size Quantization", ICLR 2020). Forward: w_q = s clamp(round(w / s), qmin, qmax)
 * (symmetric). Gradients: dL/dw = dL/dw_q on qmin <= w/s <= qmax, else 0;
 * dL/ds = g sum dL/dw_q (round(w/s) - w/s) inside, qmin or qmax outside, with
 * g = 1 / sqrt(N qmax) and N the number of weights per scale.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { lsqQuantize } from "./quantizer.ts";
 * const y = lsqQuantize(tf.tensor1d([0.7, -3]), tf.scalar(1), { bits: 2, symmetric: true, perChannel: false, narrowRange: true });
 * if (y.dataSync().join() !== "1,-1") throw new Error();
 * ```
 */
export function lsqQuantize(w: tf.Tensor, s: tf.Tensor, spec: QuantSpec): tf.Tensor {
  if (!spec.symmetric || spec.bits < 2) {
    throw new Error("LSQ: symmetric quantizers with 2-8 bits only");
  }
  const { qmin, qmax } = levelRange(spec);
  const axes = reduceAxes(w.rank, spec);
  const keepShape = w.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const perScale = w.size / keepShape.reduce((a, b) => a * b, 1);
  const g = 1 / Math.sqrt(perScale * qmax);
  const f = (wi: tf.Tensor, si: tf.Tensor, save: tf.GradSaveFunc) => {
    const sr = tf.reshape(si, keepShape);
    const v = tf.div(wi, sr);
    const vc = tf.clipByValue(v, qmin, qmax);
    const q = roundHalfAway(vc);
    save([v, q, vc]);
    return {
      value: tf.mul(q, sr),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [vv, qq, vcc] = saved;
        const inside = tf.sub(1, tf.step(tf.abs(tf.sub(vv, vcc))));
        const dw = tf.mul(dy, inside);
        // inside: round(v) - v; outside: the clamped level (qq == vcc there)
        const ds = tf.sum(tf.mul(tf.mul(dy, tf.sub(qq, tf.mul(vv, inside))), g), axes, true);
        return [dw, tf.reshape(ds, si.shape)];
      },
    };
  };
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0])(w, s);
}

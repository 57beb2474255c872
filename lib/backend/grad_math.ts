/**
 * Convolution gradients composed from ops the tfjs wasm backend runs fast
 * (XNNPACK convolutions, matmul, pad, multiply, average pooling). These are
 * pure tensor functions; `wasm_kernels.ts` registers them as kernels.
 *
 * All functions take NHWC tensors and a `Conv2DInfo` from
 * `tf.backend_util.computeConv2DInfo`; dilation must be 1.
 *
 * Approach and pitfalls follow the measured prototype in
 * `../shared/reference/wasm-training/` (its README): sums over leading axes are
 * done with average pooling (the stock wasm Sum transposes first), the wasm
 * Slice kernel copies its whole input so it is avoided in hot paths, and
 * BatchMatMul only takes the XNNPACK path without transposes.
 * @module
 */
import * as tf from "@tensorflow/tfjs";

type T4 = tf.Tensor4D;
/** Shape facts of one convolution, as computed by tfjs. */
export type ConvInfo = tf.backend_util.Conv2DInfo;

/**
 * Sums a tensor over all axes but the last using average pooling:
 * `sum_rows(p)[c] = sum_{i} p[i, c]`. Exact up to float rounding.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { sumLeading } from "./grad_math.ts";
 * const s = sumLeading(tf.tensor2d([[1, 2], [3, 4]]));
 * if (s.arraySync().join() !== "4,6") throw new Error();
 * ```
 */
export function sumLeading(p: tf.Tensor): tf.Tensor1D {
  const c = p.shape[p.shape.length - 1];
  const rows = p.size / c;
  if (rows === 1) return tf.reshape(p, [c]);
  return tf.tidy(() => {
    let s = 1;
    for (let d = Math.min(rows, 4096); d >= 1; d--) {
      if (rows % d === 0) {
        s = d;
        break;
      }
    }
    const r = rows / s;
    const q = tf.reshape(p, [1, r, s, c]) as T4;
    return tf.mul(tf.reshape(tf.avgPool(q, [r, s], [r, s], "valid"), [c]), rows) as tf.Tensor1D;
  });
}

/** Zero-pads (positive) or crops (negative) H and W of an NHWC tensor. */
function padOrCrop(x: T4, top: number, bottom: number, left: number, right: number): T4 {
  let y = x;
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const [n, h, w, c] = y.shape;
    const t0 = Math.max(0, -top), l0 = Math.max(0, -left);
    const hh = h - t0 - Math.max(0, -bottom), ww = w - l0 - Math.max(0, -right);
    y = tf.slice(y, [0, t0, l0, 0], [n, hh, ww, c]);
  }
  const pt = Math.max(0, top), pb = Math.max(0, bottom);
  const pl = Math.max(0, left), pr = Math.max(0, right);
  if (pt || pb || pl || pr) y = tf.pad(y, [[0, 0], [pt, pb], [pl, pr], [0, 0]]);
  return y;
}

/** Pads H/W through the merged [N, H, W*C] view (long innermost runs are faster on wasm). */
function padMerged(x: T4, top: number, bottom: number, left: number, right: number): T4 {
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    return padOrCrop(x, top, bottom, left, right);
  }
  if (!top && !bottom && !left && !right) return x;
  const [n, h, w, c] = x.shape;
  const y = tf.pad(tf.reshape(x, [n, h, w * c]), [[0, 0], [top, bottom], [left * c, right * c]]);
  return tf.reshape(y, [n, h + top + bottom, w + left + right, c]) as T4;
}

/** Inserts (s-1) zeros after every element along H and W: [N,OH,OW,C] -> [N,OH*sh,OW*sw,C]. */
function zeroInterleave(dy: T4, sh: number, sw: number): T4 {
  if (sh === 1 && sw === 1) return dy;
  const [n, oh, ow, c] = dy.shape;
  const r = tf.reshape(dy, [n, oh, 1, ow, c]);
  const p = tf.pad(r, [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, (sw - 1) * c]]);
  return tf.reshape(p, [n, oh * sh, ow * sw, c]) as T4;
}

/** a: [M, K], b: [M, N] -> a^T b : [K, N], transposing the smaller operand explicitly. */
function matMulTA(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  const k = a.shape[1], n = b.shape[1];
  if (k <= n) return tf.matMul(tf.transpose(a), b);
  return tf.transpose(tf.matMul(tf.transpose(b), a));
}

/** Strided taps of a padded input for an im2col: each [N, OH, OW, C]. */
function taps(xp: T4, ci: ConvInfo): T4[] {
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = ci;
  const { outHeight: oh, outWidth: ow } = ci;
  const [n, , , c] = xp.shape;
  const out: T4[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      out.push(
        tf.stridedSlice(
          xp,
          [0, i, j, 0],
          [n, i + sh * (oh - 1) + 1, j + sw * (ow - 1) + 1, c],
          [1, sh, sw, 1],
        ) as T4,
      );
    }
  }
  return out;
}

function checkInfo(ci: ConvInfo): void {
  if (ci.dilationHeight !== 1 || ci.dilationWidth !== 1) {
    throw new Error("qgt wasm gradients: dilation other than 1 is not supported");
  }
}

/**
 * dL/dW of a regular convolution. For k>1 it is one XNNPACK convolution with
 * batch and channel swapped: input x_pad^T [Cin, Hp, Wp, N], filter
 * dy^T [OH, OW, N, Cout], dilation = stride -> [Cin, kh, kw, Cout]. For 1x1 it
 * is im2col + matmul.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { conv2dFilterGrad } from "./grad_math.ts";
 * const x = tf.ones([1, 3, 3, 1]) as tf.Tensor4D, dy = tf.ones([1, 3, 3, 1]) as tf.Tensor4D;
 * const ci = tf.backend_util.computeConv2DInfo(x.shape, [3, 3, 1, 1], 1, 1, "same");
 * const dw = conv2dFilterGrad(x, dy, ci); // centre tap sees all 9 pixels
 * if (dw.arraySync()[1][1][0][0] !== 9) throw new Error();
 * ```
 */
export function conv2dFilterGrad(x: T4, dy: T4, ci: ConvInfo): T4 {
  checkInfo(ci);
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = ci;
  const { outHeight: oh, outWidth: ow, inChannels: cin, outChannels: cout, batchSize: n } = ci;
  const p = ci.padInfo;
  return tf.tidy(() => {
    if (kh > 1 || kw > 1) {
      const hp = sh * (oh - 1) + kh, wp = sw * (ow - 1) + kw;
      const xp = padMerged(x, p.top, hp - ci.inHeight - p.top, p.left, wp - ci.inWidth - p.left);
      const xt = tf.transpose(xp, [3, 1, 2, 0]) as T4; // [Cin, Hp, Wp, N]
      const f = tf.transpose(dy, [1, 2, 0, 3]) as T4; // [OH, OW, N, Cout]
      const out = tf.conv2d(xt, f, 1, "valid", "NHWC", [sh, sw]); // [Cin, kh, kw, Cout]
      return tf.transpose(out, [1, 2, 0, 3]) as T4;
    }
    const m = n * oh * ow;
    let xcol: tf.Tensor2D;
    if (sh === 1 && sw === 1 && !p.top && !p.left && ci.inHeight === oh && ci.inWidth === ow) {
      xcol = tf.reshape(x, [m, cin]);
    } else {
      const xp = padOrCrop(x, p.top, p.bottom, p.left, p.right);
      xcol = tf.reshape(taps(xp, ci)[0], [m, cin]);
    }
    const dw = matMulTA(xcol, tf.reshape(dy, [m, cout]));
    return tf.reshape(dw, [kh, kw, cin, cout]) as T4;
  });
}

/**
 * dL/dx of a regular convolution: the transposed convolution, i.e. a
 * convolution of the zero-interleaved dy with the 180-degree-rotated,
 * in/out-swapped filter. 1x1 stride-1 convs are one matmul.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { conv2dInputGrad } from "./grad_math.ts";
 * const w = tf.ones([3, 3, 1, 1]) as tf.Tensor4D, dy = tf.ones([1, 3, 3, 1]) as tf.Tensor4D;
 * const ci = tf.backend_util.computeConv2DInfo([1, 3, 3, 1], w.shape, 1, 1, "same");
 * const dx = conv2dInputGrad(dy, w, ci); // the centre pixel feeds all 9 outputs
 * if (dx.arraySync()[0][1][1][0] !== 9) throw new Error();
 * ```
 */
export function conv2dInputGrad(dy: T4, filter: T4, ci: ConvInfo): T4 {
  checkInfo(ci);
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = ci;
  const { outHeight: oh, outWidth: ow, inChannels: cin, outChannels: cout, batchSize: n } = ci;
  const { inHeight: h, inWidth: w } = ci;
  const p = ci.padInfo;
  return tf.tidy(() => {
    if (kh === 1 && kw === 1 && sh === 1 && sw === 1 && !p.top && !p.left && h === oh && w === ow) {
      const wt = tf.transpose(tf.reshape(filter, [cin, cout])) as tf.Tensor2D; // [cout, cin]
      const dx = tf.matMul(tf.reshape(dy, [n * oh * ow, cout]) as tf.Tensor2D, wt);
      return tf.reshape(dx, [n, h, w, cin]) as T4;
    }
    const up = zeroInterleave(dy, sh, sw);
    const top = kh - 1 - p.top, left = kw - 1 - p.left;
    const bottom = h + kh - 1 - top - oh * sh, right = w + kw - 1 - left - ow * sw;
    const positive = top >= 0 && bottom >= 0 && left >= 0 && right >= 0;
    const explicit = [[0, 0], [top, bottom], [left, right], [
      0,
      0,
    ]] as tf.backend_util.ExplicitPadding;
    if (cin === 1) {
      // one output channel (a grayscale stem): depthwise + channel sum is ~3x faster than conv with Cout=1
      const wd = tf.reshape(tf.reverse(filter, [0, 1]), [kh, kw, cout, 1]) as T4;
      const d = positive
        ? tf.depthwiseConv2d(up, wd, 1, explicit)
        : tf.depthwiseConv2d(padOrCrop(up, top, bottom, left, right), wd, 1, "valid");
      return tf.sum(d, 3, true) as T4;
    }
    const wr = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as T4; // [kh,kw,cout,cin]
    if (positive) return tf.conv2d(up, wr, 1, explicit);
    return tf.conv2d(padOrCrop(up, top, bottom, left, right), wr, 1, "valid");
  });
}

/**
 * dL/dW of a depthwise convolution with channel multiplier 1, using only pad,
 * multiply and average pooling (no Slice): the padded input is viewed as
 * [N, hh, sh, wh*sw*C] (rows/columns split by stride phase) and dy, duplicated
 * over the phases and shifted by padding, is multiplied and reduced once per
 * shift, yielding sh*sw taps at a time.
 */
function depthwiseFilterGradM1(x: T4, dy: T4, ci: ConvInfo): T4 {
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = ci;
  const { outHeight: oh, outWidth: ow, inChannels: c, batchSize: n } = ci;
  const p = ci.padInfo;
  const ph = Math.ceil(kh / sh), pw = Math.ceil(kw / sw);
  const hh = oh + ph - 1, wh = ow + pw - 1;
  const xp = padMerged(
    x,
    p.top,
    sh * hh - ci.inHeight - p.top,
    p.left,
    sw * wh - ci.inWidth - p.left,
  );
  const xv = tf.reshape(xp, [n, hh, sh, wh * sw * c]);
  let d: tf.Tensor = tf.reshape(dy, [n, oh, 1, ow, 1, c]);
  if (sh > 1 || sw > 1) d = tf.mul(d, tf.ones([1, 1, sh, 1, sw, 1]));
  d = tf.reshape(d, [n, oh, sh, ow * sw * c]);
  const rowLen = sw * c;
  const parts: tf.Tensor[] = [];
  for (let ii = 0; ii < ph; ii++) {
    for (let jj = 0; jj < pw; jj++) {
      const dd = ph === 1 && pw === 1 ? d : tf.pad(d, [
        [0, 0],
        [ii, hh - oh - ii],
        [0, 0],
        [jj * rowLen, (wh - ow - jj) * rowLen],
      ]);
      const prod = tf.mul(xv, dd);
      if (sh === 1) {
        parts.push(sumLeading(tf.reshape(prod, [n * hh * wh, rowLen])));
      } else {
        const s1 = tf.avgPool(
          tf.reshape(prod, [n * hh, sh, wh, rowLen]) as T4,
          [1, wh],
          [1, wh],
          "valid",
        );
        parts.push(tf.mul(sumLeading(tf.reshape(s1, [n * hh, sh * rowLen])), wh));
      }
    }
  }
  let all = tf.reshape(tf.stack(parts), [ph, pw, sh, sw, c]);
  all = tf.reshape(tf.transpose(all, [0, 2, 1, 3, 4]), [ph * sh, pw * sw, c]);
  if (ph * sh !== kh || pw * sw !== kw) all = tf.slice(all, [0, 0, 0], [kh, kw, c]);
  return tf.reshape(all, [kh, kw, c, 1]) as T4;
}

/**
 * dL/dW of a depthwise convolution [kh, kw, C, mult].
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { depthwiseFilterGrad } from "./grad_math.ts";
 * const x = tf.ones([1, 3, 3, 2]) as tf.Tensor4D, dy = tf.ones([1, 3, 3, 2]) as tf.Tensor4D;
 * const ci = tf.backend_util.computeConv2DInfo(x.shape, [3, 3, 2, 1], 1, 1, "same", undefined, true);
 * const dw = depthwiseFilterGrad(x, dy, ci, 1);
 * if (dw.arraySync()[0][0][0][0] !== 4) throw new Error(); // a corner tap sees 2x2 pixels
 * ```
 */
export function depthwiseFilterGrad(x: T4, dy: T4, ci: ConvInfo, mult: number): T4 {
  checkInfo(ci);
  return tf.tidy(() => {
    if (mult === 1) return depthwiseFilterGradM1(x, dy, ci);
    const { filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow } = ci;
    const { inChannels: c, batchSize: n } = ci;
    const p = ci.padInfo;
    const m = n * oh * ow;
    const xp = padOrCrop(x, p.top, p.bottom, p.left, p.right);
    const cat = tf.reshape(tf.concat(taps(xp, ci), 3), [m, kh * kw, c, 1]);
    const prod = tf.mul(cat, tf.reshape(dy, [m, 1, c, mult])); // [M, T, C, mult]
    return tf.reshape(sumLeading(tf.reshape(prod, [m, kh * kw * c * mult])), [
      kh,
      kw,
      c,
      mult,
    ]) as T4;
  });
}

/**
 * dL/dx of a depthwise convolution: a depthwise convolution of the
 * zero-interleaved dy with the rotated filter (summed over the multiplier).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { depthwiseInputGrad } from "./grad_math.ts";
 * const w = tf.ones([3, 3, 1, 1]) as tf.Tensor4D, dy = tf.ones([1, 3, 3, 1]) as tf.Tensor4D;
 * const ci = tf.backend_util.computeConv2DInfo([1, 3, 3, 1], w.shape, 1, 1, "same", undefined, true);
 * if (depthwiseInputGrad(dy, w, ci).arraySync()[0][1][1][0] !== 9) throw new Error();
 * ```
 */
export function depthwiseInputGrad(dy: T4, filter: T4, ci: ConvInfo): T4 {
  checkInfo(ci);
  const { filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = ci;
  const { outHeight: oh, outWidth: ow, inChannels: c, batchSize: n } = ci;
  const { inHeight: h, inWidth: w } = ci;
  const mult = filter.shape[3];
  const p = ci.padInfo;
  return tf.tidy(() => {
    const up = zeroInterleave(dy, sh, sw);
    const top = kh - 1 - p.top, left = kw - 1 - p.left;
    const bottom = h + kh - 1 - top - oh * sh, right = w + kw - 1 - left - ow * sw;
    let wr = tf.reverse(filter, [0, 1]) as T4;
    if (mult !== 1) wr = tf.reshape(wr, [kh, kw, c * mult, 1]);
    const positive = top >= 0 && bottom >= 0 && left >= 0 && right >= 0;
    let dx: T4 = positive
      ? tf.depthwiseConv2d(
        up,
        wr,
        1,
        [[0, 0], [top, bottom], [left, right], [0, 0]] as tf.backend_util.ExplicitPadding,
      )
      : tf.depthwiseConv2d(padOrCrop(up, top, bottom, left, right), wr, 1, "valid");
    if (mult !== 1) dx = tf.sum(tf.reshape(dx, [n, h, w, c, mult]), 4) as T4;
    return dx;
  });
}

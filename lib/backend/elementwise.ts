/**
 * Elementwise float32 loops for the wasm kernels the stock backend runs
 * slowly: `Maximum`, `Minimum` (about 11 ns per element in tfjs-backend-wasm
 * 4.22, against 1-2 ns for `Mul` or `Add`) and `Sign` (9 ns). Quantized
 * training calls them on every weight at every clipping ratio of the scale
 * search, every step.
 *
 * Each result is one IEEE float32 comparison or selection, so the loops give
 * the stock kernels' bits exactly, including their treatment of NaN and
 * signed zeros (measured: `max(a, b) = a < b ? b : a`,
 * `min(a, b) = b < a ? b : a`; `Sign` see {@link signLoop}).
 * `tests/backend_grad_test.ts` compares them with the stock kernels on random
 * and special values.
 * @module
 */

/** How an operand of a binary loop is indexed. */
export type Operand = "full" | "channel" | "scalar";

/** The binary operations of {@link binaryLoop}. */
export type BinaryOp = "max" | "min";

/**
 * out[i] = op(a[ia], b[ib]) over `rows` rows of `c` values: a "full" operand
 * is read at i, a "channel" one at i mod c (a per-channel vector broadcast
 * along the rows, NHWC's last axis), a "scalar" one at 0.
 *
 * @example
 * ```ts
 * import { binaryLoop } from "./elementwise.ts";
 * const out = new Float32Array(4);
 * binaryLoop("max", new Float32Array([1, 5, 3, -1]), "full", new Float32Array([2, 0]), "channel", out, 2);
 * if (out.join() !== "2,5,3,0") throw new Error();
 * ```
 */
export function binaryLoop(
  op: BinaryOp,
  a: Float32Array,
  am: Operand,
  b: Float32Array,
  bm: Operand,
  out: Float32Array,
  c: number,
): void {
  const n = out.length;
  for (let i0 = 0; i0 < n; i0 += c) {
    for (let j = 0; j < c; j++) {
      const i = i0 + j;
      const x = a[am === "full" ? i : am === "channel" ? j : 0];
      const y = b[bm === "full" ? i : bm === "channel" ? j : 0];
      out[i] = op === "max" ? (x < y ? y : x) : (y < x ? y : x);
    }
  }
}

/** Below this magnitude the stock wasm `Sign` returns 0: float32's machine epsilon, 2^-23. */
export const SIGN_EPSILON = 2 ** -23;

/**
 * out[i] = sign(x[i]) as the stock wasm kernel computes it: 1 for
 * x >= 2^-23, -1 for x <= -2^-23, and 0 for NaN and everything smaller in
 * magnitude (measured by bisection on tfjs-backend-wasm 4.22: sign(1.19e-7)
 * is 0, sign(2^-23) is 1). qgt only uses sign in round-half-away-from-zero,
 * sign(x) floor(|x| + 0.5), where |x| < 0.5 gives 0 either way.
 *
 * @example
 * ```ts
 * import { signLoop } from "./elementwise.ts";
 * const out = new Float32Array(5);
 * signLoop(new Float32Array([-2, -0, NaN, 3, 1e-9]), out);
 * if (out.join() !== "-1,0,0,1,0" || Object.is(out[1], -0)) throw new Error();
 * ```
 */
export function signLoop(x: Float32Array, out: Float32Array): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    out[i] = v >= SIGN_EPSILON ? 1 : v <= -SIGN_EPSILON ? -1 : 0;
  }
}

/**
 * How two shapes broadcast in {@link binaryLoop}'s terms, or null when they
 * need a general broadcast (left to the stock kernel): equal shapes; one
 * operand of one element; or one operand a vector along the other's last
 * axis (shape [..1, C]).
 *
 * @example
 * ```ts
 * import { broadcastPlan } from "./elementwise.ts";
 * const p = broadcastPlan([2, 3, 4], [1, 1, 4])!;
 * if (p.a !== "full" || p.b !== "channel" || p.c !== 4 || p.n !== 24) throw new Error();
 * if (broadcastPlan([2, 3], [2, 1]) !== null) throw new Error(); // along a leading axis
 * ```
 */
export function broadcastPlan(
  sa: readonly number[],
  sb: readonly number[],
): { a: Operand; b: Operand; c: number; n: number; shape: number[] } | null {
  const size = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
  const na = size(sa), nb = size(sb);
  const same = sa.length === sb.length && sa.every((d, i) => d === sb[i]);
  if (same) return { a: "full", b: "full", c: Math.max(na, 1), n: na, shape: [...sa] };
  const channelOf = (big: readonly number[], small: readonly number[]) => {
    if (small.length > big.length || big.length === 0) return false;
    const c = big[big.length - 1];
    return small.length > 0 && small[small.length - 1] === c &&
      small.slice(0, -1).every((d) => d === 1);
  };
  // the output takes the higher rank; a one-element operand of higher rank is left to the stock kernel
  if (nb === 1 && sb.length <= sa.length) {
    return { a: "full", b: "scalar", c: Math.max(na, 1), n: na, shape: [...sa] };
  }
  if (na === 1 && sa.length <= sb.length) {
    return { a: "scalar", b: "full", c: Math.max(nb, 1), n: nb, shape: [...sb] };
  }
  if (channelOf(sa, sb)) {
    return { a: "full", b: "channel", c: sa[sa.length - 1], n: na, shape: [...sa] };
  }
  if (channelOf(sb, sa)) {
    return { a: "channel", b: "full", c: sb[sb.length - 1], n: nb, shape: [...sb] };
  }
  return null;
}

/**
 * The exact arithmetic of the integer model (docs/format.md, "Numbers"): real
 * numbers of the header are float32 values, decimal text converted with
 * round-to-nearest-even; weight scales are float16. From them, the
 * requantization multiplier, the ReLU6 bound and the prediction are defined
 * exactly (as rationals, rounded once), so every reader — this TypeScript
 * interpreter and the C runtime alike — computes the same integers without
 * depending on a floating-point unit.
 * @module
 */

const TWO = 2n;

/** x = m * 2^e exactly, for a finite double x >= 0 (m a BigInt, e an integer). */
export function exactParts(x: number): { m: bigint; e: number } {
  if (!(x >= 0) || !Number.isFinite(x)) throw new Error(`exactParts: ${x} is not finite and >= 0`);
  if (x === 0) return { m: 0n, e: 0 };
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, x);
  const hi = dv.getUint32(0), lo = dv.getUint32(4);
  const exp = (hi >>> 20) & 0x7ff;
  const frac = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  return exp === 0 ? { m: frac, e: -1074 } : { m: frac | (1n << 52n), e: exp - 1075 };
}

function bitLength(x: bigint): number {
  return x === 0n ? 0 : x.toString(2).length;
}

/** floor(a / b) for BigInts with b > 0. */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n ? q - 1n : q;
}

/**
 * The float32 nearest to a decimal number written as in JSON (`-?digits[.digits][e±digits]`),
 * ties to even, computed exactly (no double rounding); ±Infinity beyond the float32 range.
 *
 * @example
 * ```ts
 * import { decimalToFloat32 } from "./numbers.ts";
 * if (decimalToFloat32("0.1") !== Math.fround(0.1)) throw new Error();
 * // 2^-149 is the smallest float32; half of it rounds to even (zero)
 * if (decimalToFloat32("1.401298464324817e-45") !== 2 ** -149) throw new Error();
 * if (decimalToFloat32("7.006492321624085e-46") !== 0) throw new Error();
 * ```
 */
export function decimalToFloat32(text: string): number {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) throw new Error(`not a decimal number: ${JSON.stringify(text)}`);
  const sign = m[1] ? -1 : 1;
  const digits = (m[2] + (m[3] ?? "")).replace(/^0+(?=\d)/, "");
  const exp10 = Number(m[4] ?? 0) - (m[3]?.length ?? 0);
  let d = BigInt(digits);
  if (d === 0n) return sign * 0;
  if (Math.abs(exp10) > 400) return exp10 > 0 ? sign * Infinity : sign * 0;
  let num = d, den = 1n;
  if (exp10 >= 0) num *= 10n ** BigInt(exp10);
  else den = 10n ** BigInt(-exp10);
  d = 0n;
  // value = num / den = q * 2^k with q in [2^23, 2^24) (or subnormal: k = -149)
  let k = bitLength(num) - bitLength(den) - 24;
  const scaled = (kk: number): [bigint, bigint, bigint] => {
    const n = kk >= 0 ? num : num << BigInt(-kk), dd = kk >= 0 ? den << BigInt(kk) : den;
    return [n / dd, n % dd, dd];
  };
  let [q, r, dd] = scaled(k);
  while (q >= 1n << 24n) [q, r, dd] = scaled(++k);
  while (q < 1n << 23n) [q, r, dd] = scaled(--k);
  if (k < -149) [q, r, dd] = scaled(k = -149);
  // round to nearest, ties to even
  if (2n * r > dd || (2n * r === dd && (q & 1n) === 1n)) q += 1n;
  if (q === 1n << 24n) {
    q >>= 1n;
    k++;
  }
  if (k > 104) return sign * Infinity; // above 2^128
  return sign * Number(q) * 2 ** k;
}

/**
 * The float32 value of a JSON number as written in the header: its source
 * text when known (JSON.parse's source access), else the double it parsed
 * to, rounded to float32.
 *
 * @example
 * ```ts
 * import { headerFloat32 } from "./numbers.ts";
 * if (headerFloat32(0.1, "0.1") !== Math.fround(0.1)) throw new Error();
 * ```
 */
export function headerFloat32(value: number, source?: string): number {
  return source !== undefined ? decimalToFloat32(source) : Math.fround(value);
}

/**
 * TFLite's QuantizeMultiplier for the exact real M = a * b / c (all three
 * finite and positive doubles, used as exact rationals): M = m0 * 2^(shift - 31)
 * with m0 in [2^30, 2^31), m0 = floor(M * 2^(31 - shift) + 1/2) (rounded once,
 * half up; 2^31 becomes 2^30 with shift + 1). M below 2^-32 (shift < -31)
 * gives [0, 0]: the requantized value is the output zero point.
 *
 * @example
 * ```ts
 * import { requantMultiplier } from "./numbers.ts";
 * const [m0, shift] = requantMultiplier(1, 1, 4); // 0.25 = 2^30 * 2^(-1 - 31)
 * if (m0 !== 2 ** 30 || shift !== -1) throw new Error();
 * if (requantMultiplier(1, 1, 2 ** 40).join() !== "0,0") throw new Error();
 * ```
 */
export function requantMultiplier(a: number, b: number, c: number): [number, number] {
  for (const x of [a, b, c]) {
    if (!(x > 0) || !Number.isFinite(x)) {
      throw new Error(`requantization multiplier: scales must be finite and positive, got ${x}`);
    }
  }
  const pa = exactParts(a), pb = exactParts(b), pc = exactParts(c);
  const num = pa.m * pb.m, den = pc.m, e = pa.e + pb.e - pc.e;
  // M = num / den * 2^e; find shift with 2^(shift-1) <= M < 2^shift
  let shift = bitLength(num) - bitLength(den) + e;
  const cmp = (s: number): number => {
    // sign of M - 2^(s-1)
    const p = e - (s - 1);
    const lhs = p >= 0 ? num << BigInt(p) : num, rhs = p >= 0 ? den : den << BigInt(-p);
    return lhs < rhs ? -1 : lhs > rhs ? 1 : 0;
  };
  while (cmp(shift) < 0) shift--;
  while (cmp(shift + 1) >= 0) shift++;
  if (shift < -31) return [0, 0];
  // m0 = floor(M * 2^(31 - shift) + 1/2) = floor((2 num 2^p + den) / (2 den)), p = e + 31 - shift
  const p = e + 31 - shift;
  const n2 = p >= 0 ? TWO * (num << BigInt(p)) : TWO * num;
  const d2 = p >= 0 ? TWO * den : TWO * (den << BigInt(-p));
  let m0 = floorDiv(n2 + d2 / TWO, d2);
  if (m0 === 1n << 31n) {
    m0 = 1n << 30n;
    shift++;
  }
  return [Number(m0), shift];
}

/**
 * The ReLU6 upper bound of an int8 output: zp + floor(6 / s + 1/2), exactly,
 * clamped to 127.
 *
 * @example
 * ```ts
 * import { relu6Max } from "./numbers.ts";
 * if (relu6Max(-128, 6 / 255) !== 127) throw new Error();
 * if (relu6Max(-128, 0.5) !== -116) throw new Error(); // 6 / 0.5 = 12
 * if (relu6Max(0, 4) !== 2) throw new Error(); // 1.5 rounds up
 * ```
 */
export function relu6Max(zp: number, s: number): number {
  const { m, e } = exactParts(s);
  // 6 / s = 6 / (m 2^e); floor(6 / s + 1/2) = floor((12 + m 2^e) / (2 m 2^e))
  const n = e >= 0 ? 12n : 12n << BigInt(-e), d = e >= 0 ? m << BigInt(e) : m;
  const q = floorDiv(n + d, TWO * d);
  const v = Number(q > 1000n ? 1000n : q) + zp;
  return v > 127 ? 127 : v;
}

/**
 * The prediction from the last layer's int32 accumulators and its per-class
 * weight scales: the class c with the largest acc[c] * scale[c] (the logits up
 * to the common positive input scale), computed exactly; ties go to the
 * lowest index. (acc * scale is exact in a double: |acc| < 2^31 and a float16
 * scale has 11 significant bits.)
 *
 * @example
 * ```ts
 * import { predictClass } from "./numbers.ts";
 * if (predictClass(Int32Array.from([3, 2]), [0.5, 1]) !== 1) throw new Error(); // 1.5 < 2
 * if (predictClass(Int32Array.from([2, 1]), [0.5, 1]) !== 0) throw new Error(); // a tie: the first
 * ```
 */
export function predictClass(acc: Int32Array, scales: ArrayLike<number>): number {
  let best = 0, bestV = acc[0] * scales[0];
  for (let c = 1; c < acc.length; c++) {
    const v = acc[c] * scales[scales.length === 1 ? 0 : c];
    if (v > bestV) {
      best = c;
      bestV = v;
    }
  }
  return best;
}

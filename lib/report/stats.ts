/**
 * Small statistics for seed-to-seed comparisons: the mean and sample standard
 * deviation, Student's t quantiles, and the paired difference of two variants
 * over the seeds they share with its 95 % confidence interval.
 * @module
 */

/**
 * Arithmetic mean (NaN for no values).
 *
 * @example
 * ```ts
 * import { mean } from "./stats.ts";
 * if (mean([1, 2, 6]) !== 3) throw new Error();
 * ```
 */
export function mean(xs: readonly number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/**
 * Sample standard deviation, sqrt(sum (x - mean)^2 / (n - 1)) (NaN below two values).
 *
 * @example
 * ```ts
 * import { sampleSd } from "./stats.ts";
 * if (sampleSd([1, 3]) !== Math.SQRT2) throw new Error();
 * ```
 */
export function sampleSd(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/** Lanczos coefficients, g = 607/128, 15 terms (Godfrey); ~1e-15 relative error. */
const LANCZOS = [
  0.99999999999999709182,
  57.156235665862923517,
  -59.597960355475491248,
  14.136097974741747174,
  -0.49191381609762019978,
  0.33994649984811888699e-4,
  0.46523628927048575665e-4,
  -0.98374475304879564677e-4,
  0.15808870322491248884e-3,
  -0.21026444172410488319e-3,
  0.2174396181152126432e-3,
  -0.16431810653676389022e-3,
  0.84418223983852743293e-4,
  -0.2619083840158140867e-4,
  0.36899182659531622704e-5,
];

/** log Gamma(x) for x > 0 (Lanczos approximation). */
function logGamma(x: number): number {
  const z = x - 1, t = z + 607 / 128 + 0.5;
  let a = LANCZOS[0];
  for (let i = 1; i < LANCZOS.length; i++) a += LANCZOS[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betaCf(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1, d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    for (
      const num of [
        (m * (b - m) * x) / ((a + m2 - 1) * (a + m2)),
        -((a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1)),
      ]
    ) {
      d = 1 + num * d;
      d = 1 / (Math.abs(d) < tiny ? tiny : d);
      c = 1 + num / c;
      if (Math.abs(c) < tiny) c = tiny;
      h *= d * c;
    }
    if (Math.abs(d * c - 1) < 1e-15) break;
  }
  return h;
}

/** Regularized incomplete beta I_x(a, b). */
function betaInc(a: number, b: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(
    logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x),
  );
  return x < (a + 1) / (a + b + 2)
    ? (front * betaCf(a, b, x)) / a
    : 1 - (front * betaCf(b, a, 1 - x)) / b;
}

/**
 * Student's t cumulative distribution P(T <= t) with `df` degrees of freedom:
 * 1 - I_x(df/2, 1/2) / 2 for t >= 0, x = df / (df + t^2).
 *
 * @example
 * ```ts
 * import { tCdf } from "./stats.ts";
 * if (Math.abs(tCdf(1, 1) - 0.75) > 1e-12) throw new Error(); // Cauchy: 1/2 + atan(1)/pi
 * ```
 */
export function tCdf(t: number, df: number): number {
  if (!(df > 0)) throw new Error(`tCdf: degrees of freedom must be > 0, got ${df}`);
  const tail = 0.5 * betaInc(df / 2, 0.5, df / (df + t * t));
  return t >= 0 ? 1 - tail : tail;
}

/**
 * The p-quantile of Student's t with `df` degrees of freedom (bisection on
 * {@link tCdf}, to 1e-10).
 *
 * @example
 * ```ts
 * import { tQuantile } from "./stats.ts";
 * if (Math.abs(tQuantile(0.975, 2) - 4.302653) > 1e-6) throw new Error();
 * ```
 */
export function tQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`tQuantile: p must be in (0, 1), got ${p}`);
  if (p < 0.5) return -tQuantile(1 - p, df);
  let lo = 0, hi = 1;
  while (tCdf(hi, df) < p) hi *= 2;
  while (hi - lo > 1e-10 * Math.max(1, hi)) {
    const mid = (lo + hi) / 2;
    if (tCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** The paired difference b - a over matched samples. */
export interface PairedDifference {
  n: number;
  /** Mean of b_i - a_i. */
  mean: number;
  /** Sample standard deviation of the differences (NaN for n < 2). */
  sd: number;
  /** 95 % confidence interval of the mean difference (Student t, n - 1 df); NaN for n < 2. */
  ciLow: number;
  ciHigh: number;
  /** Pairs with b > a, b = a, b < a. */
  wins: number;
  ties: number;
  losses: number;
}

/**
 * The paired difference b - a (e.g. QGT minus QAT accuracy on the same seeds):
 * mean, sd and the 95 % t interval mean ± t(0.975, n - 1) sd / sqrt(n).
 *
 * @example
 * ```ts
 * import { pairedDifference } from "./stats.ts";
 * const d = pairedDifference([1, 2, 3], [2, 2, 5]); // differences 1, 0, 2
 * if (d.mean !== 1 || d.sd !== 1 || d.wins !== 2 || d.ties !== 1) throw new Error();
 * ```
 */
export function pairedDifference(a: readonly number[], b: readonly number[]): PairedDifference {
  if (a.length !== b.length) {
    throw new Error(`pairedDifference: ${a.length} values against ${b.length}`);
  }
  const d = a.map((x, i) => b[i] - x);
  const m = mean(d), sd = sampleSd(d);
  const half = d.length >= 2 ? tQuantile(0.975, d.length - 1) * sd / Math.sqrt(d.length) : NaN;
  return {
    n: d.length,
    mean: m,
    sd,
    ciLow: m - half,
    ciHigh: m + half,
    wins: d.filter((x) => x > 0).length,
    ties: d.filter((x) => x === 0).length,
    losses: d.filter((x) => x < 0).length,
  };
}

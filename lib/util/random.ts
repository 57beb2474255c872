/**
 * Seeded pseudo-random numbers. Every random choice in qgt (initialisation,
 * shuffling, augmentation, synthetic data) goes through this module so that a
 * run is reproducible from its seed on any backend.
 *
 * The generator is sfc32 (Chris Doty-Humphrey's "small fast counting" PRNG,
 * from PractRand), seeded through splitmix32 so that nearby seeds give
 * unrelated streams.
 * @module
 */

/** A seeded random stream. */
export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number;
  /** Standard normal (Box-Muller). */
  normal(): number;
  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/**
 * Creates a seeded random stream (sfc32).
 *
 * @example
 * ```ts
 * import { rng } from "./random.ts";
 * const a = rng(42), b = rng(42);
 * if (a.next() !== b.next()) throw new Error("not deterministic");
 * ```
 */
export function rng(seed: number): Rng {
  const sm = splitmix32(seed);
  let a = sm(), b = sm(), c = sm(), d = sm();
  const next = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  let spare: number | null = null;
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    normal: () => {
      if (spare !== null) {
        const s = spare;
        spare = null;
        return s;
      }
      let u = 0;
      while (u === 0) u = next();
      const v = next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
  };
}

/**
 * Derives an independent child seed from a parent seed and a label, so that
 * e.g. initialisation and shuffling draw from unrelated streams.
 *
 * @example
 * ```ts
 * import { deriveSeed } from "./random.ts";
 * if (deriveSeed(1, "init") === deriveSeed(1, "shuffle")) throw new Error();
 * ```
 */
export function deriveSeed(seed: number, label: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < label.length; i++) {
    h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  }
  return splitmix32(h)();
}

/**
 * Fisher-Yates permutation of 0..n-1 from a seed.
 *
 * @example
 * ```ts
 * import { permutation } from "./random.ts";
 * const p = permutation(5, 7);
 * if ([...p].sort().join() !== "0,1,2,3,4") throw new Error();
 * ```
 */
export function permutation(n: number, seed: number): Uint32Array {
  const r = rng(seed);
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r.next() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

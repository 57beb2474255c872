/**
 * IEEE 754 half precision (float16) conversion, round to nearest even. The
 * exported model stores per-channel scales as float16; snapping uses the same
 * rounded scales so the deployed codes and the simulation agree exactly.
 * @module
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * float32 value -> float16 bits.
 *
 * @example
 * ```ts
 * import { toFloat16Bits } from "./fp16.ts";
 * if (toFloat16Bits(1) !== 0x3c00 || toFloat16Bits(-2) !== 0xc000) throw new Error();
 * ```
 */
export function toFloat16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / nan
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) { // subnormal half
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // a carry into the exponent is still correct
  return sign | h;
}

/**
 * float16 bits -> number.
 *
 * @example
 * ```ts
 * import { fromFloat16Bits } from "./fp16.ts";
 * if (fromFloat16Bits(0x3c00) !== 1 || fromFloat16Bits(0x3555) !== 0.333251953125) throw new Error();
 * ```
 */
export function fromFloat16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return sign * m * Math.pow(2, -24);
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * Math.pow(2, e - 15);
}

/**
 * Rounds to the nearest float16 value.
 *
 * @example
 * ```ts
 * import { roundFloat16 } from "./fp16.ts";
 * if (roundFloat16(0.1) !== 0.0999755859375) throw new Error();
 * ```
 */
export function roundFloat16(v: number): number {
  return fromFloat16Bits(toFloat16Bits(v));
}

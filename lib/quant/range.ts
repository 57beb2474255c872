/**
 * Scale and zero point of an asymmetric range quantizer (8-bit activations):
 * s = (hi - lo) / (2^b - 1), z = round(-lo / s), with [lo, hi] widened to hold 0.
 * Pure arithmetic (no tfjs): shared by fake quantization, PTQ and the model formats.
 * @module
 */

/** Scale and zero point of an asymmetric range quantizer. */
export interface RangeParams {
  scale: number;
  zeroPoint: number;
  qmax: number;
}

/**
 * Scale and integer zero point for [lo, hi] at `bits`; lo is moved to <= 0 and
 * hi to >= 0 so that 0 is exactly representable.
 *
 * @example
 * ```ts
 * import { rangeParams } from "./range.ts";
 * const p = rangeParams(0, 6, 8);
 * if (p.zeroPoint !== 0 || Math.abs(p.scale - 6 / 255) > 1e-12) throw new Error();
 * ```
 */
export function rangeParams(lo: number, hi: number, bits = 8): RangeParams {
  if (!(hi >= lo)) throw new Error(`activation range: expected lo <= hi, got [${lo}, ${hi}]`);
  const qmax = 2 ** bits - 1;
  const l = Math.min(lo, 0), h = Math.max(hi, 0);
  const scale = Math.max((h - l) / qmax, 1e-12);
  const zeroPoint = Math.min(qmax, Math.max(0, Math.round(-l / scale)));
  return { scale, zeroPoint, qmax };
}

/**
 * How many of the first training images calibrate activation ranges (PTQ) and the output
 * range of `model.tflite`: one setting, shared by training, export and the CLIs.
 */
export const CALIBRATION_IMAGES = 512;

/**
 * Quantizer specifications and their validation.
 * @module
 */

/**
 * How the quantization scale is chosen: from the weights ("maxabs", "mse"),
 * or learned ("lsq": Learned Step Size Quantization, Esser et al., ICLR 2020;
 * trained as a variable, and where no learned value is at hand its initial
 * value 2 mean|w| / sqrt(qmax), as the paper initialises it).
 */
export type ScaleMethod = "maxabs" | "mse" | "lsq";

/**
 * A uniform quantizer.
 *
 * - `bits` 1-8. Symmetric: integer levels -2^(b-1)..2^(b-1)-1, or with
 *   `narrowRange` -(2^(b-1)-1)..2^(b-1)-1; asymmetric: 0..2^b-1 with a zero
 *   point. 1 bit is binary: levels {-1, +1} (symmetric only).
 * - `perChannel` with `axis` (default: the last axis; conv kernels
 *   [kh,kw,cin,cout] use 3, depthwise [kh,kw,c,1] use 2, dense [in,out] 1).
 * - `scale`: "maxabs" (default), "mse" (clipping ratio minimising the squared
 *   error, searched over 0.15..1 of the range), "lsq" (a learned step; from
 *   the weights alone, its initial value 2 mean|w| / sqrt(qmax); symmetric
 *   2-8 bits only).
 * - `steps`: explicit step sizes (one per tensor or per channel); when given
 *   they are the scale, whatever `scale` says. Values a method found (LSQ's
 *   learned steps) reach a quantizer this way, never through `scale`.
 */
export interface QuantSpec {
  bits: number;
  symmetric: boolean;
  perChannel: boolean;
  axis?: number;
  narrowRange?: boolean;
  scale?: ScaleMethod;
  steps?: number | readonly number[] | Float32Array;
  /** Integer zero points (asymmetric, with explicit steps; default 0). */
  zeroPoint?: number[] | Int32Array;
}

/** Integer level range [qmin, qmax] of a spec. */
export interface LevelRange {
  qmin: number;
  qmax: number;
}

/**
 * Throws a clear error for an invalid spec; `rank` (when given) checks the axis.
 *
 * @example
 * ```ts
 * import { validateQuantSpec } from "./spec.ts";
 * let msg = "";
 * try { validateQuantSpec({ bits: 9, symmetric: true, perChannel: false }); } catch (e) { msg = (e as Error).message; }
 * if (!msg.includes("bits")) throw new Error();
 * ```
 */
export function validateQuantSpec(spec: QuantSpec, rank?: number, where = "quant spec"): void {
  if (!Number.isInteger(spec.bits) || spec.bits < 1 || spec.bits > 8) {
    throw new Error(`${where}: bits must be an integer 1-8, got ${spec.bits}`);
  }
  if (spec.bits === 1 && !spec.symmetric) {
    throw new Error(`${where}: 1-bit quantization is binary and must be symmetric`);
  }
  if (spec.perChannel && rank !== undefined) {
    const axis = spec.axis ?? rank - 1;
    if (!Number.isInteger(axis) || axis < 0 || axis >= rank) {
      throw new Error(`${where}: axis ${spec.axis} out of range for a rank-${rank} tensor`);
    }
  }
  const s = spec.scale;
  if (s !== undefined && s !== "maxabs" && s !== "mse" && s !== "lsq") {
    throw new Error(`${where}: scale must be "maxabs", "mse" or "lsq", got ${JSON.stringify(s)}`);
  }
  if (s === "lsq" && (!spec.symmetric || spec.bits < 2)) {
    throw new Error(`${where}: scale "lsq" needs a symmetric quantizer of 2-8 bits`);
  }
  const st = spec.steps;
  if (st !== undefined && (typeof st === "number" ? [st] : [...st]).some((v) => !(v > 0))) {
    throw new Error(`${where}: explicit steps must all be > 0`);
  }
}

/**
 * The integer level range of a spec.
 *
 * @example
 * ```ts
 * import { levelRange } from "./spec.ts";
 * const r = levelRange({ bits: 2, symmetric: true, perChannel: false, narrowRange: true });
 * if (r.qmin !== -1 || r.qmax !== 1) throw new Error();
 * ```
 */
export function levelRange(spec: QuantSpec): LevelRange {
  const b = spec.bits;
  if (b === 1) return { qmin: -1, qmax: 1 };
  if (!spec.symmetric) return { qmin: 0, qmax: 2 ** b - 1 };
  const qmax = 2 ** (b - 1) - 1;
  return { qmin: spec.narrowRange ? -qmax : -(2 ** (b - 1)), qmax };
}

/** Integer codes and parameters of a quantized tensor. */
export interface QuantizedTensor {
  shape: number[];
  bits: number;
  symmetric: boolean;
  /** Channel axis, or -1 for per-tensor. */
  axis: number;
  /** Integer levels, same layout as the input. Binary: -1 / +1. */
  codes: Int32Array;
  /** One per channel (or one). */
  scales: Float32Array;
  /** One per channel (or one); 0 for symmetric. */
  zeroPoints: Int32Array;
}

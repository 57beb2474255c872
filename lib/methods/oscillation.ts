/**
 * Oscillation tracking and iterative weight freezing (Nagel et al.,
 * "Overcoming Oscillations in Quantization-Aware Training", ICML 2022,
 * Algorithm 1). With a straight-through estimator, a latent weight near a
 * decision threshold keeps flipping between two neighbouring levels; the
 * flips add noise to the loss and to BatchNorm's statistics, and do not
 * converge. Each weight's oscillation frequency is tracked as an exponential
 * moving average (momentum m) of "this step's integer level changed, in the
 * direction opposite to its previous change"; once it exceeds a threshold,
 * the weight is frozen at the rounded moving average of its integer level
 * and stays there for the rest of the phase.
 *
 * The tracker works on integer levels only (no scales), so it is the same
 * for any quantizer; {@link freezeStep} applies it to a layer's host arrays.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { QuantSpec } from "../quant/spec.ts";
import { channelIndex, quantizeToInt } from "../quant/quantizer.ts";

/** Iterative weight freezing settings. */
export interface FreezeOptions {
  /** EMA momentum m of the oscillation frequency and of the integer level (Nagel et al.: 0.01). */
  momentum: number;
  /** Freeze a weight once its oscillation frequency exceeds this (e.g. 0.02). */
  threshold: number;
}

/** What one tracker update saw. */
export interface FreezeStats {
  /** Weights whose level changed against the direction of their previous change. */
  oscillated: number;
  /** Weights frozen by this update. */
  newlyFrozen: number;
  /** Weights frozen so far. */
  frozen: number;
}

/** Names of the tracker's state arrays, in {@link OscillationTracker.state} order. */
export const TRACKER_ARRAYS = ["level", "direction", "frequency", "average", "frozen"] as const;

/**
 * Per-weight oscillation state of one layer. For each weight i and step t with
 * integer level x_t (x_0 = the first update's levels, nothing counted):
 * - o_t = 1 if x_t != x_{t-1} and sign(x_t - x_{t-1}) = -d, else 0, where d is
 *   the sign of the weight's last non-zero change (0 before any change);
 * - f_t = m o_t + (1 - m) f_{t-1} (f_0 = 0), the oscillation frequency;
 * - a_t = m x_t + (1 - m) a_{t-1} (a_0 = x_0), the average level;
 * - frozen at level round(a_t) once f_t > threshold (then no longer tracked).
 *
 * @example
 * ```ts
 * import { OscillationTracker } from "./oscillation.ts";
 * const t = new OscillationTracker(1, { momentum: 0.5, threshold: 0.4 });
 * t.update(new Float32Array([0]));
 * t.update(new Float32Array([1])); // first change: no oscillation yet
 * const s = t.update(new Float32Array([0])); // back again: f = 0.5 > 0.4, frozen at round(0.25) = 0
 * if (s.oscillated !== 1 || s.frozen !== 1 || t.frozenLevel(0) !== 0) throw new Error();
 * ```
 */
export class OscillationTracker {
  readonly size: number;
  readonly options: FreezeOptions;
  private level: Float32Array;
  private direction: Float32Array;
  private frequency: Float32Array;
  private average: Float32Array;
  private frozen: Float32Array;
  private started = false;

  constructor(size: number, options: FreezeOptions) {
    const { momentum, threshold } = options;
    if (!(momentum > 0 && momentum <= 1)) {
      throw new Error(`freeze: momentum must be in (0, 1], got ${momentum}`);
    }
    if (!(threshold > 0 && threshold < 1)) {
      throw new Error(`freeze: threshold must be in (0, 1), got ${threshold}`);
    }
    this.size = size;
    this.options = options;
    this.level = new Float32Array(size);
    this.direction = new Float32Array(size);
    this.frequency = new Float32Array(size);
    this.average = new Float32Array(size);
    this.frozen = new Float32Array(size);
  }

  /** Whether weight i is frozen. */
  isFrozen(i: number): boolean {
    return this.frozen[i] !== 0;
  }

  /** The level weight i is frozen at (meaningful only when frozen). */
  frozenLevel(i: number): number {
    return this.level[i];
  }

  /** Weight i's oscillation frequency f. */
  frequencyOf(i: number): number {
    return this.frequency[i];
  }

  /** Number of frozen weights. */
  frozenCount(): number {
    let n = 0;
    for (let i = 0; i < this.size; i++) n += this.frozen[i];
    return n;
  }

  /** Takes this step's integer levels of the layer's weights. */
  update(levels: ArrayLike<number>): FreezeStats {
    if (levels.length !== this.size) {
      throw new Error(`freeze: ${levels.length} levels for a tracker of ${this.size} weights`);
    }
    const m = this.options.momentum, th = this.options.threshold;
    if (!this.started) {
      this.level.set(levels);
      this.average.set(levels);
      this.started = true;
      return { oscillated: 0, newlyFrozen: 0, frozen: this.frozenCount() };
    }
    let oscillated = 0, newlyFrozen = 0, frozen = 0;
    for (let i = 0; i < this.size; i++) {
      if (this.frozen[i]) {
        frozen++;
        continue;
      }
      const x = levels[i];
      const change = Math.sign(x - this.level[i]);
      let o = 0;
      if (change !== 0) {
        if (change === -this.direction[i]) o = 1;
        this.direction[i] = change;
      }
      oscillated += o;
      this.frequency[i] = m * o + (1 - m) * this.frequency[i];
      this.average[i] = m * x + (1 - m) * this.average[i];
      this.level[i] = x;
      if (this.frequency[i] > th) {
        this.frozen[i] = 1;
        this.level[i] = Math.round(this.average[i]);
        newlyFrozen++;
        frozen++;
      }
    }
    return { oscillated, newlyFrozen, frozen };
  }

  /** The state as arrays (for checkpoints), in {@link TRACKER_ARRAYS} order; empty before the first update. */
  state(): Float32Array[] {
    if (!this.started) return [];
    return [this.level, this.direction, this.frequency, this.average, this.frozen].map((a) =>
      a.slice()
    );
  }

  /** Restores {@link state}. */
  setState(arrays: Float32Array[]): void {
    if (arrays.length === 0) {
      this.started = false;
      return;
    }
    if (arrays.length !== TRACKER_ARRAYS.length || arrays.some((a) => a.length !== this.size)) {
      throw new Error(`freeze: tracker state does not match a layer of ${this.size} weights`);
    }
    [this.level, this.direction, this.frequency, this.average, this.frozen] = arrays.map((a) =>
      a.slice()
    );
    this.started = true;
  }
}

/**
 * One freezing step on a layer's host weights (after the optimizer step):
 * quantizes them as the forward pass does (`quantizeToInt`: integer codes and
 * channel c's scale s_c and zero point z_c from the current weights), updates
 * the tracker with the codes, then sets every frozen weight to its level's
 * value, w_i = s_c (level_i - z_c). Frozen weights thus ignore their gradient;
 * their value follows the channel's scale. Needs a multi-bit quantizer.
 *
 * @example
 * ```ts
 * import { freezeStep, OscillationTracker } from "./oscillation.ts";
 * const spec = { bits: 2, symmetric: true, perChannel: false, narrowRange: true, steps: 1 };
 * const t = new OscillationTracker(1, { momentum: 0.5, threshold: 0.4 });
 * for (const v of [0.45, 0.55, 0.45]) freezeStep(new Float32Array([v]), [1], spec, t);
 * const w = new Float32Array([0.9]); // pushed towards level 1, but frozen at 0
 * freezeStep(w, [1], spec, t);
 * if (w[0] !== 0) throw new Error();
 * ```
 */
export function freezeStep(
  w: Float32Array,
  shape: number[],
  spec: QuantSpec,
  tracker: OscillationTracker,
): FreezeStats {
  if (spec.bits === 1) throw new Error("freeze: needs a multi-bit quantizer, got 1 bit");
  const x = tf.tensor(w, shape);
  const q = quantizeToInt(x, spec);
  x.dispose();
  const stats = tracker.update(q.codes);
  if (stats.frozen > 0) {
    for (let i = 0; i < w.length; i++) {
      if (tracker.isFrozen(i)) {
        const c = channelIndex(q.shape, q.axis, i);
        w[i] = q.scales[c] * (tracker.frozenLevel(i) - q.zeroPoints[c]);
      }
    }
  }
  return stats;
}

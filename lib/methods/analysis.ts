/**
 * Compression-bottleneck analysis: per-layer quantization error and
 * regularization loss, per-layer sensitivity (the model with only that layer
 * quantized), and a mixed-precision assignment that meets a size budget while
 * keeping the most sensitive layers at higher precision.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { Model } from "../models/model.ts";
import type { QuantSpec } from "../quant/spec.ts";
import { fakeQuantOp } from "../quant/quantizer.ts";
import { layerBytes, weightLayerSizes } from "../quant/layers.ts";
import { regularizer, type RegularizerKind } from "./regularizers.ts";

/** One layer's quantization error. */
export interface LayerErrorRow {
  layer: string;
  params: number;
  bits: number;
  /** mean(((w - Q(w)) / s)^2): squared distance to the grid in steps (the grid regularizer). */
  gridError: number;
  /** ||w - Q(w)||^2 / ||w||^2. */
  relativeError: number;
  /** The chosen regularizer's value R(W). */
  regLoss: number;
}

/**
 * Quantization error of every quantized layer's kernel.
 *
 * @example
 * ```ts
 * import { createModel, smallCnn } from "../models/mod.ts";
 * import { resolveLayerSpecs } from "../quant/layers.ts";
 * import { layerErrors } from "./analysis.ts";
 * const m = createModel(smallCnn(), 1);
 * const rows = layerErrors(m, resolveLayerSpecs(m.arch, { bits: 2 }));
 * if (rows.length !== 5 || !(rows[0].relativeError > 0)) throw new Error();
 * ```
 */
export function layerErrors(
  model: Model,
  specs: Record<string, QuantSpec>,
  kind: RegularizerKind = "grid",
): LayerErrorRow[] {
  const reg = regularizer(kind);
  const grid = regularizer("grid");
  return Object.entries(specs).map(([layer, spec]) =>
    tf.tidy(() => {
      const w = model.params.get(`${layer}/kernel`)!;
      const q = fakeQuantOp(w, spec);
      const rel = tf.div(tf.sum(tf.square(tf.sub(w, q))), tf.maximum(tf.sum(tf.square(w)), 1e-30));
      return {
        layer,
        params: w.size,
        bits: spec.bits,
        gridError: grid(w, spec).dataSync()[0],
        relativeError: rel.dataSync()[0],
        regLoss: kind === "bin" && spec.bits > 6 ? NaN : reg(w, spec).dataSync()[0],
      };
    })
  );
}

/** Sensitivity of one layer at one bit width. */
export interface LayerSensitivity {
  layer: string;
  bits: number;
  accuracy: number;
  loss: number;
  /** Float accuracy minus this accuracy. */
  accuracyDrop: number;
  /** This loss minus the float loss. */
  lossIncrease: number;
}

/**
 * Per-layer sensitivity: for each layer and bit width, the model is evaluated
 * with only that layer's kernel fake-quantized. `evalFn` evaluates the model
 * with a kernel transform (e.g. on a validation subset).
 *
 * @example
 * ```ts ignore
 * const rows = layerSensitivity(specs, [2, 4], (kt) => evaluate(model, val, { kernelTransform: kt }));
 * ```
 */
export function layerSensitivity(
  specs: Record<string, QuantSpec>,
  bitsList: number[],
  evalFn: (
    kernelTransform?: (layer: string, k: tf.Tensor) => tf.Tensor,
  ) => { accuracy: number; loss: number },
): LayerSensitivity[] {
  const base = evalFn();
  const rows: LayerSensitivity[] = [];
  for (const [layer, spec] of Object.entries(specs)) {
    for (const bits of bitsList) {
      const s: QuantSpec = { ...spec, bits, symmetric: bits === 1 ? true : spec.symmetric };
      const r = evalFn((l, k) => (l === layer ? fakeQuantOp(k, s) : k));
      rows.push({
        layer,
        bits,
        accuracy: r.accuracy,
        loss: r.loss,
        accuracyDrop: base.accuracy - r.accuracy,
        lossIncrease: r.loss - base.loss,
      });
    }
  }
  return rows;
}

/** Outcome of {@link assignMixedPrecision}. */
export interface MixedPrecision {
  bits: Record<string, number>;
  bytes: number;
  withinBudget: boolean;
}

/**
 * Greedy mixed-precision assignment: start every layer at its highest
 * candidate bit width, then repeatedly lower the layer whose next step down
 * costs the least sensitivity per byte saved (cost = increase of `score`,
 * e.g. the loss increase measured by {@link layerSensitivity}), until the
 * total bytes (per {@link layerBytes}, plus `overheadBytes`) fit `budgetBytes`.
 * Layers missing from `sensitivity` keep their highest width.
 *
 * @example
 * ```ts
 * import { assignMixedPrecision } from "./analysis.ts";
 * const layers = [{ name: "a", params: 800, channels: 1 }, { name: "b", params: 800, channels: 1 }];
 * const sens = [{ layer: "a", bits: 2, score: 0.5 }, { layer: "a", bits: 8, score: 0 },
 *   { layer: "b", bits: 2, score: 0.01 }, { layer: "b", bits: 8, score: 0 }];
 * const m = assignMixedPrecision(layers, sens, 1100, { bits: 8, symmetric: true, perChannel: true });
 * if (m.bits.a !== 8 || m.bits.b !== 2 || !m.withinBudget) throw new Error(); // the less sensitive layer goes down
 * ```
 */
export function assignMixedPrecision(
  layers: { name: string; params: number; channels: number }[],
  sensitivity: { layer: string; bits: number; score: number }[],
  budgetBytes: number,
  baseSpec: QuantSpec,
  overheadBytes = 0,
): MixedPrecision {
  const options = new Map<string, { bits: number; score: number }[]>();
  for (const s of sensitivity) {
    const o = options.get(s.layer) ?? [];
    o.push({ bits: s.bits, score: s.score });
    options.set(s.layer, o);
  }
  for (const o of options.values()) o.sort((a, b) => b.bits - a.bits);
  const level = new Map<string, number>(); // index into options (0 = highest bits)
  const bytesOf = (name: string, params: number, channels: number) => {
    const o = options.get(name);
    const bits = o ? o[level.get(name) ?? 0].bits : baseSpec.bits;
    return layerBytes(params, channels, { ...baseSpec, bits }).total;
  };
  const total = () =>
    overheadBytes + layers.reduce((a, l) => a + bytesOf(l.name, l.params, l.channels), 0);
  let bytes = total();
  while (bytes > budgetBytes) {
    let best: { name: string; cost: number } | null = null;
    for (const l of layers) {
      const o = options.get(l.name);
      const i = level.get(l.name) ?? 0;
      if (!o || i + 1 >= o.length) continue;
      const saved = layerBytes(l.params, l.channels, { ...baseSpec, bits: o[i].bits }).total -
        layerBytes(l.params, l.channels, { ...baseSpec, bits: o[i + 1].bits }).total;
      if (saved <= 0) continue;
      const cost = (Math.max(0, o[i + 1].score) - Math.max(0, o[i].score)) / saved;
      if (!best || cost < best.cost || (cost === best.cost && l.name < best.name)) {
        best = { name: l.name, cost };
      }
    }
    if (!best) break;
    level.set(best.name, (level.get(best.name) ?? 0) + 1);
    bytes = total();
  }
  const bits: Record<string, number> = {};
  for (const l of layers) {
    const o = options.get(l.name);
    bits[l.name] = o ? o[level.get(l.name) ?? 0].bits : baseSpec.bits;
  }
  return { bits, bytes, withinBudget: bytes <= budgetBytes };
}

export { weightLayerSizes };

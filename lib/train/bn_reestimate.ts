/**
 * BatchNorm re-estimation after quantized fine-tuning (Nagel et al.,
 * "Overcoming Oscillations in Quantization-Aware Training", ICML 2022, §4.1;
 * also AIMET's `reestimate_bn_stats`). While QAT or QGT fine-tunes with live
 * BatchNorm, the moving statistics average batches seen under ever-changing
 * quantized weights (weights that flip between levels shift the layer's
 * output statistics), so they need not match the final weights that get
 * folded and exported. Re-estimation runs the final network (with the
 * kernel transform the export applies, i.e. fake quantization) over a set of
 * images in training mode and replaces each BatchNorm's moving mean and
 * variance by the statistics of that whole set.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type Dataset, datasetSize, makeBatch, type Normalization } from "../data/dataset.ts";
import { forward, type Model } from "../models/model.ts";
import { layerShapes } from "../models/spec.ts";
import { bnLayers } from "./step.ts";

/** Options of {@link reestimateBatchNorm}. */
export interface ReestimateOptions {
  /** Images per forward pass (default 64); use the training batch size (see {@link reestimateBatchNorm}). */
  batchSize?: number;
  /** Replaces a layer's kernel in the forward pass (fake quantization); identity when absent. */
  kernelTransform?: (layer: string, kernel: tf.Tensor) => tf.Tensor;
  /** Input normalization (the dataset default when absent). */
  normalize?: Normalization;
}

/** What {@link reestimateBatchNorm} did. */
export interface ReestimateResult {
  /** Images the statistics were computed on. */
  images: number;
  /** Per BatchNorm layer: the largest |change| of the mean and the largest relative change of the variance. */
  changes: { layer: string; meanChange: number; varianceChange: number }[];
}

/**
 * Sets every BatchNorm's moving statistics to those of all of `ds` (no
 * augmentation), computed in training mode with `kernelTransform` applied:
 * for channel c of layer l, over the P = images x H_l x W_l positions of its
 * pre-BatchNorm output x,
 *   mean_c = (1 / P) sum x,   variance_c = (1 / (P - 1)) sum (x - mean_c)^2
 * (the unbiased variance, as the moving statistics use). The per-batch
 * moments are combined exactly (in float64). As in training (and in PyTorch's
 * or AIMET's re-estimation), each layer's input is normalized with the
 * current batch's statistics, so the first BatchNorm gets the exact
 * statistics of the set and deeper ones depend on the batch size: pass the
 * training batch size. Modifies the model's `mean` and `variance` variables
 * in place; trainable parameters are untouched.
 *
 * @example
 * ```ts
 * import { createModel } from "../models/mod.ts";
 * import { reestimateBatchNorm } from "./bn_reestimate.ts";
 * const arch = { name: "t", inputShape: [4, 4, 1] as [number, number, number], classes: 2, layers: [
 *   { type: "conv2d" as const, name: "c", filters: 2, kernel: 1, stride: 1, padding: "same" as const, bias: false, bn: true, act: "relu" as const },
 *   { type: "gap" as const, name: "g" },
 *   { type: "dense" as const, name: "fc", units: 2, bias: true, act: "none" as const },
 * ] };
 * const m = createModel(arch, 1);
 * const ds = { name: "d", shape: [4, 4, 1] as [number, number, number], classNames: ["a", "b"], images: new Uint8Array(3 * 16).fill(7), labels: new Uint8Array(3) };
 * const r = reestimateBatchNorm(m, ds, { batchSize: 2 });
 * // constant images: every position has the same pre-BatchNorm value, so the variance is 0
 * if (r.images !== 3 || m.params.get("c/variance")!.dataSync().some((v) => Math.abs(v) > 1e-6)) throw new Error();
 * ```
 */
export function reestimateBatchNorm(
  model: Model,
  ds: Dataset,
  opts: ReestimateOptions = {},
): ReestimateResult {
  const layers = bnLayers(model);
  const n = datasetSize(ds);
  if (n < 1) throw new Error(`BatchNorm re-estimation: dataset ${ds.name} has no images`);
  const bs = opts.batchSize ?? 64;
  if (!(Number.isInteger(bs) && bs >= 1)) {
    throw new Error(`BatchNorm re-estimation: batchSize must be a positive integer, got ${bs}`);
  }
  const [h, w, c] = model.arch.inputShape;
  // per layer: sum over batches of n_b mean_b and n_b (var_b + mean_b^2)
  const s1 = new Map<string, Float64Array>(), s2 = new Map<string, Float64Array>();
  for (let start = 0; start < n; start += bs) {
    const idx = Uint32Array.from({ length: Math.min(bs, n - start) }, (_, i) => start + i);
    const b = makeBatch(ds, idx, { normalize: opts.normalize });
    const kept: tf.Tensor[] = [];
    tf.tidy(() => {
      forward(model, tf.tensor4d(b.x, [b.n, h, w, c]), {
        training: true,
        kernelTransform: opts.kernelTransform,
        onBatchStats: (layer, mean, variance) => {
          // the BatchNorm op still uses them; disposed after the pass
          kept.push(mean, variance);
          const m = mean.dataSync(), v = variance.dataSync();
          if (!s1.has(layer)) {
            s1.set(layer, new Float64Array(m.length));
            s2.set(layer, new Float64Array(m.length));
          }
          const a = s1.get(layer)!, q = s2.get(layer)!;
          for (let j = 0; j < m.length; j++) {
            a[j] += b.n * m[j];
            q[j] += b.n * (v[j] + m[j] * m[j]);
          }
        },
      });
    });
    tf.dispose(kept);
  }
  const shapes = layerShapes(model.arch);
  const changes: ReestimateResult["changes"] = [];
  for (const layer of layers) {
    const a = s1.get(layer), q = s2.get(layer);
    if (!a || !q) throw new Error(`internal: BatchNorm ${layer} reported no statistics`);
    const out = shapes.get(layer)!.out;
    const p = n * out[0] * out[1];
    const unbiased = p > 1 ? p / (p - 1) : 1;
    const mean = new Float32Array(a.length), variance = new Float32Array(a.length);
    for (let j = 0; j < a.length; j++) {
      mean[j] = a[j] / n;
      variance[j] = Math.max(0, q[j] / n - (a[j] / n) ** 2) * unbiased;
    }
    const mv = model.params.get(`${layer}/mean`)!, vv = model.params.get(`${layer}/variance`)!;
    const oldM = mv.dataSync(), oldV = vv.dataSync();
    let meanChange = 0, varianceChange = 0;
    for (let j = 0; j < a.length; j++) {
      meanChange = Math.max(meanChange, Math.abs(mean[j] - oldM[j]));
      varianceChange = Math.max(
        varianceChange,
        Math.abs(variance[j] - oldV[j]) / Math.max(Math.abs(oldV[j]), 1e-12),
      );
    }
    tf.tidy(() => {
      mv.assign(tf.tensor1d(mean));
      vv.assign(tf.tensor1d(variance));
    });
    changes.push({ layer, meanChange, varianceChange });
  }
  return { images: n, changes };
}

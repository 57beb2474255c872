/**
 * Evaluation: loss, accuracy and predictions of a model on a dataset, in
 * inference mode (BatchNorm moving statistics), optionally with the same
 * weight/activation transforms as training (fake quantization).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { forward, type Model } from "../models/model.ts";
import { type Dataset, datasetSize, makeBatch, type Normalization } from "../data/dataset.ts";

/** Evaluation outcome. */
export interface EvalResult {
  n: number;
  loss: number;
  accuracy: number;
  /** Predicted class per sample, in dataset order. */
  predictions: Uint8Array;
}

/** Options of {@link evaluate}. */
export interface EvalOptions {
  batchSize?: number;
  normalize?: Normalization;
  kernelTransform?: (layer: string, k: tf.Tensor) => tf.Tensor;
  activationTransform?: (layer: string, y: tf.Tensor) => tf.Tensor;
}

/**
 * Evaluates `model` on every sample of `ds`.
 *
 * @example
 * ```ts
 * import { createModel, smallCnn } from "../models/mod.ts";
 * import { evaluate } from "./evaluate.ts";
 * const ds = { name: "t", shape: [28, 28, 1] as [number, number, number], classNames: "0123456789".split(""),
 *   images: new Uint8Array(3 * 784), labels: new Uint8Array([0, 1, 2]) };
 * const r = evaluate(createModel(smallCnn(), 1), ds);
 * if (r.n !== 3 || r.predictions.length !== 3) throw new Error();
 * ```
 */
export function evaluate(model: Model, ds: Dataset, opts: EvalOptions = {}): EvalResult {
  const n = datasetSize(ds);
  const bs = opts.batchSize ?? 256;
  const [h, w, c] = model.arch.inputShape;
  const predictions = new Uint8Array(n);
  let lossSum = 0, correct = 0;
  for (let s = 0; s < n; s += bs) {
    const idx = Uint32Array.from({ length: Math.min(bs, n - s) }, (_, i) => s + i);
    const b = makeBatch(ds, idx, { normalize: opts.normalize });
    const [loss, pred] = tf.tidy(() => {
      const x = tf.tensor4d(b.x, [b.n, h, w, c]);
      const logits = forward(model, x, {
        kernelTransform: opts.kernelTransform,
        activationTransform: opts.activationTransform,
      });
      const y = tf.tensor1d(b.y, "int32");
      const l = tf.losses.softmaxCrossEntropy(tf.oneHot(y, model.arch.classes), logits);
      return [l.dataSync()[0], tf.argMax(logits, 1).dataSync()];
    });
    lossSum += loss * b.n;
    for (let i = 0; i < b.n; i++) {
      predictions[s + i] = pred[i];
      if (pred[i] === b.y[i]) correct++;
    }
  }
  return { n, loss: n ? lossSum / n : NaN, accuracy: n ? correct / n : NaN, predictions };
}

/**
 * Post-training quantization of a BatchNorm-folded network, the one path
 * every quantized variant ends with (PTQ directly; QAT and QGT after their
 * fine-tuning): activation calibration, snapping the weights onto their
 * grids (codes and float16 scales, as exported), and snapping the biases
 * onto the int32 grid of the integer model. Quantized deployment always works
 * on the folded network (`foldBatchNorm`), so the weights that are quantized
 * are the deployed ones.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { forward, type Model } from "../models/model.ts";
import { isWeightLayer, layerInputs, type LayerSpec } from "../models/spec.ts";
import {
  type Dataset,
  datasetSize,
  DEFAULT_NORMALIZATION,
  makeBatch,
  type Normalization,
} from "../data/dataset.ts";
import { dequantize, type QuantizedTensor, quantizeToInt } from "../quant/quantizer.ts";
import type { QuantSpec } from "../quant/spec.ts";
import { roundFloat16 } from "../quant/fp16.ts";
import { CALIBRATION_IMAGES, rangeParams } from "../quant/range.ts";

/**
 * Activation ranges of every weight layer with an activation: ReLU6 layers
 * get their fixed range [0, 6]; others are observed on the first `samples`
 * images of `ds`, as the overall min/max (`method: "minmax"`, the default) or
 * as an exponential moving average of per-batch min/max (`"ema"`, momentum
 * 0.9, as TensorFlow's QAT observers track ranges). The logit layer is not listed.
 *
 * @example
 * ```ts ignore
 * const ranges = calibrateActivations(model, trainSet, { samples: 512 });
 * ```
 */
export function calibrateActivations(
  model: Model,
  ds: Dataset,
  opts: {
    samples?: number;
    batchSize?: number;
    normalize?: Normalization;
    method?: "minmax" | "ema";
  } = {},
): Record<string, [number, number]> {
  const ema = opts.method === "ema";
  // every output an integer model keeps in int8: weight layers' and residual sums' (not the logits)
  const all = model.arch.layers;
  const layers = all.filter((l) =>
    (isWeightLayer(l) || l.type === "add") && l !== all[all.length - 1]
  ) as { name: string; act: string }[];
  const ranges: Record<string, [number, number]> = {};
  const observe = layers.filter((l) => l.act !== "relu6").map((l) => l.name);
  for (const l of layers) if (l.act === "relu6") ranges[l.name] = [0, 6];
  if (observe.length) {
    const n = Math.min(datasetSize(ds), opts.samples ?? CALIBRATION_IMAGES);
    const bs = opts.batchSize ?? 128;
    const [h, w, c] = model.arch.inputShape;
    const lo: Record<string, number> = {}, hi: Record<string, number> = {};
    for (let s = 0; s < n; s += bs) {
      const b = makeBatch(ds, Uint32Array.from({ length: Math.min(bs, n - s) }, (_, i) => s + i), {
        normalize: opts.normalize,
      });
      tf.tidy(() => {
        forward(model, tf.tensor4d(b.x, [b.n, h, w, c]), {
          onLayerOutput: (name, y) => {
            if (!observe.includes(name)) return;
            const l = tf.min(y).dataSync()[0], u = tf.max(y).dataSync()[0];
            if (lo[name] === undefined) [lo[name], hi[name]] = [l, u];
            else if (ema) {
              [lo[name], hi[name]] = [0.9 * lo[name] + 0.1 * l, 0.9 * hi[name] + 0.1 * u];
            } else [lo[name], hi[name]] = [Math.min(lo[name], l), Math.max(hi[name], u)];
          },
        });
      });
    }
    for (const name of observe) ranges[name] = [lo[name], hi[name]];
  }
  return ranges;
}

/**
 * Snaps each listed layer's kernel onto its grid in place (the model then
 * holds the dequantized weights) and returns the integer codes and scales,
 * which export uses as they are. The codes are those of the training-time
 * grid (the spec's scales in float32, exactly what fake quantization used);
 * only the stored scales are then rounded to float16, as the exported file
 * keeps them. Recomputing the codes with the rounded scales instead would move
 * weights that sit on a rounding boundary (as oscillating weights do after
 * quantization-aware training) to the other level: one such weight in a
 * 2-bit first layer cost 3.5 points on Fashion-MNIST.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createModel, smallCnn } from "../models/mod.ts";
 * import { snapWeights } from "./ptq.ts";
 * const m = createModel(smallCnn(), 1);
 * const spec = { bits: 2, symmetric: true, perChannel: true, axis: 3 };
 * const q = snapWeights(m, { conv1: spec });
 * if (q.conv1.codes.some((c) => c < -2 || c > 1)) throw new Error();
 * tf.dispose([...m.params.values()]);
 * ```
 */
export function snapWeights(
  model: Model,
  specs: Record<string, QuantSpec>,
): Record<string, QuantizedTensor> {
  const out: Record<string, QuantizedTensor> = {};
  for (const [layer, spec] of Object.entries(specs)) {
    const v = model.params.get(`${layer}/kernel`);
    if (!v) throw new Error(`snap: no weight layer ${layer}`);
    const trained = quantizeToInt(v, spec);
    // deployed scales are float16; the codes (and zero points) stay those of training
    const q: QuantizedTensor = {
      ...trained,
      scales: Float32Array.from(trained.scales, (x) => Math.max(roundFloat16(x), 2 ** -24)),
    };
    tf.tidy(() => v.assign(tf.tensor(dequantize(q), v.shape)));
    out[layer] = q;
  }
  return out;
}

/** A quantized network: the folded model (snapped in place) and what export needs. */
export interface QuantizedModel {
  model: Model;
  /** Integer codes, float16 scales and zero points per weight layer. */
  weights: Record<string, QuantizedTensor>;
  /** The folded kernels just before snapping (how close to the grid training left them). */
  latent: Record<string, Float32Array>;
  /** Ranges of the weight layers' outputs and of pooling layers (their input's); {} for float activations. */
  activationRanges: Record<string, [number, number]>;
}

/**
 * Quantizes a BatchNorm-folded network in place: activation ranges (given,
 * or calibrated on the first CALIBRATION_IMAGES (512) images of `calibration`; ReLU6 layers use
 * [0, 6]), then every layer in `specs` snapped onto its grid
 * ({@link snapWeights}), then the biases onto the int32 grid of the integer
 * model ({@link snapBiases}). With `activationBits: "float"` activations keep
 * no ranges and biases stay float. This is post-training quantization, and
 * the last step of every QAT and QGT variant.
 *
 * @example
 * ```ts
 * import { createModel, foldBatchNorm, smallCnn } from "../models/mod.ts";
 * import { quantizeModel } from "./ptq.ts";
 * const m = foldBatchNorm(createModel(smallCnn(), 1));
 * const spec = { bits: 2, symmetric: true, perChannel: true, axis: 3 };
 * const q = quantizeModel(m, { conv1: spec }, { activationBits: "float" });
 * if (q.weights.conv1.codes.some((c) => c < -2 || c > 1) || !q.latent.conv1) throw new Error();
 * ```
 */
export function quantizeModel(
  folded: Model,
  specs: Record<string, QuantSpec>,
  o: {
    activationBits?: number | "float";
    ranges?: Record<string, [number, number]>;
    calibration?: Dataset;
    normalize?: Normalization;
  } = {},
): QuantizedModel {
  const bits = o.activationBits ?? 8;
  let ranges: Record<string, [number, number]> = {};
  if (bits !== "float") {
    if (o.ranges) ranges = o.ranges;
    else {
      const all = folded.arch.layers;
      const observed = all.some((l) =>
        (isWeightLayer(l) || l.type === "add") && l !== all[all.length - 1] && l.act !== "relu6"
      );
      if (observed && !o.calibration) {
        throw new Error("quantizeModel: activation ranges need calibration images or ranges");
      }
      ranges = withPassThroughRanges(
        folded.arch,
        calibrateActivations(folded, o.calibration ?? EMPTY, { normalize: o.normalize }),
      );
    }
  }
  const latent: Record<string, Float32Array> = {};
  for (const layer of Object.keys(specs)) {
    latent[layer] = folded.params.get(`${layer}/kernel`)!.dataSync().slice() as Float32Array;
  }
  const weights = snapWeights(folded, specs);
  if (bits !== "float") {
    const inputScale = 1 / (255 * (o.normalize ?? DEFAULT_NORMALIZATION).std);
    snapBiases(folded, weights, ranges, inputScale, bits);
  }
  return { model: folded, weights, latent, activationRanges: ranges };
}

/** No images: calibration of a network whose activations are all ReLU6 needs none. */
const EMPTY: Dataset = {
  name: "none",
  shape: [1, 1, 1],
  classNames: [],
  images: new Uint8Array(0),
  labels: new Uint8Array(0),
};

/**
 * Adds ranges for layers that keep their input's quantization (global average
 * pooling, max pooling): each gets the range of the weight layer before it.
 *
 * @example
 * ```ts
 * import { withPassThroughRanges } from "./ptq.ts";
 * import { smallCnn } from "../models/zoo.ts";
 * const r = withPassThroughRanges(smallCnn(), { conv4: [0, 3] });
 * if (r.gap[1] !== 3 || r.pool2[1] !== 3) throw new Error();
 * ```
 */
export function withPassThroughRanges(
  arch: { layers: LayerSpec[] },
  ranges: Record<string, [number, number]>,
): Record<string, [number, number]> {
  const out = { ...ranges };
  const inputs = layerInputs(arch);
  for (const l of arch.layers) {
    const from = out[inputs.get(l.name)![0]];
    if ((l.type === "gap" || l.type === "maxpool") && from) out[l.name] = from;
  }
  return out;
}

/**
 * Snaps each quantized layer's (folded) bias onto the int32 grid the exported
 * model uses, b = round(b / (s_in s_w[c])) s_in s_w[c], with s_in the scale
 * of the layer's int8 input (the network input's, then each activation
 * range's), so the simulation and the integer model add the same biases.
 *
 * @example
 * ```ts ignore
 * snapBiases(folded, weights, ranges, 1 / 128);
 * ```
 */
export function snapBiases(
  model: Model,
  weights: Record<string, QuantizedTensor>,
  ranges: Record<string, [number, number]>,
  inputScale: number,
  activationBits = 8,
): void {
  const inputs = layerInputs(model.arch);
  const all = withPassThroughRanges(model.arch, ranges);
  for (const l of model.arch.layers) {
    if (!isWeightLayer(l)) continue;
    // the scale of the int8 tensor this layer reads: the network input's or its producer's range
    const from = all[inputs.get(l.name)![0]];
    const sIn = from
      ? Math.fround(rangeParams(from[0], from[1], activationBits).scale)
      : Math.fround(inputScale);
    const q = weights[l.name];
    const b = model.params.get(`${l.name}/bias`);
    if (q && b) {
      const v = b.dataSync() as Float32Array;
      const out = new Float32Array(v.length);
      for (let c = 0; c < v.length; c++) {
        const unit = sIn * q.scales[q.scales.length === 1 ? 0 : c];
        out[c] = Math.round(v[c] / unit) * unit;
      }
      tf.tidy(() => b.assign(tf.tensor(out, b.shape)));
    }
  }
}

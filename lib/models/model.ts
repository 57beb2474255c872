/**
 * A network instance: its spec plus named tf.Variables, and the forward pass.
 *
 * Parameter keys are `<layer>/<param>` with param one of `kernel`, `bias`,
 * `gamma`, `beta` (trainable) and `mean`, `variance` (BatchNorm moving
 * statistics, not trainable). Kernels are HWIO for convolutions
 * ([kh, kw, cin, cout]), [kh, kw, c, 1] for depthwise and [in, out] for dense.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { deriveSeed, rng } from "../util/random.ts";
import { batchNormActTrain } from "./bn_act.ts";
import {
  type Activation,
  type ArchSpec,
  isWeightLayer,
  layerInputs,
  layerShapes,
  NETWORK_INPUT,
} from "./spec.ts";

/** BatchNorm epsilon (the Keras default). */
export const BN_EPSILON = 1e-3;
/**
 * Default moving statistics update m <- momentum * m + (1 - momentum) * batch.
 * 0.9 is PyTorch's default (its "momentum=0.1"); Keras's 0.99 leaves the
 * statistics of short runs far from the data.
 */
export const BN_MOMENTUM = 0.9;

/** A network: spec + parameters. */
export interface Model {
  arch: ArchSpec;
  params: Map<string, tf.Variable>;
}

/** Names of trainable params. */
export const TRAINABLE = new Set(["kernel", "bias", "gamma", "beta"]);

/**
 * Creates a variable from a tensor made by `make`, leaving no other tensor behind.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { newVariable } from "./model.ts";
 * const n = tf.memory().numTensors;
 * const v = newVariable(() => tf.zeros([2]));
 * if (tf.memory().numTensors !== n + 1) throw new Error();
 * v.dispose();
 * ```
 */
export function newVariable(make: () => tf.Tensor, trainable = true): tf.Variable {
  return tf.tidy(() => tf.variable(make(), trainable));
}

/**
 * Creates a model with seeded Glorot-uniform kernels (the Keras default),
 * zero biases and BatchNorm gamma=1, beta=0, mean=0, variance=1. The same
 * seed gives the same weights on every backend.
 *
 * @example
 * ```ts
 * import { createModel } from "./model.ts";
 * import { smallCnn } from "./zoo.ts";
 * const m = createModel(smallCnn(), 1);
 * if (m.params.get("conv1/kernel")!.shape.join() !== "3,3,1,32") throw new Error();
 * ```
 */
export function createModel(arch: ArchSpec, seed: number): Model {
  const shapes = layerShapes(arch);
  const params = new Map<string, tf.Variable>();
  for (const l of arch.layers) {
    if (!isWeightLayer(l)) continue;
    const s = shapes.get(l.name)!.params;
    const k = s.kernel;
    const size = k.reduce((a, b) => a * b, 1);
    let fanIn: number, fanOut: number;
    if (k.length === 4) {
      const rf = k[0] * k[1];
      fanIn = rf * k[2];
      fanOut = rf * k[3];
    } else {
      fanIn = k[0];
      fanOut = k[1];
    }
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    const r = rng(deriveSeed(seed, `init/${l.name}`));
    const w = new Float32Array(size);
    for (let i = 0; i < size; i++) w[i] = r.uniform(-limit, limit);
    params.set(`${l.name}/kernel`, newVariable(() => tf.tensor(w, k)));
    if (s.bias) params.set(`${l.name}/bias`, newVariable(() => tf.zeros(s.bias!)));
    if (s.bn) {
      params.set(`${l.name}/gamma`, newVariable(() => tf.ones(s.bn!)));
      params.set(`${l.name}/beta`, newVariable(() => tf.zeros(s.bn!)));
      params.set(`${l.name}/mean`, newVariable(() => tf.zeros(s.bn!), false));
      params.set(`${l.name}/variance`, newVariable(() => tf.ones(s.bn!), false));
    }
  }
  return { arch, params };
}

/**
 * The trainable parameters in a fixed order (layer order, then kernel, bias,
 * gamma, beta).
 *
 * @example
 * ```ts
 * import { createModel, trainableParams } from "./model.ts";
 * import { smallCnn } from "./zoo.ts";
 * if (trainableParams(createModel(smallCnn(), 1))[0][0] !== "conv1/kernel") throw new Error();
 * ```
 */
export function trainableParams(model: Model): [string, tf.Variable][] {
  return [...model.params].filter(([k]) => TRAINABLE.has(k.split("/")[1]));
}

/**
 * Counts trainable parameters.
 *
 * @example
 * ```ts
 * import { countParams, createModel } from "./model.ts";
 * import { smallCnn } from "./zoo.ts";
 * if (countParams(createModel(smallCnn(), 1)) !== 65834) throw new Error();
 * ```
 */
export function countParams(model: Model): number {
  return trainableParams(model).reduce((a, [, v]) => a + v.size, 0);
}

/** Options of {@link forward}. */
export interface ForwardOptions {
  /** Training mode: BatchNorm uses batch statistics and reports them. */
  training?: boolean;
  /** Replaces a layer's kernel before use (fake quantization); identity when absent. */
  kernelTransform?: (layer: string, kernel: tf.Tensor) => tf.Tensor;
  /** Applied to each weight layer's output after its activation and to global pooling's output (activation fake quantization). */
  activationTransform?: (layer: string, y: tf.Tensor) => tf.Tensor;
  /** Receives the batch mean/variance of each BatchNorm in training mode. */
  onBatchStats?: (layer: string, mean: tf.Tensor1D, variance: tf.Tensor1D) => void;
  /** Called with every layer's output (for analysis); the tensor is owned by the caller's scope. */
  onLayerOutput?: (layer: string, y: tf.Tensor) => void;
}

function activate(x: tf.Tensor, act: Activation): tf.Tensor {
  switch (act) {
    case "relu":
      return tf.relu(x);
    case "relu6":
      return tf.clipByValue(x, 0, 6);
    default:
      return x;
  }
}

/**
 * Runs the network on a batch [N, H, W, C] and returns logits [N, classes].
 * Call inside `tf.tidy` (or a gradient function); it creates intermediates.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createModel, forward } from "./model.ts";
 * import { smallCnn } from "./zoo.ts";
 * const m = createModel(smallCnn(), 1);
 * const y = tf.tidy(() => forward(m, tf.zeros([2, 28, 28, 1])));
 * if (y.shape.join() !== "2,10") throw new Error();
 * ```
 */
export function forward(model: Model, x: tf.Tensor, opts: ForwardOptions = {}): tf.Tensor2D {
  const p = model.params;
  let h = x;
  // a chain reads the layer before; a layer naming its inputs (a residual block) reads those
  const branches = model.arch.layers.some((l) => l.inputs);
  const inputs = branches ? layerInputs(model.arch) : null;
  const outputs = new Map<string, tf.Tensor>([[NETWORK_INPUT, x]]);
  for (const l of model.arch.layers) {
    if (inputs) h = outputs.get(inputs.get(l.name)![0])!;
    switch (l.type) {
      case "conv2d":
      case "depthwise2d": {
        let k = p.get(`${l.name}/kernel`)! as tf.Tensor;
        if (opts.kernelTransform) k = opts.kernelTransform(l.name, k);
        if (!opts.training && !l.bn && l.bias) {
          // inference of a folded layer: one fused conv + bias + activation kernel
          const args = {
            x: h as tf.Tensor4D,
            filter: k as tf.Tensor4D,
            strides: l.stride,
            pad: l.padding,
            bias: p.get(`${l.name}/bias`)!,
            activation: l.act === "none" ? "linear" as const : l.act,
          };
          h = l.type === "conv2d" ? tf.fused.conv2d(args) : tf.fused.depthwiseConv2d(args);
          if (opts.activationTransform) h = opts.activationTransform(l.name, h);
          break;
        }
        h = l.type === "conv2d"
          ? tf.conv2d(h as tf.Tensor4D, k as tf.Tensor4D, l.stride, l.padding)
          : tf.depthwiseConv2d(h as tf.Tensor4D, k as tf.Tensor4D, l.stride, l.padding);
        if (l.bias) h = tf.add(h, p.get(`${l.name}/bias`)!);
        if (l.bn && opts.training) {
          h = batchNormActTrain(
            h,
            p.get(`${l.name}/gamma`)!,
            p.get(`${l.name}/beta`)!,
            l.act,
            BN_EPSILON,
            // without a listener the statistics are not kept (disposing them here would free the
            // variance batchNormActTrain still normalises with)
            opts.onBatchStats ? (m, v) => opts.onBatchStats!(l.name, m, v) : undefined,
          );
        } else {
          if (l.bn) h = batchNormInfer(model, l.name, h);
          h = activate(h, l.act);
        }
        if (opts.activationTransform) h = opts.activationTransform(l.name, h);
        break;
      }
      case "maxpool":
        h = tf.maxPool(h as tf.Tensor4D, l.size, l.stride, "valid");
        break;
      case "gap":
        h = tf.mean(h, [1, 2]);
        // an integer model rounds the average back onto its input's grid
        if (opts.activationTransform) h = opts.activationTransform(l.name, h);
        break;
      case "dense": {
        let k = p.get(`${l.name}/kernel`)! as tf.Tensor;
        if (opts.kernelTransform) k = opts.kernelTransform(l.name, k);
        h = tf.matMul(h as tf.Tensor2D, k as tf.Tensor2D);
        if (l.bias) h = tf.add(h, p.get(`${l.name}/bias`)!);
        h = activate(h, l.act);
        if (opts.activationTransform && l.act !== "none") h = opts.activationTransform(l.name, h);
        break;
      }
      case "add": {
        const [a, b] = inputs!.get(l.name)!.map((n) => outputs.get(n)!);
        h = activate(tf.add(a, b), l.act);
        if (opts.activationTransform) h = opts.activationTransform(l.name, h);
        break;
      }
    }
    opts.onLayerOutput?.(l.name, h);
    if (inputs) outputs.set(l.name, h);
  }
  return h as tf.Tensor2D;
}

function batchNormInfer(model: Model, name: string, h: tf.Tensor): tf.Tensor {
  const p = model.params;
  return tf.batchNorm(
    h as tf.Tensor4D,
    p.get(`${name}/mean`)!,
    p.get(`${name}/variance`)!,
    p.get(`${name}/beta`)!,
    p.get(`${name}/gamma`)!,
    BN_EPSILON,
  );
}

/**
 * Updates BatchNorm moving statistics in place from one batch's statistics:
 * m <- momentum m + (1 - momentum) mean_batch,
 * v <- momentum v + (1 - momentum) var_batch * count / (count - 1)
 * (the unbiased variance, as Keras and PyTorch use).
 *
 * @example
 * ```ts
 * import { updateMovingStats } from "./model.ts";
 * const m = new Float32Array([0]), v = new Float32Array([1]);
 * updateMovingStats(m, v, new Float32Array([1]), new Float32Array([1]), 2, 0.5);
 * if (m[0] !== 0.5 || v[0] !== 1.5) throw new Error();
 * ```
 */
export function updateMovingStats(
  mean: Float32Array,
  variance: Float32Array,
  batchMean: Float32Array,
  batchVar: Float32Array,
  count: number,
  momentum: number = BN_MOMENTUM,
): void {
  const unbiased = count > 1 ? count / (count - 1) : 1;
  for (let j = 0; j < mean.length; j++) {
    mean[j] = momentum * mean[j] + (1 - momentum) * batchMean[j];
    variance[j] = momentum * variance[j] + (1 - momentum) * batchVar[j] * unbiased;
  }
}

/**
 * Copies all parameter values out as plain arrays (for checkpoints, workers
 * and bit-identity checks).
 *
 * @example
 * ```ts
 * import { createModel, getWeights } from "./model.ts";
 * import { smallCnn } from "./zoo.ts";
 * if (getWeights(createModel(smallCnn(), 1))["fc/bias"].length !== 10) throw new Error();
 * ```
 */
export function getWeights(model: Model): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [k, v] of model.params) out[k] = v.dataSync() as Float32Array;
  return out;
}

/**
 * Sets parameter values from plain arrays; every key must exist with the right size.
 *
 * @example
 * ```ts
 * import { createModel, getWeights, setWeights } from "./model.ts";
 * import { smallCnn } from "./zoo.ts";
 * const a = createModel(smallCnn(), 1), b = createModel(smallCnn(), 2);
 * setWeights(b, getWeights(a));
 * if (getWeights(b)["conv1/kernel"][0] !== getWeights(a)["conv1/kernel"][0]) throw new Error();
 * ```
 */
export function setWeights(model: Model, w: Record<string, Float32Array | number[]>): void {
  for (const [k, v] of model.params) {
    const src = w[k];
    if (!src) throw new Error(`weights: missing ${k}`);
    if (src.length !== v.size) {
      throw new Error(`weights: ${k} has ${src.length} values, expected ${v.size}`);
    }
    tf.tidy(() => v.assign(tf.tensor(src, v.shape)));
  }
}

/**
 * Disposes all parameter variables.
 *
 * @example
 * ```ts
 * import { createModel, disposeModel } from "./model.ts";
 * import { smallCnn } from "./zoo.ts";
 * disposeModel(createModel(smallCnn(), 1));
 * ```
 */
export function disposeModel(model: Model): void {
  for (const v of model.params.values()) v.dispose();
  model.params.clear();
}

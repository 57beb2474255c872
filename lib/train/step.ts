/**
 * One gradient computation: the loss of a batch (softmax cross-entropy plus
 * any extra terms) and its gradients with respect to the trainable variables.
 * Runs on whatever tfjs backend is active; `engine.ts` runs one of these per
 * thread (the calling one and a worker) for data parallelism.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { forward, type ForwardOptions, type Model, TRAINABLE } from "../models/model.ts";
import type { Batch } from "../data/dataset.ts";
import { profilePhase } from "../backend/profile.ts";

/** What an extra loss term sees. */
export interface LossContext {
  model: Model;
  logits: tf.Tensor2D;
  labels: tf.Tensor1D;
  /** Per-step values from the loop (e.g. `lambda` of a regularizer schedule). */
  vars: Record<string, number>;
}

/** An extra loss term: returns a scalar added to the loss. */
export type LossTerm = (ctx: LossContext) => tf.Scalar;

/**
 * How a training step differs from plain float training: weight/activation
 * transforms in the forward pass (fake quantization), extra loss terms
 * (regularizers) and extra trainable variables (learned quantizer scales).
 */
export interface StepSetup {
  kernelTransform?: (layer: string, kernel: tf.Tensor, vars: Record<string, number>) => tf.Tensor;
  activationTransform?: (layer: string, y: tf.Tensor, vars: Record<string, number>) => tf.Tensor;
  extraLoss?: Record<string, LossTerm>;
  extraVars?: [string, tf.Variable][];
  /** Learning-rate multiplier of the extra variables (default 1; the optimizer's lr times this). */
  extraLrScale?: number;
  /**
   * Runs on the host after each optimizer step with the updated parameters
   * (by variable name, e.g. `conv1/kernel`), the step's learning rate and
   * vars; changes the arrays in place (e.g. a decoupled pull onto the grid).
   * Only the main thread's setup runs it; workers only compute gradients.
   * May return statistics, reported with the step's loss terms.
   */
  postStep?: (
    params: Map<string, Float32Array>,
    lr: number,
    vars: Record<string, number>,
  ) => Record<string, number> | void;
  /** State the post-step hook keeps between steps (saved in checkpoints with the optimizer's). */
  state?: () => Float32Array[];
  /** Restores {@link state}. */
  setState?: (arrays: Float32Array[]) => void;
  dispose?: () => void;
}

/**
 * A serialisable reference to a step setup: a module URL exporting
 * `createStepSetup(model, options): StepSetup`. Workers import it to build the
 * same setup as the main thread.
 */
export interface SetupRef {
  module: string;
  options: unknown;
}

/** Result of one gradient computation, as plain arrays. */
export interface GradResult {
  n: number;
  /** Total loss (mean cross-entropy + extra terms). */
  loss: number;
  /** Each term's value: `ce` and one per extra term. */
  terms: Record<string, number>;
  /** Correctly classified samples of the batch. */
  correct: number;
  /** Gradients in the order of {@link stateVariables}' trainable entries. */
  grads: Float32Array[];
  /** BatchNorm batch statistics: for each BN layer in order, mean then variance. */
  bnStats: Float32Array[];
}

/**
 * Resolves a {@link SetupRef} by importing its module.
 *
 * @example
 * ```ts ignore
 * const setup = await loadSetup(model, { module: "../methods/training_setup.ts", options: {} });
 * ```
 */
export async function loadSetup(model: Model, ref: SetupRef | undefined): Promise<StepSetup> {
  if (!ref) return {};
  const mod = await import(ref.module);
  if (typeof mod.createStepSetup !== "function") {
    throw new Error(`step setup ${ref.module}: does not export createStepSetup`);
  }
  return mod.createStepSetup(model, ref.options) as StepSetup;
}

/**
 * All state variables of a model plus a setup's extra variables, in a fixed
 * order, each flagged trainable or not (BatchNorm statistics are not).
 *
 * @example
 * ```ts
 * import { createModel, smallCnn } from "../models/mod.ts";
 * import { stateVariables } from "./step.ts";
 * const s = stateVariables(createModel(smallCnn(), 1), {});
 * if (s.filter((v) => v.trainable).length !== 14) throw new Error();
 * ```
 */
export function stateVariables(
  model: Model,
  setup: StepSetup,
): { name: string; v: tf.Variable; trainable: boolean }[] {
  const out = [...model.params].map(([name, v]) => ({
    name,
    v,
    trainable: TRAINABLE.has(name.split("/")[1]),
  }));
  for (const [name, v] of setup.extraVars ?? []) out.push({ name, v, trainable: true });
  return out;
}

/**
 * Names of the BatchNorm layers of a model, in order.
 *
 * @example
 * ```ts
 * import { createModel, smallCnn } from "../models/mod.ts";
 * import { bnLayers } from "./step.ts";
 * // the four convolutions have BatchNorm, the dense head has not
 * if (bnLayers(createModel(smallCnn(), 1)).length !== 4) throw new Error();
 * ```
 */
export function bnLayers(model: Model): string[] {
  return model.arch.layers.filter((l) => "bn" in l && l.bn).map((l) => l.name);
}

/**
 * A setup's weight and activation transforms with a step's vars bound, in the
 * form {@link forward} and `evaluate` take them (absent when the setup has none).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { boundTransforms } from "./step.ts";
 * const t = boundTransforms({ kernelTransform: (_l, k, v) => tf.mul(k, v.lambda) }, { lambda: 3 });
 * if (t.kernelTransform!("conv1", tf.scalar(2)).dataSync()[0] !== 6) throw new Error();
 * if (t.activationTransform !== undefined) throw new Error();
 * ```
 */
export function boundTransforms(
  setup: StepSetup,
  vars: Record<string, number>,
): Pick<ForwardOptions, "kernelTransform" | "activationTransform"> {
  const { kernelTransform: k, activationTransform: a } = setup;
  return {
    kernelTransform: k ? (l, t) => k(l, t, vars) : undefined,
    activationTransform: a ? (l, y) => a(l, y, vars) : undefined,
  };
}

/**
 * Computes loss, accuracy and gradients for one batch on the active backend.
 * Leaves no tensors behind.
 *
 * @example
 * ```ts
 * import { createModel, smallCnn } from "../models/mod.ts";
 * import { computeGrads } from "./step.ts";
 * const m = createModel(smallCnn(), 1);
 * const r = computeGrads(m, {}, { x: new Float32Array(2 * 784), y: new Int32Array([0, 1]), n: 2 }, {});
 * if (!(r.loss > 0) || r.grads.length !== 14) throw new Error();
 * ```
 */
export function computeGrads(
  model: Model,
  setup: StepSetup,
  batch: Batch,
  vars: Record<string, number>,
): GradResult {
  const [h, w, c] = model.arch.inputShape;
  const state = stateVariables(model, setup);
  const trainVars = state.filter((s) => s.trainable).map((s) => s.v);
  const bn = bnLayers(model);
  const stats = new Map<string, [tf.Tensor, tf.Tensor]>();
  const termTensors: Record<string, tf.Scalar> = {};
  let logitsKept: tf.Tensor | null = null;
  const x = tf.tensor4d(batch.x, [batch.n, h, w, c]);
  const labels = tf.tensor1d(batch.y, "int32");
  // kernels run inside the callback are the forward pass; the rest of variableGrads is backward
  const { value, grads } = profilePhase(
    "backward",
    () => tf.variableGrads(() => profilePhase("forward", () => lossOf()), trainVars),
  );
  function lossOf(): tf.Scalar {
    const logits = forward(model, x, {
      training: true,
      ...boundTransforms(setup, vars),
      onBatchStats: (l, m, v) => stats.set(l, [tf.keep(m), tf.keep(v)]),
    });
    logitsKept = tf.keep(logits);
    const onehot = tf.oneHot(labels, model.arch.classes);
    let loss = tf.losses.softmaxCrossEntropy(onehot, logits) as tf.Scalar;
    termTensors.ce = tf.keep(loss);
    for (const [name, term] of Object.entries(setup.extraLoss ?? {})) {
      const t = profilePhase("regularizer", () => term({ model, logits, labels, vars }));
      termTensors[name] = tf.keep(t);
      loss = tf.add(loss, t);
    }
    return loss;
  }
  const gradArrays = profilePhase(
    "readback",
    () => trainVars.map((v) => grads[v.name].dataSync() as Float32Array),
  );
  const correct = tf.tidy(() =>
    tf.sum(tf.cast(tf.equal(tf.argMax(logitsKept!, 1), labels), "int32")).dataSync()[0]
  );
  const bnStats: Float32Array[] = [];
  for (const l of bn) {
    const s = stats.get(l);
    if (!s) throw new Error(`internal: no batch statistics for ${l}`);
    bnStats.push(s[0].dataSync() as Float32Array, s[1].dataSync() as Float32Array);
  }
  const terms: Record<string, number> = {};
  for (const [k, t] of Object.entries(termTensors)) terms[k] = t.dataSync()[0];
  const loss = value.dataSync()[0];
  tf.dispose([
    x,
    labels,
    value,
    logitsKept!,
    ...Object.values(grads),
    ...Object.values(termTensors),
  ]);
  for (const [m, v] of stats.values()) tf.dispose([m, v]);
  return { n: batch.n, loss, terms, correct, grads: gradArrays, bnStats };
}

/**
 * Combines results of shards of one batch as if it were computed at once:
 * gradients, loss and terms weighted by shard size; BatchNorm means averaged
 * and variances combined with the between-shard spread
 * (var = sum n_i (var_i + (mean_i - mean)^2) / N).
 *
 * @example
 * ```ts
 * import { combineResults } from "./step.ts";
 * const a = { n: 1, loss: 1, terms: { ce: 1 }, correct: 1, grads: [new Float32Array([2])], bnStats: [new Float32Array([0]), new Float32Array([1])] };
 * const b = { n: 1, loss: 3, terms: { ce: 3 }, correct: 0, grads: [new Float32Array([4])], bnStats: [new Float32Array([2]), new Float32Array([1])] };
 * const r = combineResults([a, b]);
 * if (r.loss !== 2 || r.grads[0][0] !== 3 || r.bnStats[1][0] !== 2) throw new Error();
 * ```
 */
export function combineResults(parts: GradResult[]): GradResult {
  if (parts.length === 1) return parts[0];
  const live = parts.filter((p) => p.n > 0);
  const n = live.reduce((a, p) => a + p.n, 0);
  const wts = live.map((p) => p.n / n);
  const grads = live[0].grads.map((g, i) => {
    const out = new Float32Array(g.length);
    live.forEach((p, k) => {
      const gi = p.grads[i], wk = wts[k];
      for (let j = 0; j < out.length; j++) out[j] += wk * gi[j];
    });
    return out;
  });
  const bnStats: Float32Array[] = [];
  for (let i = 0; i < live[0].bnStats.length; i += 2) {
    const len = live[0].bnStats[i].length;
    const mean = new Float32Array(len), variance = new Float32Array(len);
    for (let j = 0; j < len; j++) {
      let m = 0;
      live.forEach((p, k) => (m += wts[k] * p.bnStats[i][j]));
      let v = 0;
      live.forEach((p, k) => {
        const d = p.bnStats[i][j] - m;
        v += wts[k] * (p.bnStats[i + 1][j] + d * d);
      });
      mean[j] = m;
      variance[j] = v;
    }
    bnStats.push(mean, variance);
  }
  const terms: Record<string, number> = {};
  for (const k of Object.keys(live[0].terms)) {
    terms[k] = live.reduce((a, p, i) => a + wts[i] * p.terms[k], 0);
  }
  return {
    n,
    loss: live.reduce((a, p, i) => a + wts[i] * p.loss, 0),
    terms,
    correct: live.reduce((a, p) => a + p.correct, 0),
    grads,
    bnStats,
  };
}

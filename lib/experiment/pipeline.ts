/**
 * Runs one variant of an experiment: its training phases (by mode), with a
 * checkpoint after every epoch and resumption from one, then the final
 * quantization (fold BatchNorm, snap weights, activation ranges) and
 * evaluation. Experiments stay plain data; this is the only place that turns
 * `qgt.mode` into training.
 *
 * Phases by mode:
 * - `float`: train the float network (`train.epochs`, `train.schedule`).
 * - `ptq`: no training: fold, calibrate, snap the float variant's weights.
 * - `qat`: fold the float network, then fine-tune with fake-quantized weights
 *   and activations (STE) for `qgt.epochs` at `qgt.lr` (cosine).
 * - `qgt`: from the float network, train `qgt.epochs` with the QGT
 *   regularizer under the lambda schedule. With `qgt.fakeQuant` the network
 *   is folded first and weights and activations are fake-quantized (STE) as in
 *   QAT, the regularizer pulling the latent weights onto the grid they are
 *   quantized to; without it the phase trains the float network (BatchNorm
 *   live) and relies on the regularizer alone. Then fold and fine-tune
 *   `qgt.finetuneEpochs` (default 0 with `fakeQuant`, else 1) with fake
 *   quantization and the regularizer at its final lambda; 0 snaps directly.
 * - with `qgt.mixed`, per-layer bits are first chosen by sensitivity within a
 *   byte budget.
 * - with `qgt.bnReestimate` (live BatchNorm to the end), BatchNorm's moving
 *   statistics are recomputed on the first `images` training images under the
 *   final fake-quantized weights before folding (`reestimateBatchNorm`).
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { createModel, disposeModel, getWeights, type Model, setWeights } from "../models/model.ts";
import { foldBatchNorm, foldedArch } from "../models/fold.ts";
import { exportOverheadBound } from "../export/format.ts";
import type { ArchSpec } from "../models/spec.ts";
import { type Dataset, DEFAULT_NORMALIZATION, firstImages } from "../data/dataset.ts";
import type { BackendName } from "../backend/mod.ts";
import { type EpochMetrics, train } from "../train/loop.ts";
import { reestimateBatchNorm } from "../train/bn_reestimate.ts";
import type { OptimizerState } from "../train/optim.ts";
import type { ScheduleSpec } from "../train/schedule.ts";
import { type EvalResult, evaluate } from "../eval/evaluate.ts";
import { layerBytes, resolveLayerSpecs, weightLayerSizes } from "../quant/layers.ts";
import type { QuantSpec } from "../quant/spec.ts";
import { fakeQuantOp, type QuantizedTensor } from "../quant/quantizer.ts";
import { fakeQuantRange } from "../quant/activation.ts";
import {
  calibrateActivations,
  snapBiases,
  snapWeights,
  withPassThroughRanges,
} from "../qgt/modes.ts";
import { QGT_SETUP_MODULE, type QgtSetupOptions } from "../qgt/setup.ts";
import { lambdaAt, type LambdaSchedule } from "../qgt/lambda.ts";
import { assignMixedPrecision, layerErrors, layerSensitivity } from "../qgt/analysis.ts";
import { type ModelSummary, modelSummary } from "../qgt/summary.ts";
import { deriveSeed } from "../util/random.ts";
import type { ProgressSink } from "../util/progress.ts";
import type { ResolvedVariant } from "./define.ts";
import { buildArchitecture } from "../models/zoo.ts";

/** One tidy metrics row. */
export interface MetricRow {
  variant: string;
  phase: string;
  epoch: number;
  split: "train" | "val";
  metric: string;
  value: number;
}

/** Per-layer quantization error after an epoch. */
export interface LayerEpochRow {
  variant: string;
  phase: string;
  epoch: number;
  layer: string;
  bits: number;
  grid_error: number;
  relative_error: number;
  reg_loss: number;
}

/** The bottleneck table row of a layer. */
export interface LayerRow {
  variant: string;
  layer: string;
  params: number;
  bits: number;
  bytes: number;
  grid_error: number;
  relative_error: number;
  /** Loss increase with only this layer quantized at its bits (null when not measured). */
  sensitivity: number | null;
  chosen_bits: number;
}

/** Persisted state of a variant between epochs. */
export interface VariantState {
  phase: number;
  epochDone: number;
  folded: boolean;
  weights: Record<string, Float32Array>;
  optimizer?: OptimizerState;
  specs?: Record<string, QuantSpec>;
  activationRanges?: Record<string, [number, number]>;
  sensitivity?: { layer: string; bits: number; score: number }[];
  metrics: MetricRow[];
  layerEpochs: LayerEpochRow[];
}

/** What a finished variant produced. */
export interface VariantOutcome {
  name: string;
  mode: string;
  /** Nominal weight bits ("mixed" for per-layer assignments, 32 for float). */
  bits: number | "mixed";
  eval: EvalResult;
  model: Model;
  arch: ArchSpec;
  quantized?: {
    specs: Record<string, QuantSpec>;
    weights: Record<string, QuantizedTensor>;
    /** The folded kernels just before snapping (to see how close to the grid training left them). */
    latent: Record<string, Float32Array>;
    activationBits: number | "float";
    activationRanges: Record<string, [number, number]>;
  };
  summary: ModelSummary;
  metrics: MetricRow[];
  layerEpochs: LayerEpochRow[];
  layers: LayerRow[];
  /** Per-layer sensitivity measured for mixed precision (loss increase per layer and width). */
  sensitivity?: { layer: string; bits: number; score: number }[];
}

/** Inputs of {@link runVariant}. */
export interface VariantContext {
  variant: ResolvedVariant;
  seed: number;
  train: Dataset;
  val: Dataset;
  backend: BackendName;
  progress: ProgressSink;
  /** Final weights of the float variant (for ptq/qat/qgt from float). */
  floatWeights?: Record<string, Float32Array>;
  /** Last saved state (resume), or null. */
  resume: VariantState | null;
  /** Called after every epoch with the state to persist. */
  saveState: (s: VariantState) => Promise<void>;
  /** Testing hook: throw after this many epochs in this process (simulates a kill). */
  stopAfterEpochs?: number;
  epochCounter?: { n: number };
}

/** Thrown by the stopAfterEpochs testing hook. */
export class StopRequested extends Error {
  override name = "StopRequested";
}

interface Phase {
  name: string;
  folded: boolean;
  epochs: number;
  schedule: ScheduleSpec;
  setup?: Omit<QgtSetupOptions, "specs" | "activations"> & { activations?: boolean };
  lambda?: LambdaSchedule;
}

/**
 * The architecture of a variant for a dataset.
 *
 * @example
 * ```ts
 * import { resolveExperiment } from "./define.ts";
 * import { variantArch } from "./pipeline.ts";
 * import smoke from "../../experiments/smoke.ts";
 * const exp = resolveExperiment(smoke); // small_cnn
 * const train = {
 *   name: "t",
 *   shape: [32, 32, 1] as [number, number, number],
 *   classNames: ["no", "yes"],
 *   images: new Uint8Array(0),
 *   labels: new Uint8Array(0),
 * };
 * const arch = variantArch(exp.variants[0], train);
 * if (arch.inputShape.join() !== "32,32,1" || arch.classes !== 2) throw new Error();
 * ```
 */
export function variantArch(v: ResolvedVariant, train: Dataset): ArchSpec {
  const o = v.architecture.options ?? {};
  const arch = buildArchitecture(v.architecture.name, train.shape, {
    alpha: o.alpha,
    classes: o.classes ?? train.classNames.length,
    channels: o.channels,
  });
  if (arch.classes !== train.classNames.length) {
    throw new Error(
      `architecture.options.classes: ${arch.classes}, but dataset ${train.name} has ${train.classNames.length} classes`,
    );
  }
  return arch;
}

/**
 * What can be checked before anything trains, so a bad setting fails in
 * seconds rather than after the float network: the network builds for the
 * data (classes), a batch fits in the training set, every layer of a
 * quantized variant is quantized (exportable), and a mixed-precision budget
 * is reachable with the candidate widths. Throws a one-line error naming the
 * field.
 *
 * @example
 * ```ts
 * import { preflight } from "./pipeline.ts";
 * import { resolveExperiment } from "./define.ts";
 * import smoke from "../../experiments/smoke.ts";
 * const v = resolveExperiment(smoke).variants[0];
 * const train = { name: "t", shape: [32, 32, 1] as [number, number, number], classNames: ["a", "b"], images: new Uint8Array(0), labels: new Uint8Array(64) };
 * preflight(v, train); // fine
 * let failed = false;
 * try {
 *   preflight({ ...v, qgt: { ...v.qgt, mode: "qgt", mixed: { budgetBytes: 10, candidates: [1, 2] } } }, train);
 * } catch {
 *   failed = true;
 * }
 * if (!failed) throw new Error();
 * ```
 */
export function preflight(v: ResolvedVariant, train: Dataset): void {
  const arch = variantArch(v, train);
  if (v.train.batchSize > train.labels.length) {
    throw new Error(
      `variant ${v.name}: train.batchSize ${v.train.batchSize} is more than the ${train.labels.length} training images`,
    );
  }
  if (v.qgt.mode !== "float") {
    for (const [layer, o] of Object.entries(v.qgt.layers ?? {})) {
      if (o.bits === "float") {
        throw new Error(
          `variants.${v.name}.qgt.layers.${layer}.bits: "float" leaves the layer unquantized, but a run exports every quantized variant, which needs every weight layer at 1-8 bits`,
        );
      }
    }
  }
  const mixed = v.qgt.mixed;
  if (!mixed) return;
  const sizes = weightLayerSizes(arch);
  const base = Object.values(specsFor(v, arch))[0];
  const lowest = Math.min(...mixed.candidates);
  const smallest = assignMixedPrecision(
    sizes,
    sizes.flatMap((l) => mixed.candidates.map((bits) => ({ layer: l.name, bits, score: 0 }))),
    0,
    base,
    exportOverheadBound(foldedArch(arch), train.classNames, base),
  ).bytes;
  if (smallest > mixed.budgetBytes) {
    throw new Error(
      `variants.${v.name}.qgt.mixed.budgetBytes: ${mixed.budgetBytes} is below the smallest model the candidates allow (${smallest} bytes estimated, every layer at ${lowest} bits)`,
    );
  }
}

function fineTuneSchedule(v: ResolvedVariant): ScheduleSpec {
  return { type: "cosine", lr: v.qgt.lr ?? v.train.schedule.lr / 10 };
}

function defaultLambda(v: ResolvedVariant): LambdaSchedule {
  return v.qgt.lambda ?? { type: "linear", from: 0, to: 1 };
}

/**
 * The training phases of a variant.
 *
 * @example
 * ```ts
 * import { resolveExperiment } from "./define.ts";
 * import { planPhases } from "./pipeline.ts";
 * import smoke from "../../experiments/smoke.ts";
 * const [float, ptq] = resolveExperiment(smoke, { set: ["train.epochs=3"] }).variants;
 * // float trains for train.epochs in one phase; PTQ does not train
 * if (planPhases(float)[0].epochs !== 3 || planPhases(ptq).length !== 0) throw new Error();
 * ```
 */
export function planPhases(v: ResolvedVariant): Phase[] {
  const q = v.qgt;
  switch (q.mode) {
    case "float":
      return [{ name: "float", folded: false, epochs: v.train.epochs, schedule: v.train.schedule }];
    case "ptq":
      return [];
    case "qat":
      if (q.from === "scratch") {
        return [{
          name: "qat",
          folded: false,
          epochs: q.epochs ?? v.train.epochs,
          schedule: v.train.schedule,
          setup: { fakeQuant: true },
        }];
      }
      return [{
        name: "qat",
        folded: !q.liveBatchNorm,
        epochs: q.epochs ?? 2,
        schedule: fineTuneSchedule(v),
        setup: { fakeQuant: true, activations: !q.liveBatchNorm },
      }];
    case "qgt": {
      const lam = defaultLambda(v);
      const ste = q.fakeQuant ?? false;
      // BatchNorm stays live (batch statistics) when asked, or when training from scratch
      const live = q.liveBatchNorm === true || q.from === "scratch";
      const phases: Phase[] = [{
        name: "qgt-reg",
        // with fake quantization the phase trains the folded network, as QAT does
        folded: ste && !live,
        epochs: q.epochs ?? 2,
        schedule: q.from === "scratch" ? v.train.schedule : fineTuneSchedule(v),
        setup: ste
          ? {
            fakeQuant: true,
            regularizer: q.regularizer ?? "grid",
            activations: !live,
          }
          : { regularizer: q.regularizer ?? "grid" },
        lambda: lam,
      }];
      const ft = q.finetuneEpochs ?? (ste ? 0 : 1);
      if (ft > 0) {
        phases.push({
          name: "qgt-finetune",
          folded: true,
          epochs: ft,
          schedule: fineTuneSchedule(v),
          setup: { fakeQuant: true, regularizer: q.regularizer ?? "grid", activations: true },
          lambda: { type: "constant", lambda: lambdaAt(lam, 1) },
        });
      }
      return phases;
    }
  }
}

function specsFor(
  v: ResolvedVariant,
  arch: ArchSpec,
  bits?: Record<string, number>,
): Record<string, QuantSpec> {
  const q = v.qgt;
  const layers: Record<string, { bits?: number | "float"; lambda?: number }> = {
    ...(q.layers ?? {}),
  };
  if (bits) {
    for (const [l, b] of Object.entries(bits)) layers[l] = { ...(layers[l] ?? {}), bits: b };
  }
  return resolveLayerSpecs(
    arch,
    {
      bits: q.bits ?? 8,
      symmetric: q.symmetric,
      narrowRange: q.narrowRange,
      perChannel: q.perChannel,
      scale: q.scale,
    },
    Object.fromEntries(
      Object.entries(layers).map(([k, o]) => [k, { bits: o.bits, lambda: o.lambda }]),
    ),
  );
}

function layerLambdas(v: ResolvedVariant): Record<string, number> {
  return Object.fromEntries(
    Object.entries(v.qgt.layers ?? {}).filter(([, o]) => o.lambda !== undefined).map((
      [k, o],
    ) => [k, o.lambda!]),
  );
}

function activationTransform(bits: number | "float", ranges: Record<string, [number, number]>) {
  if (bits === "float") return undefined;
  return (layer: string, y: tf.Tensor) => {
    const r = ranges[layer];
    return r ? fakeQuantRange(y, r[0], r[1], bits) : y;
  };
}

function modelFrom(arch: ArchSpec, weights: Record<string, Float32Array>): Model {
  const m = createModel(arch, 0);
  setWeights(m, weights);
  return m;
}

function epochRows(variant: string, phase: string, epoch: number, m: EpochMetrics): MetricRow[] {
  const rows: MetricRow[] = [
    { variant, phase, epoch, split: "train", metric: "loss", value: m.trainLoss },
    { variant, phase, epoch, split: "train", metric: "accuracy", value: m.trainAccuracy },
    { variant, phase, epoch, split: "train", metric: "lr", value: m.lr },
  ];
  for (const [k, v] of Object.entries(m.terms)) {
    if (k !== "ce") {
      rows.push({ variant, phase, epoch, split: "train", metric: `term_${k}`, value: v });
    }
  }
  if (m.val) {
    rows.push({ variant, phase, epoch, split: "val", metric: "loss", value: m.val.loss });
    rows.push({ variant, phase, epoch, split: "val", metric: "accuracy", value: m.val.accuracy });
  }
  return rows;
}

/**
 * Runs (or resumes) a variant to completion.
 *
 * @example
 * ```ts ignore
 * const out = await runVariant({ variant, seed, train, val, backend: "wasm", progress, resume: null, saveState });
 * ```
 */
export async function runVariant(ctx: VariantContext): Promise<VariantOutcome> {
  const v = ctx.variant;
  const q = v.qgt;
  const baseArch = variantArch(v, ctx.train);
  const quantized = q.mode !== "float";
  const actBits: number | "float" = quantized ? (q.activationBits ?? 8) : "float";
  const phases = planPhases(v);

  let state: VariantState;
  if (ctx.resume) {
    state = ctx.resume;
  } else {
    let weights: Record<string, Float32Array>;
    if (q.mode === "float" || q.from === "scratch") {
      const m = createModel(baseArch, deriveSeed(ctx.seed, "init"));
      weights = getWeights(m);
      disposeModel(m);
    } else {
      if (!ctx.floatWeights) {
        throw new Error(`variant ${v.name}: needs the float variant's weights`);
      }
      weights = ctx.floatWeights;
    }
    state = { phase: 0, epochDone: 0, folded: false, weights, metrics: [], layerEpochs: [] };
    if (quantized) {
      let bits: Record<string, number> | undefined;
      if (q.mixed) {
        // choose per-layer bits on the folded float network, scored on a held-out slice of the training set
        const m = foldBatchNorm(modelFrom(baseArch, weights));
        const probe = firstImages(ctx.train, q.mixed.sensitivitySamples ?? 512);
        const specs = specsFor(v, m.arch);
        ctx.progress.line(
          `${v.name}: sensitivity of ${Object.keys(specs).length} layers at ${
            q.mixed.candidates.join(", ")
          } bits`,
        );
        const sens = layerSensitivity(
          specs,
          q.mixed.candidates,
          (kt) => evaluate(m, probe, { kernelTransform: kt }),
        );
        disposeModel(m);
        state.sensitivity = sens.map((s) => ({
          layer: s.layer,
          bits: s.bits,
          score: s.lossIncrease,
        }));
        const base = Object.values(specs)[0];
        const mp = assignMixedPrecision(
          weightLayerSizes(baseArch),
          state.sensitivity,
          q.mixed.budgetBytes,
          base,
          exportOverheadBound(foldedArch(baseArch), ctx.train.classNames, base),
        );
        bits = mp.bits;
        ctx.progress.line(
          `${v.name}: mixed precision ${
            mp.withinBudget ? "fits" : "does NOT fit"
          } ${q.mixed.budgetBytes} bytes (${mp.bytes} estimated)`,
        );
      }
      state.specs = specsFor(v, baseArch, bits);
    }
  }

  let model = state.folded
    ? modelFrom(foldedArch(baseArch), state.weights)
    : modelFrom(baseArch, state.weights);
  const counter = ctx.epochCounter ?? { n: 0 };
  try {
    for (let pi = state.phase; pi < phases.length; pi++) {
      const ph = phases[pi];
      if (state.phase !== pi) {
        state.phase = pi;
        state.epochDone = 0;
        state.optimizer = undefined;
      }
      if (state.epochDone === 0 && ph.folded && !state.folded) {
        const f = foldBatchNorm(model);
        disposeModel(model);
        model = f;
        state.folded = true;
      }
      if (
        state.epochDone === 0 && ph.setup?.activations && actBits !== "float" &&
        !state.activationRanges
      ) {
        state.activationRanges = withPassThroughRanges(
          model.arch,
          calibrateActivations(model, firstImages(ctx.train, 512)),
        );
      }
      if (state.epochDone >= ph.epochs) continue;
      const setup: QgtSetupOptions | undefined = ph.setup
        ? {
          specs: state.specs ?? {},
          fakeQuant: ph.setup.fakeQuant,
          regularizer: ph.setup.regularizer,
          layerLambda: layerLambdas(v),
          reduction: q.reduction,
          decoupled: q.decoupled,
          freeze: ph.setup.fakeQuant ? q.freeze : undefined,
          activations: ph.setup.activations && actBits !== "float"
            ? { bits: actBits, ranges: state.activationRanges ?? {} }
            : undefined,
        }
        : undefined;
      const lam = ph.lambda;
      await train({
        model,
        train: ctx.train,
        val: ctx.val,
        backend: ctx.backend,
        config: {
          epochs: ph.epochs,
          batchSize: v.train.batchSize,
          optimizer: v.train.optimizer,
          schedule: ph.schedule,
          augment: v.train.augment,
          // float training draws its own stream; every quantized variant's fine-tuning
          // phases share one (same batches and flips), so variants differ only by method
          seed: deriveSeed(
            ctx.seed,
            q.mode === "float" ? `${v.name}/${ph.name}` : `finetune/${pi}`,
          ),
          threads: v.train.threads,
          bnMomentum: v.train.bnMomentum,
        },
        setup: setup ? { module: QGT_SETUP_MODULE, options: setup } : undefined,
        stepVars: lam ? (step, _e, total) => ({ lambda: lambdaAt(lam, step / total) }) : undefined,
        startEpoch: state.epochDone,
        optimizerState: state.optimizer,
        label: `${v.name}/${ph.name}`,
        progress: ctx.progress,
        onEpochEnd: async (m, opt) => {
          const epoch = state.metrics.filter((r) =>
            r.metric === "loss" && r.split === "train"
          ).length + 1;
          state.metrics.push(...epochRows(v.name, ph.name, epoch, m));
          if (state.specs && Object.keys(state.specs).length) {
            for (
              const e of layerErrors(
                model,
                state.specs,
                ph.setup?.regularizer ?? q.regularizer ?? "grid",
              )
            ) {
              state.layerEpochs.push({
                variant: v.name,
                phase: ph.name,
                epoch,
                layer: e.layer,
                bits: e.bits,
                grid_error: e.gridError,
                relative_error: e.relativeError,
                reg_loss: e.regLoss,
              });
            }
          }
          state.epochDone = m.epoch;
          state.optimizer = opt;
          state.weights = getWeights(model);
          await ctx.saveState(state);
          counter.n++;
          if (ctx.stopAfterEpochs !== undefined && counter.n >= ctx.stopAfterEpochs) {
            throw new StopRequested(`stopped after ${counter.n} epochs (testing hook)`);
          }
        },
      });
    }
    return finish(ctx, state, model, baseArch, actBits);
  } catch (e) {
    disposeModel(model);
    throw e;
  }
}

function finish(
  ctx: VariantContext,
  state: VariantState,
  trained: Model,
  baseArch: ArchSpec,
  actBits: number | "float",
): VariantOutcome {
  const v = ctx.variant;
  const q = v.qgt;
  if (q.mode === "float") {
    const ev = evaluate(trained, ctx.val);
    return {
      name: v.name,
      mode: q.mode,
      bits: 32,
      eval: ev,
      model: trained,
      arch: baseArch,
      summary: modelSummary(foldedArch(baseArch), {}),
      metrics: state.metrics,
      layerEpochs: state.layerEpochs,
      layers: [],
    };
  }
  let model = trained;
  if (q.bnReestimate) {
    if (state.folded) throw new Error(`internal: ${v.name}: bnReestimate on a folded network`);
    const specs = state.specs ?? {};
    const r = reestimateBatchNorm(trained, firstImages(ctx.train, q.bnReestimate.images), {
      batchSize: v.train.batchSize,
      kernelTransform: (l, k) => specs[l] ? fakeQuantOp(k, specs[l]) : k,
    });
    // the first of the layers with the largest relative variance change
    const worst = [...r.changes].sort((a, b) => b.varianceChange - a.varianceChange)[0];
    ctx.progress.line(
      `${v.name}: BatchNorm statistics re-estimated on ${r.images} training images with quantized weights ` +
        (worst
          ? `(largest variance change ${
            (100 * worst.varianceChange).toFixed(1)
          } % in ${worst.layer})`
          : "(the network has no BatchNorm)"),
    );
  }
  if (!state.folded) {
    model = foldBatchNorm(trained);
    disposeModel(trained);
  }
  const ranges = actBits === "float" ? {} : (state.activationRanges ??
    withPassThroughRanges(model.arch, calibrateActivations(model, firstImages(ctx.train, 512))));
  const specs = state.specs ?? {};
  const errs = layerErrors(model, specs, q.regularizer ?? "grid");
  const latent: Record<string, Float32Array> = {};
  for (const layer of Object.keys(specs)) {
    latent[layer] = model.params.get(`${layer}/kernel`)!.dataSync().slice() as Float32Array;
  }
  const weights = snapWeights(model, specs);
  if (actBits !== "float") {
    snapBiases(model, weights, ranges, 1 / (255 * DEFAULT_NORMALIZATION.std), actBits);
  }
  const ev = evaluate(model, ctx.val, {
    activationTransform: activationTransform(actBits, ranges),
  });
  const bitsSet = new Set(Object.values(specs).map((s) => s.bits));
  const sizes = new Map(weightLayerSizes(baseArch).map((l) => [l.name, l]));
  const layers: LayerRow[] = errs.map((e) => {
    const s = sizes.get(e.layer)!;
    const sens = state.sensitivity?.find((r) => r.layer === e.layer && r.bits === e.bits);
    return {
      variant: v.name,
      layer: e.layer,
      params: e.params,
      bits: e.bits,
      bytes: layerBytes(s.params, s.channels, specs[e.layer]).total,
      grid_error: e.gridError,
      relative_error: e.relativeError,
      sensitivity: sens ? sens.score : null,
      chosen_bits: e.bits,
    };
  });
  return {
    name: v.name,
    mode: q.mode,
    bits: bitsSet.size === 1 ? [...bitsSet][0] : "mixed",
    eval: ev,
    model,
    arch: model.arch,
    quantized: { specs, weights, latent, activationBits: actBits, activationRanges: ranges },
    summary: modelSummary(model.arch, specs),
    metrics: state.metrics,
    layerEpochs: state.layerEpochs,
    layers,
    sensitivity: state.sensitivity,
  };
}

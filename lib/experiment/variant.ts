/**
 * Training one variant: its starting state (the float network's weights or a
 * fresh initialisation; for mixed precision, the per-layer bits chosen by
 * sensitivity within the byte budget), then each planned phase with a
 * checkpoint after every epoch and resumption from one, then the deployed
 * form and its evaluation (`quantizeAndEvaluate`).
 * @module
 */
import { CALIBRATION_IMAGES } from "../quant/range.ts";
import { createModel, disposeModel, getWeights, type Model, setWeights } from "../models/model.ts";
import { foldBatchNorm, foldedArch, foldFactors } from "../models/fold.ts";
import type { ArchSpec } from "../models/spec.ts";
import { type Dataset, firstImages } from "../data/dataset.ts";
import type { BackendName } from "../backend/mod.ts";
import { type EpochMetrics, train } from "../train/loop.ts";
import { evaluate } from "../eval/evaluate.ts";
import { weightLayerSizes } from "../quant/layers.ts";
import { calibrateActivations, withPassThroughRanges } from "../methods/ptq.ts";
import type { QuantSpec } from "../quant/spec.ts";
import {
  foldSteps,
  lsqStepName,
  TRAINING_SETUP_MODULE,
  type TrainingSetupOptions,
  withSteps,
} from "../methods/training_setup.ts";
import { quantParams } from "../quant/quantizer.ts";
import * as tf from "@tensorflow/tfjs";
import { lambdaAt } from "../methods/lambda.ts";
import { assignMixedPrecision, layerErrors, layerSensitivity } from "../methods/analysis.ts";
import { exportOverheadBound, type Provenance } from "../format/model_file.ts";
import { deriveSeed } from "../util/random.ts";
import type { ProgressSink } from "../util/progress.ts";
import type { MetricRow } from "../run/run_dir.ts";
import type { ResolvedVariant } from "./define.ts";
import { baseMethod, errorMeasureOf, lsqOf, quantizationOf, startsFromFloat } from "./method.ts";
import { type Phase, planPhases } from "./phases.ts";
import { layerLambdas, specsFor, variantArch } from "./plan.ts";
import type { VariantState } from "./state.ts";
import { quantizeAndEvaluate, type VariantOutcome } from "./outcome.ts";

/** Training images the mixed-precision search scores each layer's sensitivity on (default). */
const SENSITIVITY_SAMPLES = 512;

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
  /** The provenance its export will carry (counted in a mixed-precision budget). */
  provenance?: Provenance;
  /** Aborting it stops the variant at its next epoch checkpoint (with {@link RunAborted}). */
  signal?: AbortSignal;
}

/**
 * A run stopped through its `signal` (`RunOptions.signal`): every finished epoch is checkpointed,
 * so `--resume` continues it and gives the same tables as a run that never stopped.
 */
export class RunAborted extends Error {
  override name = "RunAborted";
}

function modelFrom(arch: ArchSpec, weights: Record<string, Float32Array>): Model {
  const m = createModel(arch, 0);
  setWeights(m, weights);
  return m;
}

/**
 * Per-layer bits of a mixed-precision variant: each layer's sensitivity (loss
 * increase on held-out training images with only that layer quantized) at
 * every candidate width, measured on the folded float network, then the
 * greedy assignment within the byte budget. Records the sensitivity in `state`.
 */
function chooseMixedPrecision(
  ctx: VariantContext,
  baseArch: ArchSpec,
  weights: Record<string, Float32Array>,
  state: VariantState,
): Record<string, number> {
  const v = ctx.variant;
  if (v.method.mode !== "mixed") {
    throw new Error(`variant ${v.name}: not a mixed-precision variant`);
  }
  const mixed = v.method.search, lsqInit = lsqOf(v.method)?.init;
  const m = foldBatchNorm(modelFrom(baseArch, weights));
  const probe = firstImages(ctx.train, mixed.sensitivitySamples ?? SENSITIVITY_SAMPLES);
  // each candidate width at the step training would start from (with LSQ: its lsqInit)
  const specs = Object.fromEntries(
    Object.entries(specsFor(v, m.arch)).map(([l, s]) => [l, startSpec(s, lsqInit)]),
  );
  ctx.progress.line(
    `${v.name}: sensitivity of ${Object.keys(specs).length} layers at ${
      mixed.candidates.join(", ")
    } bits`,
  );
  const sens = layerSensitivity(
    specs,
    mixed.candidates,
    (kt) => evaluate(m, probe, { kernelTransform: kt }),
  );
  disposeModel(m);
  state.sensitivity = sens.map((s) => ({ layer: s.layer, bits: s.bits, score: s.lossIncrease }));
  const base = Object.values(specs)[0];
  const mp = assignMixedPrecision(
    weightLayerSizes(baseArch),
    state.sensitivity,
    mixed.budgetBytes,
    base,
    exportOverheadBound(foldedArch(baseArch), ctx.train.classNames, base, ctx.provenance),
  );
  ctx.progress.line(
    `${v.name}: mixed precision ${
      mp.withinBudget ? "fits" : "does NOT fit"
    } ${mixed.budgetBytes} bytes (${mp.bytes} estimated)`,
  );
  return mp.bits;
}

/** The state a variant starts from: initial or float weights, and for quantized variants its specs. */
function initialState(ctx: VariantContext, baseArch: ArchSpec): VariantState {
  const v = ctx.variant;
  let weights: Record<string, Float32Array>;
  if (!startsFromFloat(v.method)) {
    const m = createModel(baseArch, deriveSeed(ctx.seed, "init"));
    weights = getWeights(m);
    disposeModel(m);
  } else {
    if (!ctx.floatWeights) throw new Error(`variant ${v.name}: needs the float variant's weights`);
    weights = ctx.floatWeights;
  }
  const state: VariantState = {
    phase: 0,
    epochDone: 0,
    folded: false,
    weights,
    metrics: [],
    layerEpochs: [],
  };
  if (v.method.mode !== "float") {
    const bits = v.method.mode === "mixed"
      ? chooseMixedPrecision(ctx, baseArch, weights, state)
      : undefined;
    state.specs = specsFor(v, baseArch, bits);
  }
  return state;
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

/** The quantized training step's options for a phase. */
function phaseSetup(
  v: ResolvedVariant,
  ph: Phase,
  state: VariantState,
): TrainingSetupOptions | undefined {
  const m = baseMethod(v.method);
  if (!ph.setup || (m.mode !== "qat" && m.mode !== "qgt")) return undefined;
  const actBits = m.quant.activationBits;
  return {
    specs: state.specs ?? {},
    fakeQuant: ph.setup.fakeQuant,
    regularizer: ph.setup.regularizer,
    layerLambda: layerLambdas(v),
    reduction: m.mode === "qgt" ? m.reduction : undefined,
    decoupled: m.mode === "qgt" ? m.decoupled : undefined,
    freeze: ph.setup.fakeQuant ? m.freeze : undefined,
    activations: ph.setup.activations && actBits !== "float"
      ? { bits: actBits, ranges: state.activationRanges ?? {} }
      : undefined,
    lsq: ph.setup.fakeQuant && state.steps
      ? Object.fromEntries(Object.entries(state.steps).map(([l, st]) => [l, Array.from(st)]))
      : undefined,
    lsqStepLr: ph.setup.fakeQuant && state.steps ? m.lsq?.stepLr : undefined,
  };
}

/**
 * A spec whose scale method gives LSQ's starting step: the paper's
 * (`scale: "lsq"`, the default) or the MSE search's (`init` "mse"); other
 * specs unchanged.
 */
function startSpec(spec: QuantSpec, init: "paper" | "mse" | undefined): QuantSpec {
  return spec.scale === "lsq" && init === "mse" ? { ...spec, scale: "mse" } : spec;
}

/**
 * LSQ's starting steps of every quantized layer, from the kernels `model`
 * holds now: the paper's 2 mean|w| / sqrt(qmax) per scale (Esser et al.
 * 2020; `init` "paper"), or the fixed-scale quantizer's squared-error search
 * ("mse", the step QAT would use).
 *
 * @example
 * ```ts
 * import { createModel, smallCnn } from "../models/mod.ts";
 * import { initialSteps } from "./variant.ts";
 * const m = createModel(smallCnn(), 1);
 * const spec = { bits: 2, symmetric: true, perChannel: true, axis: 3, scale: "lsq" as const };
 * const s = initialSteps(m, { conv1: spec }, "paper");
 * if (s.conv1.length !== m.params.get("conv1/kernel")!.shape[3]) throw new Error();
 * ```
 */
export function initialSteps(
  model: Model,
  specs: Record<string, QuantSpec>,
  init: "paper" | "mse",
): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [layer, spec] of Object.entries(specs)) {
    const k = model.params.get(`${layer}/kernel`)!;
    const start = startSpec({ ...spec, scale: "lsq" }, init);
    out[layer] = tf.tidy(() => quantParams(k, start).scale.dataSync() as Float32Array);
  }
  return out;
}

/**
 * Before a phase's first epoch: fold BatchNorm if the phase trains the
 * folded network, and calibrate activation ranges if it fake-quantizes
 * activations and none are known yet. Returns the model to train.
 */
function enterPhase(
  ctx: VariantContext,
  ph: Phase,
  state: VariantState,
  model: Model,
): Model {
  if (state.epochDone !== 0) return model;
  if (ph.folded && !state.folded) {
    // steps learned on the unfolded kernels follow them through the fold
    if (state.steps) state.steps = foldSteps(state.steps, foldFactors(model));
    const f = foldBatchNorm(model);
    disposeModel(model);
    model = f;
    state.folded = true;
  }
  const lsq = lsqOf(ctx.variant.method);
  if (lsq && ph.setup?.fakeQuant && !state.steps) {
    state.steps = initialSteps(model, state.specs ?? {}, lsq.init);
  }
  const actBits = quantizationOf(ctx.variant.method)?.activationBits ?? "float";
  if (ph.setup?.activations && actBits !== "float" && !state.activationRanges) {
    state.activationRanges = withPassThroughRanges(
      model.arch,
      calibrateActivations(model, firstImages(ctx.train, CALIBRATION_IMAGES)),
    );
  }
  return model;
}

/** Trains one phase from `state.epochDone`, saving the state after every epoch. */
async function trainPhase(
  ctx: VariantContext,
  pi: number,
  ph: Phase,
  state: VariantState,
  model: Model,
): Promise<void> {
  const v = ctx.variant;
  const setup = phaseSetup(v, ph, state);
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
        v.method.mode === "float" ? `${v.name}/${ph.name}` : `finetune/${pi}`,
      ),
      threads: v.train.threads,
      bnMomentum: v.train.bnMomentum,
      gradKernels: v.train.gradKernels,
    },
    setup: setup ? { module: TRAINING_SETUP_MODULE, options: setup } : undefined,
    stepVars: lam ? (step, _e, total) => ({ lambda: lambdaAt(lam, step / total) }) : undefined,
    startEpoch: state.epochDone,
    optimizerState: state.optimizer,
    label: `${v.name}/${ph.name}`,
    progress: ctx.progress,
    onEpochEnd: async (m, opt, extras) => {
      const epoch = state.metrics.filter((r) => r.metric === "loss" && r.split === "train")
        .length + 1;
      state.metrics.push(...epochRows(v.name, ph.name, epoch, m));
      if (state.steps) {
        for (const layer of Object.keys(state.steps)) {
          const st = extras[lsqStepName(layer)];
          if (st) state.steps[layer] = st;
        }
      }
      if (state.specs && Object.keys(state.specs).length) {
        const kind = ph.setup?.regularizer ?? errorMeasureOf(v.method);
        // measured against the grid the network trains on (with LSQ, the learned steps)
        for (const e of layerErrors(model, withSteps(state.specs, state.steps), kind)) {
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
      ctx.progress.epoch?.();
      if (ctx.signal?.aborted) {
        throw new RunAborted(`stopped after epoch ${m.epoch} of ${ctx.variant.name} (resumable)`);
      }
    },
  });
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
  const baseArch = variantArch(ctx.variant, ctx.train);
  const phases = planPhases(ctx.variant);
  const state = ctx.resume ?? initialState(ctx, baseArch);
  let model = modelFrom(state.folded ? foldedArch(baseArch) : baseArch, state.weights);
  try {
    for (let pi = state.phase; pi < phases.length; pi++) {
      const ph = phases[pi];
      if (state.phase !== pi) {
        state.phase = pi;
        state.epochDone = 0;
        state.optimizer = undefined;
      }
      model = enterPhase(ctx, ph, state, model);
      if (state.epochDone >= ph.epochs) continue;
      await trainPhase(ctx, pi, ph, state, model);
    }
    return quantizeAndEvaluate(ctx.variant, ctx, model, state, ctx.progress);
  } catch (e) {
    disposeModel(model);
    throw e;
  }
}

/**
 * The end of every variant: the trained network turned into its deployed
 * form and evaluated. Float variants are evaluated as they are; quantized
 * ones optionally re-estimate BatchNorm statistics, are folded, quantized by
 * the one post-training quantization path (`quantizeModel`) and evaluated
 * with fake-quantized activations, with the per-layer bottleneck rows.
 * @module
 */
import { CALIBRATION_IMAGES } from "../quant/range.ts";
import { disposeModel, type Model } from "../models/model.ts";
import { foldBatchNorm, foldedArch, foldFactors } from "../models/fold.ts";
import type { ArchSpec } from "../models/spec.ts";
import { type Dataset, firstImages } from "../data/dataset.ts";
import { type EvalResult, evaluate } from "../eval/evaluate.ts";
import { layerBytes, weightLayerSizes } from "../quant/layers.ts";
import type { QuantSpec } from "../quant/spec.ts";
import { fakeQuantOp, type QuantizedTensor } from "../quant/quantizer.ts";
import { activationTransform } from "../quant/activation.ts";
import { quantizeModel } from "../methods/ptq.ts";
import { foldSteps, withSteps } from "../methods/training_setup.ts";
import { layerErrors } from "../methods/analysis.ts";
import { type ModelSummary, modelSummary } from "../quant/summary.ts";
import { reestimateBatchNorm } from "../train/bn_reestimate.ts";
import type { ProgressSink } from "../util/progress.ts";
import type { LayerEpochRow, LayerRow, MetricRow } from "../run/run_dir.ts";
import type { ResolvedVariant } from "./define.ts";
import { baseMethod, errorMeasureOf } from "./method.ts";
import type { VariantState } from "./state.ts";
import { variantArch } from "./plan.ts";

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

/** What the end of a variant reads of its training state. */
export type FinishState = Pick<
  VariantState,
  "folded" | "specs" | "activationRanges" | "sensitivity" | "metrics" | "layerEpochs" | "steps"
>;

/**
 * Turns a variant's trained network into its deployed form and evaluates it
 * on `data.val`. The returned outcome owns `trained` (or the folded network
 * that replaced it); dispose it with `disposeModel(outcome.model)`.
 *
 * @example
 * ```ts ignore
 * const outcome = quantizeAndEvaluate(variant, data, trained, state, progress);
 * ```
 */
export function quantizeAndEvaluate(
  v: ResolvedVariant,
  data: { train: Dataset; val: Dataset },
  trained: Model,
  state: FinishState,
  progress: ProgressSink,
): VariantOutcome {
  const baseArch = variantArch(v, data.train);
  const m = baseMethod(v.method);
  if (m.mode === "float") {
    return {
      name: v.name,
      mode: m.mode,
      bits: 32,
      eval: evaluate(trained, data.val),
      model: trained,
      arch: baseArch,
      summary: modelSummary(foldedArch(baseArch), {}),
      metrics: state.metrics,
      layerEpochs: state.layerEpochs,
      layers: [],
    };
  }
  const bnReestimate = m.mode === "ptq" ? undefined : m.bnReestimate;
  if (bnReestimate) reestimate(v, bnReestimate.images, trained, state, data.train, progress);
  let model = trained;
  let steps = state.steps;
  if (!state.folded) {
    // learned steps (LSQ) follow the kernels through the fold
    if (steps) steps = foldSteps(steps, foldFactors(trained));
    model = foldBatchNorm(trained);
    disposeModel(trained);
  }
  // the deployed grid: with LSQ the learned steps, else the spec's scale method on the weights
  const specs = withSteps(state.specs ?? {}, steps);
  const actBits = m.quant.activationBits;
  const errs = layerErrors(model, specs, errorMeasureOf(m));
  const quant = quantizeModel(model, specs, {
    activationBits: actBits,
    ranges: state.activationRanges,
    calibration: firstImages(data.train, CALIBRATION_IMAGES),
  });
  const ev = evaluate(model, data.val, {
    activationTransform: activationTransform(actBits, quant.activationRanges),
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
    mode: m.mode,
    bits: bitsSet.size === 1 ? [...bitsSet][0] : "mixed",
    eval: ev,
    model,
    arch: model.arch,
    quantized: {
      specs,
      weights: quant.weights,
      latent: quant.latent,
      activationBits: actBits,
      activationRanges: quant.activationRanges,
    },
    summary: modelSummary(model.arch, specs),
    metrics: state.metrics,
    layerEpochs: state.layerEpochs,
    layers,
    sensitivity: state.sensitivity,
  };
}

/** BatchNorm statistics recomputed under the final fake-quantized weights (`qgt.bnReestimate`). */
function reestimate(
  v: ResolvedVariant,
  images: number,
  trained: Model,
  state: FinishState,
  train: Dataset,
  progress: ProgressSink,
): void {
  if (state.folded) throw new Error(`internal: ${v.name}: bnReestimate on a folded network`);
  const specs = withSteps(state.specs ?? {}, state.steps);
  const r = reestimateBatchNorm(trained, firstImages(train, images), {
    batchSize: v.train.batchSize,
    kernelTransform: (l, k) => specs[l] ? fakeQuantOp(k, specs[l]) : k,
  });
  // the first of the layers with the largest relative variance change
  const worst = [...r.changes].sort((a, b) => b.varianceChange - a.varianceChange)[0];
  progress.line(
    `${v.name}: BatchNorm statistics re-estimated on ${r.images} training images with quantized weights ` +
      (worst
        ? `(largest variance change ${(100 * worst.varianceChange).toFixed(1)} % in ${worst.layer})`
        : "(the network has no BatchNorm)"),
  );
}

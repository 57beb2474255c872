/**
 * Exports a quantized variant: `model.qgt` (the packed integer model),
 * `model_data.h` / `model_data.c` (the same bytes as a C array), `model.tflite`
 * (the same network as a standard int8 TFLite model, checked in LiteRT), a tfjs
 * LayersModel (`model.json` + `weights.bin`, dequantized folded weights), and
 * `summary.json` / `summary.md` with bytes by part and the accuracy of the
 * exported model measured by the integer interpreter on the validation set.
 * @module
 */
import { CALIBRATION_IMAGES } from "../quant/range.ts";
import { join } from "node:path";
import type { Dataset } from "../data/dataset.ts";
import { DEFAULT_NORMALIZATION, firstImages } from "../data/dataset.ts";
import type { Model } from "../models/model.ts";
import { isWeightLayer } from "../models/spec.ts";
import { writeFileAtomic, writeJsonAtomic, writeTextAtomic } from "../util/fs.ts";
import { buildQgt, type ExportSource, parseQgt } from "../format/model_file.ts";
import { cArray } from "../format/c_array.ts";
import { logitRange, qgtToTflite, TfliteUnsupportedError } from "./tflite.ts";
import { evaluateTflite, LITERT_VERSION } from "../engine/litert.ts";
import { summaryMarkdown } from "./summary_md.ts";
import { evaluateModel, type Evaluator } from "../engine/evaluate.ts";
export type { Evaluator } from "../engine/evaluate.ts";
import { saveLayersModel, toLayersModel } from "./keras.ts";

/**
 * The source of an export from a folded, snapped model.
 *
 * @example
 * ```ts ignore
 * const src = exportSource(model, weights, specs, ranges, classNames);
 * ```
 */
export function exportSource(
  model: Model,
  weights: ExportSource["weights"],
  specs: ExportSource["specs"],
  activationRanges: ExportSource["activationRanges"],
  classNames: string[],
): ExportSource {
  const biases: Record<string, Float32Array> = {};
  for (const l of model.arch.layers) {
    if (!isWeightLayer(l)) continue;
    const b = model.params.get(`${l.name}/bias`);
    if (!b) throw new Error(`export: layer ${l.name} has no bias (fold BatchNorm first)`);
    biases[l.name] = b.dataSync() as Float32Array;
  }
  return {
    arch: model.arch,
    classNames,
    biases,
    weights,
    specs,
    activationRanges,
    normalize: DEFAULT_NORMALIZATION,
  };
}

/** The size and accuracy summary written beside an export. */
export interface ExportSummary {
  variant: string;
  bytes: {
    weightCodes: number;
    scales: number;
    zeroPoints: number;
    biases: number;
    header: number;
    total: number;
  };
  float32Bytes: number;
  reduction: number;
  floatAccuracy: number | null;
  accuracy: number;
  simulatedAccuracy: number;
  agreement: number;
  dropPoints: number | null;
  /** Which implementation measured the exported bytes, on how many images. */
  evaluator: Evaluator;
  images: number;
  /** The same network as a standard TFLite model, run in LiteRT on the same images (or why not written). */
  tflite: TfliteSummary | { skipped: string };
  /** The run's warnings about the data these figures were measured on (absent: none). */
  warnings?: string[];
  interpreterSecondsPerImage: number;
}

/** `model.tflite` beside `model.qgt`: its size, and what LiteRT computes with it. */
export interface TfliteSummary {
  bytes: number;
  /** Bytes of the same model with every weight in int8 (the standard int8 deployment; not written). */
  int8Bytes: number;
  /** model.qgt bytes / model.tflite bytes. */
  qgtFraction: number;
  /** Layers whose weights are packed INT4 (the rest are int8). */
  int4Layers: string[];
  /** The output: logit = scale * (q - zeroPoint), int16 (or int8), range from training images. */
  output: { scale: number; zeroPoint: number; type: "int8" | "int16" };
  runtime: string;
  /** LiteRT ran the first this many validation images (INT4 layers run on its slow reference kernels). */
  images: number;
  accuracy: number;
  /** model.qgt's accuracy on the same images. */
  qgtAccuracy: number;
  /** Fraction of those images on which LiteRT predicts the class qgt's interpreter predicts. */
  agreement: number;
}

/** How many validation images LiteRT runs by default (its INT4 kernels take ~50 ms per person image). */
export const TFLITE_EVAL_IMAGES = 500;

/** What {@link writeExport} exports and measures. */
export interface ExportJob {
  variant: string;
  src: ExportSource;
  /** The folded, snapped network (saved as a tfjs LayersModel). */
  model: Model;
  /** The images the exported model is measured on. */
  val: Dataset;
  /** Training images that set the output range of `model.tflite` (the first CALIBRATION_IMAGES used). */
  calibration: Dataset;
  /** LiteRT runs `model.tflite` on the first this many images of `val` (default 500). */
  tfliteCount?: number;
  simulated: { accuracy: number; predictions: Uint8Array };
  floatAccuracy: number | null;
  float32Bytes: number;
  /** Warnings about the data the figures were measured on (summary.json and summary.md). */
  warnings?: string[];
}

/**
 * Converts the exported bytes to `model.tflite` (output range from the
 * calibration images) and measures it in LiteRT against the interpreter's
 * predictions.
 */
async function exportTflite(
  bytes: Uint8Array,
  dir: string,
  job: ExportJob,
  qgtPredictions: Uint8Array,
): Promise<TfliteSummary | { skipped: string }> {
  const file = join(dir, "model.qgt");
  const logits = await logitRange(bytes, job.calibration, CALIBRATION_IMAGES, file);
  let t;
  try {
    t = qgtToTflite(bytes, { logits }, file);
  } catch (e) {
    if (e instanceof TfliteUnsupportedError) return { skipped: e.message };
    throw e;
  }
  const n = Math.min(job.tfliteCount ?? TFLITE_EVAL_IMAGES, job.val.labels.length);
  const r = await evaluateTflite(t.bytes, firstImages(job.val, n), join(dir, "model.tflite"));
  let agree = 0, qgtCorrect = 0;
  for (let i = 0; i < n; i++) {
    if (r.predictions[i] === qgtPredictions[i]) agree++;
    if (qgtPredictions[i] === job.val.labels[i]) qgtCorrect++;
  }
  await writeFileAtomic(join(dir, "model.tflite"), t.bytes);
  return {
    bytes: t.bytes.length,
    int8Bytes: qgtToTflite(bytes, { logits, int4: false }, file).bytes.length,
    qgtFraction: bytes.length / t.bytes.length,
    int4Layers: t.int4Layers,
    output: t.output,
    runtime: `LiteRT.js ${LITERT_VERSION}`,
    images: n,
    accuracy: r.accuracy,
    qgtAccuracy: n ? qgtCorrect / n : NaN,
    agreement: n ? agree / n : 1,
  };
}

/**
 * Writes the export files of a variant into `dir` (model.qgt, its C array,
 * model.tflite, a tfjs LayersModel, summary.json/.md) and evaluates the
 * exported bytes on `val`: model.qgt with the integer interpreter, model.tflite
 * in LiteRT.
 *
 * @example
 * ```ts ignore
 * const s = await writeExport(dir, { variant: "qgt-2", src, model, val, calibration, simulated, floatAccuracy: 0.91, float32Bytes });
 * ```
 */
export async function writeExport(dir: string, job: ExportJob): Promise<ExportSummary> {
  const { src, model, val, simulated, floatAccuracy, float32Bytes } = job;
  const bytes = buildQgt(src);
  const parsed = parseQgt(bytes, join(dir, "model.qgt"));
  await writeFileAtomic(join(dir, "model.qgt"), bytes);
  const { h, c } = cArray(bytes);
  await writeTextAtomic(join(dir, "model_data.h"), h);
  await writeTextAtomic(join(dir, "model_data.c"), c);
  const lm = toLayersModel(model);
  await saveLayersModel(lm, dir);
  lm.dispose();
  const ev = await evaluateModel(bytes, val, join(dir, "model.qgt"));
  const tflite = await exportTflite(bytes, dir, job, ev.predictions);
  let agree = 0;
  for (let i = 0; i < ev.predictions.length; i++) {
    if (ev.predictions[i] === simulated.predictions[i]) agree++;
  }
  const p = parsed.parts;
  const summary: ExportSummary = {
    variant: job.variant,
    bytes: {
      weightCodes: p.codes,
      scales: p.scales,
      zeroPoints: p.zeroPoints,
      biases: p.biases,
      header: p.header,
      total: p.total,
    },
    float32Bytes,
    reduction: float32Bytes / p.total,
    floatAccuracy,
    accuracy: ev.accuracy,
    simulatedAccuracy: simulated.accuracy,
    agreement: ev.predictions.length ? agree / ev.predictions.length : 1,
    dropPoints: floatAccuracy === null ? null : (floatAccuracy - ev.accuracy) * 100,
    evaluator: ev.evaluator,
    images: ev.predictions.length,
    tflite,
    ...(job.warnings?.length ? { warnings: job.warnings } : {}),
    interpreterSecondsPerImage: ev.seconds / Math.max(1, val.labels.length),
  };
  // timing varies between runs: keep it out of the deterministic summary files, and round
  // each value to what it measures (fractions to 1e-4, points and ratios to 0.01)
  const { interpreterSecondsPerImage: _t, ...exact } = summary;
  const r = (x: number, d: number) => Number(x.toFixed(d));
  const stable = {
    ...exact,
    reduction: r(exact.reduction, 2),
    floatAccuracy: exact.floatAccuracy === null ? null : r(exact.floatAccuracy, 4),
    accuracy: r(exact.accuracy, 4),
    simulatedAccuracy: r(exact.simulatedAccuracy, 4),
    agreement: r(exact.agreement, 4),
    dropPoints: exact.dropPoints === null ? null : r(exact.dropPoints, 2),
    tflite: "skipped" in tflite ? tflite : {
      ...tflite,
      qgtFraction: r(tflite.qgtFraction, 4),
      accuracy: r(tflite.accuracy, 4),
      qgtAccuracy: r(tflite.qgtAccuracy, 4),
      agreement: r(tflite.agreement, 4),
    },
  };
  await writeJsonAtomic(join(dir, "summary.json"), stable);
  await writeTextAtomic(join(dir, "summary.md"), summaryMarkdown(stable));
  return summary;
}

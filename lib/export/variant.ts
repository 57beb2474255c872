/**
 * Exporting one quantized variant: the one function the runner and `deno task export` both
 * call ({@link exportVariant}), with what it takes and gives.
 * @module
 */
import type { Dataset } from "../data/dataset.ts";
import type { Model } from "../models/model.ts";
import type { QuantSpec } from "../quant/spec.ts";
import type { QuantizedTensor } from "../quant/spec.ts";
import { type Evaluator, exportSource, writeExport } from "./export.ts";
import type { Provenance } from "../format/header.ts";

/** What the exporter needs of a finished quantized variant. */
export interface ExportInput {
  name: string;
  /** The folded, snapped network (its biases are exported). */
  model: Model;
  specs: Record<string, QuantSpec>;
  /** Integer codes, scales and zero points by layer. */
  weights: Record<string, QuantizedTensor>;
  activationBits: number | "float";
  activationRanges: Record<string, [number, number]>;
  /** The fake-quantized simulation's accuracy and predictions on the same images. */
  simulated: { accuracy: number; predictions: Uint8Array };
  /** Bytes of the folded network in float32, and as the quantized size estimate. */
  float32Bytes: number;
  quantizedBytes: number;
  /** Written into the header (experiment, seed, commit, dataset). */
  provenance?: Provenance;
  /** Training images that calibrate the output range of model.tflite. */
  calibration: Dataset;
  /** LiteRT runs model.tflite on this many of the first validation images (default 500). */
  tfliteCount?: number;
  /** The run's data-quality warnings, repeated in summary.json and summary.md. */
  warnings?: string[];
}

/** Per-variant export: bytes and accuracy of the deployed artefact. */
export interface ExportInfo {
  bytes: number;
  accuracy: number;
  loss?: number;
  /** Fraction of images on which the exported model agrees with the simulation. */
  agreement: number;
  files: string[];
  /** Which implementation measured the exported bytes, and on how many images (absent: simulated). */
  evaluator?: Evaluator;
  images?: number;
  /** model.tflite: its bytes and LiteRT's agreement with the interpreter (absent: not exported). */
  tflite?: { bytes: number; agreement: number };
}

/** Exports a finished quantized variant into `dir` and measures the exported bytes on `val`. */
export type Exporter = (
  input: ExportInput,
  dir: string,
  val: Dataset,
  floatAccuracy: number | null,
) => Promise<ExportInfo>;

/** The files {@link exportVariant} writes. */
export const EXPORT_FILES = [
  "model.qgt",
  "model_data.h",
  "model_data.c",
  "model.tflite",
  "model.json",
  "weights.bin",
  "summary.json",
  "summary.md",
];

/**
 * The runner's exporter: writes the export files of a quantized variant and
 * returns the exported bytes and the interpreter's accuracy. Variants with
 * non-8-bit (or float) activations cannot run as int8 and report their
 * simulated figures.
 *
 * @example
 * ```ts ignore
 * const info = await exportVariant(input, dir, val, 0.9);
 * ```
 */
export async function exportVariant(
  o: ExportInput,
  dir: string,
  val: Dataset,
  floatAccuracy: number | null,
): Promise<ExportInfo> {
  if (o.activationBits !== 8) {
    return { bytes: o.quantizedBytes, accuracy: o.simulated.accuracy, agreement: 1, files: [] };
  }
  const src = {
    ...exportSource(o.model, o.weights, o.specs, o.activationRanges, val.classNames),
    provenance: o.provenance,
  };
  const s = await writeExport(dir, {
    variant: o.name,
    src,
    model: o.model,
    val,
    calibration: o.calibration,
    tfliteCount: o.tfliteCount,
    simulated: o.simulated,
    floatAccuracy,
    float32Bytes: o.float32Bytes,
    warnings: o.warnings,
  });
  return {
    bytes: s.bytes.total,
    accuracy: s.accuracy,
    agreement: s.agreement,
    files: EXPORT_FILES,
    evaluator: s.evaluator,
    images: s.images,
    ...("skipped" in s.tflite
      ? {}
      : { tflite: { bytes: s.tflite.bytes, agreement: s.tflite.agreement } }),
  };
}

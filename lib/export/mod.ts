/**
 * Export: the packed `model.qgt` format, bit packing, the integer reference
 * interpreter, C arrays and tfjs LayersModels, and the runner's exporter.
 * @module
 */
import type { VariantOutcome } from "../experiment/pipeline.ts";
import type { ExportInfo } from "../experiment/runner.ts";
import type { Dataset } from "../data/dataset.ts";
import { exportSource, writeExport } from "./export.ts";

export * from "./pack.ts";
export * from "./format.ts";
export * from "./interpreter.ts";
export * from "./export.ts";

/**
 * The runner's exporter: writes the export files of a quantized variant and
 * returns the exported bytes and the interpreter's accuracy. Variants with
 * non-8-bit (or float) activations cannot run as int8 and report their
 * simulated figures.
 *
 * @example
 * ```ts ignore
 * const info = await exportVariant(outcome, dir, val, 0.9);
 * ```
 */
export async function exportVariant(
  o: VariantOutcome,
  dir: string,
  val: Dataset,
  floatAccuracy: number | null,
): Promise<ExportInfo> {
  const q = o.quantized;
  if (!q || q.activationBits !== 8) {
    return { bytes: o.summary.quantizedBytes, accuracy: o.eval.accuracy, agreement: 1, files: [] };
  }
  const src = exportSource(o.model, q.weights, q.specs, q.activationRanges, val.classNames);
  const s = await writeExport(
    dir,
    o.name,
    src,
    o.model,
    val,
    o.eval,
    floatAccuracy,
    o.summary.float32Bytes,
  );
  return {
    bytes: s.bytes.total,
    accuracy: s.accuracy,
    agreement: s.agreement,
    files: [
      "model.qgt",
      "model_data.h",
      "model_data.c",
      "model.json",
      "weights.bin",
      "summary.json",
      "summary.md",
    ],
  };
}

/**
 * Re-exporting a stored variant: a finished run's `final.qgtw` (its deployed weights, codes,
 * scales and ranges) through the same {@link exportVariant} the runner uses, so
 * `deno task export` and a run write the same files by the same rules.
 * @module
 */
import type { Dataset } from "../data/dataset.ts";
import { firstImages } from "../data/dataset.ts";
import { evaluate } from "../eval/evaluate.ts";
import { disposeModel } from "../models/model.ts";
import { activationTransform } from "../quant/activation.ts";
import { CALIBRATION_IMAGES } from "../quant/range.ts";
import { modelSummary } from "../quant/summary.ts";
import { loadDeployed } from "../run/final.ts";
import { provenanceOf, type RunRecord, variantFiles } from "../run/run_dir.ts";
import { type ExportInfo, exportVariant } from "./variant.ts";

/** What {@link exportStoredVariant} needs: the run, the variant, its data and where to write. */
export interface StoredVariant {
  runDir: string;
  record: RunRecord;
  name: string;
  train: Dataset;
  val: Dataset;
  /** Output directory (the variant's export/ in the run by default). */
  dir?: string;
  floatAccuracy: number | null;
}

/**
 * Exports a stored quantized variant and measures it on `val`: the export's figures and its
 * float32 size, or `null` for a float variant (nothing to pack). A variant whose activations
 * are not 8-bit is returned with `files: []` (the int8 formats cannot hold it).
 *
 * @example
 * ```ts ignore
 * const info = await exportStoredVariant({ runDir, record, name: "qgt-2", train, val, floatAccuracy: 0.9 });
 * ```
 */
export async function exportStoredVariant(
  s: StoredVariant,
): Promise<(ExportInfo & { float32Bytes: number; dir: string }) | null> {
  const d = await loadDeployed(variantFiles(s.runDir, s.name).final);
  try {
    const q = d.final.quantized;
    if (!q) return null;
    const summary = modelSummary(d.final.arch, q.specs);
    const simulated = evaluate(d.model, s.val, {
      activationTransform: activationTransform(q.activationBits, q.activationRanges),
    });
    const dir = s.dir ?? variantFiles(s.runDir, s.name).exportDir;
    const info = await exportVariant(
      {
        name: s.name,
        model: d.model,
        specs: q.specs,
        weights: q.weights,
        activationBits: q.activationBits,
        activationRanges: q.activationRanges,
        simulated,
        float32Bytes: summary.float32Bytes,
        quantizedBytes: summary.quantizedBytes,
        provenance: provenanceOf(s.record, s.name, s.val.labels.length),
        calibration: firstImages(s.train, CALIBRATION_IMAGES),
      },
      dir,
      s.val,
      s.floatAccuracy,
    );
    return { ...info, float32Bytes: summary.float32Bytes, dir };
  } finally {
    disposeModel(d.model);
  }
}

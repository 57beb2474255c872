/**
 * qgt: reproducible Quantization Guided Training experiments for TinyML, on
 * TensorFlow.js under Deno.
 *
 * The public API, in pipeline order: backend set-up, data, models,
 * quantizers, QGT, training, evaluation, export, the run directory format,
 * experiments, cross-run analysis.
 * @module
 */
export * from "./lib/backend/mod.ts";
export * from "./lib/data/dataset.ts";
export * from "./lib/data/registry.ts";
export { generateSyntheticPerson, loadSyntheticPerson } from "./lib/data/synthetic_person.ts";
export { loadVww } from "./lib/data/vww.ts";
export { loadFashionMnist } from "./lib/data/fashion_mnist.ts";
export * from "./lib/models/mod.ts";
export * from "./lib/quant/mod.ts";
export * from "./lib/methods/mod.ts";
export * from "./lib/train/mod.ts";
export * from "./lib/eval/evaluate.ts";
export { defineExperiment, resolveExperiment } from "./lib/experiment/define.ts";
export { runExperiment } from "./lib/experiment/runner.ts";
export * from "./lib/run/mod.ts";
export { collectSeeds, defaultPairs, pairRow, variantSeedRows } from "./lib/analysis/seeds.ts";
export { writeSeedsReport } from "./lib/analysis/seeds_report.ts";
export { planSweep, runLocal, runSlurm } from "./lib/sweep/mod.ts";
export { writeSite } from "./lib/site/site.ts";
export {
  compareSummaries,
  joinSummaries,
  pickRuns,
  regressions,
  runDifferences,
  wideRows,
} from "./lib/analysis/compare.ts";
export { buildQgt, parseQgt } from "./lib/format/model_file.ts";
export { loadInterpreter, runInterpreter } from "./lib/engine/interpreter.ts";
export { exportVariant } from "./lib/export/mod.ts";
export { pairedDifference, tCdf, tQuantile } from "./lib/report/stats.ts";
export { deriveSeed, permutation, rng } from "./lib/util/random.ts";

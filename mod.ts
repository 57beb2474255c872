/**
 * qgt: reproducible Quantization Guided Training experiments for TinyML, on
 * TensorFlow.js under Deno.
 *
 * The public API, in pipeline order: backend set-up, data, models, training,
 * evaluation.
 * @module
 */
export * from "./lib/backend/mod.ts";
export * from "./lib/data/dataset.ts";
export * from "./lib/models/mod.ts";
export * from "./lib/train/mod.ts";
export * from "./lib/eval/evaluate.ts";
export { deriveSeed, permutation, rng } from "./lib/util/random.ts";

/**
 * Export: converters from a trained network to its deployed files (`model.qgt` with its C
 * array, the standard TFLite model, a tfjs LayersModel), the per-variant export the runner and
 * `deno task export` share, and re-exporting a stored variant. The formats themselves are
 * lib/format/'s, the engines that run them lib/engine/'s.
 * @module
 */
export * from "./export.ts";
export * from "./keras.ts";
export * from "./tflite.ts";
export * from "./variant.ts";
export * from "./stored.ts";

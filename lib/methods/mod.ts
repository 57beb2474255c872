/**
 * Quantization Guided Training: regularizers, lambda schedules, the quantized
 * training-step setup, post-training quantization (calibration, snapping),
 * compression-bottleneck analysis.
 * @module
 */
export * from "./regularizers.ts";
export * from "./lambda.ts";
export * from "./training_setup.ts";
export * from "./oscillation.ts";
export * from "./ptq.ts";
export * from "./analysis.ts";

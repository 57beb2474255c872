/**
 * Quantization Guided Training: regularizers, lambda schedules, the quantized
 * training-step setup, mode building blocks (PTQ, snapping, calibration),
 * compression-bottleneck analysis and the model summary.
 * @module
 */
export * from "./regularizers.ts";
export * from "./lambda.ts";
export * from "./setup.ts";
export * from "./oscillation.ts";
export * from "./modes.ts";
export * from "./analysis.ts";
export * from "./summary.ts";

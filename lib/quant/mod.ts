/**
 * Quantizers: specs, weight quantizers (max-abs, MSE, LSQ), activation fake
 * quantization, and size accounting.
 * @module
 */
export * from "./spec.ts";
export * from "./quantizer.ts";
export * from "./activation.ts";
export * from "./layers.ts";
export * from "./fp16.ts";
export * from "./range.ts";
export * from "./summary.ts";

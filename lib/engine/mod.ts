/**
 * The engines that run an exported model: qgt's TypeScript integer interpreter, the C runtime
 * through FFI (`native.ts`) and on an emulated Cortex-M4 (`mcu.ts`), and LiteRT for `.tflite`
 * files (`litert.ts`).
 * @module
 */
export * from "./interpreter.ts";
export * from "./native.ts";
export * from "./mcu.ts";
export * from "./litert.ts";
export * from "./evaluate.ts";

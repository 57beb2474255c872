/**
 * Prepares TensorFlow.js for training under Deno.
 *
 * `initBackend("wasm")` loads the XNNPACK/SIMD wasm backend from the npm
 * package's own files (no network), registers the gradient kernels it lacks and
 * the faster replacements (see `wasm_kernels.ts`, `gradients.ts`), and makes it
 * the active backend. `initBackend("cpu")` selects tfjs's pure-JS reference
 * backend, which is slow but is what the wasm gradients are checked against.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import * as wasm from "@tensorflow/tfjs-backend-wasm";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { registerWasmTrainingKernels } from "./wasm_kernels.ts";
import { registerWasmGradients } from "./gradients.ts";

export { registerWasmTrainingKernels } from "./wasm_kernels.ts";
export { registerWasmGradients } from "./gradients.ts";
export * from "./grad_math.ts";
export { GRAD_KERNELS, type GradKernels, gradKernels, setGradKernels } from "./conv_grad_kernel.ts";

/** The backends qgt can train on. */
export type BackendName = "wasm" | "cpu";

/** Names of the supported backends, for validating user input. */
export const BACKENDS: readonly BackendName[] = ["wasm", "cpu"];

let wasmPathsSet = false;

function wasmDistDir(): string {
  const require = createRequire(import.meta.url);
  const entry = require.resolve("@tensorflow/tfjs-backend-wasm");
  return dirname(entry) + "/";
}

/**
 * Makes `name` the active tfjs backend, ready for training. Safe to call again
 * to switch between backends.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { initBackend } from "./mod.ts";
 * await initBackend("wasm");
 * if (tf.getBackend() !== "wasm") throw new Error();
 * ```
 */
export async function initBackend(name: BackendName = "wasm"): Promise<void> {
  if (!BACKENDS.includes(name)) {
    throw new Error(`backend: expected one of ${BACKENDS.join(", ")}, got ${JSON.stringify(name)}`);
  }
  if (name === "wasm") {
    if (!wasmPathsSet) {
      wasm.setWasmPaths(wasmDistDir());
      wasmPathsSet = true;
    }
    registerWasmTrainingKernels();
    registerWasmGradients();
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`backend: tfjs could not initialise the ${name} backend`);
  await tf.ready();
}

/**
 * Versions of the numerical stack, for run records.
 *
 * @example
 * ```ts
 * import { stackVersions } from "./mod.ts";
 * if (!stackVersions().tfjs) throw new Error();
 * ```
 */
export function stackVersions(): { deno: string; tfjs: string; backend: string } {
  return { deno: Deno.version.deno, tfjs: tf.version.tfjs, backend: tf.getBackend() };
}

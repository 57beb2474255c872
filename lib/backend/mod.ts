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
import { loadOneDnn } from "./onednn.ts";
import { UsageError } from "../util/cli.ts";
import { useNativeKernels } from "./native_kernels.ts";
import { nativeSelfCheck } from "./native_check.ts";

export { registerWasmTrainingKernels } from "./wasm_kernels.ts";
export { registerWasmGradients } from "./gradients.ts";
export * from "./grad_math.ts";
export { GRAD_KERNELS, type GradKernels, gradKernels, setGradKernels } from "./conv_grad_kernel.ts";

/**
 * The backends qgt can train on: `wasm` (tfjs's XNNPACK wasm backend with qgt's kernels),
 * `native` (the same with its convolutions and matrix products on oneDNN, `native_kernels.ts`)
 * and `cpu` (tfjs's pure-JS reference).
 */
export type BackendName = "wasm" | "cpu" | "native";

/** Names of the supported backends, for validating user input. */
export const BACKENDS: readonly BackendName[] = ["wasm", "native", "cpu"];

/**
 * Why the native backend cannot be used here (its missing piece, or a failed self-check): a
 * usage error (exit 2) when the user asked for it.
 */
export class NativeUnavailable extends UsageError {
  override name = "NativeUnavailable";
}

let nativeChecked: Promise<string> | null = null;

/** Loads oneDNN, registers the native kernels and runs the self-check once: "" or why not. */
function startNative(): Promise<string> {
  nativeChecked ??= (async () => {
    const d = await loadOneDnn(1);
    if (!d.ok) return d.why;
    useNativeKernels(d.lib, true);
    await tf.setBackend("wasm");
    await tf.ready();
    const why = nativeSelfCheck();
    if (why) {
      useNativeKernels(null, false);
      return `the native kernels failed their self-check (${why})`;
    }
    return "";
  })();
  return nativeChecked;
}

/**
 * Whether the native backend can train here: "" when it can, else why not (what to install,
 * or the self-check that failed).
 *
 * @example
 * ```ts ignore
 * const why = await nativeUnavailableReason();
 * ```
 */
export async function nativeUnavailableReason(): Promise<string> {
  prepareWasm();
  return await startNative();
}

/** What `--backend` takes: a backend, or `auto` (native where it works, else wasm). */
export type BackendChoice = BackendName | "auto";

/**
 * The backend a choice means here: `auto` is `native` when oneDNN loads and passes its
 * self-check, else `wasm` with a note saying why and what to install.
 *
 * @example
 * ```ts ignore
 * const { name, note } = await chooseBackend("auto");
 * if (note) console.error(note);
 * ```
 */
export async function chooseBackend(
  choice: BackendChoice,
): Promise<{ name: BackendName; note?: string }> {
  if (choice !== "auto") return { name: choice };
  const why = await nativeUnavailableReason();
  return why ? { name: "wasm", note: `note: training on wasm: ${why}` } : { name: "native" };
}

function prepareWasm(): void {
  if (!wasmPathsSet) {
    wasm.setWasmPaths(wasmDistDir());
    wasmPathsSet = true;
  }
  registerWasmTrainingKernels();
  registerWasmGradients();
}

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
  if (name === "wasm" || name === "native") prepareWasm();
  if (name === "native") {
    const why = await startNative();
    if (why) throw new NativeUnavailable(`--backend native: ${why}`);
    const d = await loadOneDnn();
    if (d.ok) useNativeKernels(d.lib, true); // back after a switch to wasm
  } else if (name === "wasm") useNativeKernels(null, false);
  const ok = await tf.setBackend(name === "native" ? "wasm" : name);
  if (!ok) throw new Error(`backend: tfjs could not initialise the ${name} backend`);
  await tf.ready();
}

/**
 * Versions of the numerical stack training on `backend`, for run records: with `native`,
 * oneDNN's version and the instruction set it dispatches to.
 *
 * @example
 * ```ts
 * import { stackVersions } from "./mod.ts";
 * const v = await stackVersions("wasm");
 * if (!v.tfjs || v.backend !== "wasm" || v.onednn !== undefined) throw new Error();
 * ```
 */
export async function stackVersions(
  backend: BackendName,
): Promise<{ deno: string; tfjs: string; backend: string; onednn?: string; isa?: string }> {
  const base = { deno: Deno.version.deno, tfjs: tf.version.tfjs, backend };
  if (backend !== "native") return base;
  const d = await loadOneDnn();
  return d.ok ? { ...base, onednn: d.version, isa: d.isa } : base;
}

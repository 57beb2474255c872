/**
 * Instantiates one of qgt's wasm kernel modules (`wasm/*.wasm`) on the
 * memory of tfjs-backend-wasm, so the kernels read and write tensors in
 * place at their offsets. The modules have no data segment and use no stack
 * (`tests/quant_test.ts` checks the built binaries), so they only touch the
 * tensors they are given.
 * @module
 */
import type * as tf from "@tensorflow/tfjs";

/** The parts of tfjs-backend-wasm's backend object the kernels use. */
export interface WasmBackend {
  wasm: { asm: { memory: WebAssembly.Memory } };
  dataIdMap: { get(id: unknown): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

const modules = new Map<string, WebAssembly.Module>();

/**
 * The exports of `wasm/<file>` instantiated on `be`'s memory, and the offset
 * of a float32 tensor in it; null when `be` is not a wasm backend.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { initBackend } from "./mod.ts";
 * import { onBackendMemory, type WasmBackend } from "./wasm_memory.ts";
 * await initBackend("wasm");
 * const m = onBackendMemory(tf.backend() as unknown as WasmBackend, "bn_act.wasm")!;
 * if (!(m.at(tf.tensor1d([1, 2])) > 0)) throw new Error();
 * ```
 */
export function onBackendMemory<E>(
  be: WasmBackend,
  file: string,
): { exports: E; at: (t: tf.TensorInfo) => number } | null {
  const memory = be.wasm?.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory)) return null;
  let mod = modules.get(file);
  if (!mod) {
    mod = new WebAssembly.Module(Deno.readFileSync(new URL(`./wasm/${file}`, import.meta.url)));
    modules.set(file, mod);
  }
  const exports = new WebAssembly.Instance(mod, { env: { memory } }).exports as unknown as E;
  const at = (t: tf.TensorInfo) => {
    const d = be.dataIdMap.get(t.dataId);
    if (!d || t.dtype !== "float32") {
      throw new Error(`internal: ${file}: input is not a float32 tensor of the wasm backend`);
    }
    return d.memoryOffset;
  };
  return { exports, at };
}

/**
 * Runs a `.tflite` in LiteRT.js (`@litertjs/core`: Google's TFLite runtime
 * compiled to WebAssembly, XNNPACK on one thread) under Deno: the independent
 * check that a `model.tflite` is a standard model and computes what qgt's
 * integer interpreter computes. Three shims make the browser package load
 * (`importScripts` for its loader, CommonJS `require`/`__dirname` for the
 * Emscripten glue, which sees Deno's `process` and takes its Node branch,
 * and a print hook), and models run through the package's Emscripten
 * bindings because its public tensor API has no int8. Kernel errors are only
 * printed, with all-zero outputs: every ERROR line printed becomes an
 * exception.
 * @module
 */
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { type Environment, getGlobalLiteRt, loadLiteRt } from "@litertjs/core";
import type { Dataset } from "../data/dataset.ts";
import { loadInterpreter, pixelsToInt8, runInterpreter } from "./interpreter.ts";
import { readTflite, TensorType, writeTflite } from "../format/tflite_schema.ts";

/** The LiteRT.js version this module was checked with. */
export const LITERT_VERSION = "2.5.3";

const runtimeLog: string[] = [];
let loading: Promise<Environment> | null = null;

function takeErrors(): string[] {
  return runtimeLog.splice(0).filter((l) => l.startsWith("ERROR"));
}

/** Loads the runtime once per process (LiteRT.js allows one load); its CPU environment. */
function init(): Promise<Environment> {
  if (!loading) {
    const g = globalThis as unknown as Record<string, unknown>;
    g.importScripts = (url: string) => {
      const code = Deno.readTextFileSync(new URL(url));
      g.ModuleFactory = new Function("require", "__dirname", `${code}\nreturn ModuleFactory;`)(
        createRequire(url),
        fileURLToPath(new URL(".", url)),
      );
    };
    g.Module = {
      print: (s: string) => runtimeLog.push(s),
      printErr: (s: string) => runtimeLog.push(s),
    };
    const wasmDir = new URL("../wasm", import.meta.resolve("@litertjs/core")).href;
    loading = loadCpuOnly(wasmDir);
  }
  return loading;
}

/**
 * Loads LiteRT without a GPU: while it loads, `navigator.gpu` offers no
 * adapter (else LiteRT asks Deno for one, which starts a software GPU and,
 * without a display, prints an XDG_RUNTIME_DIR complaint) and LiteRT's
 * "Failed to create default WebGPU device" warning is dropped.
 */
async function loadCpuOnly(wasmDir: string): Promise<Environment> {
  const warn = console.warn;
  Object.defineProperty(navigator, "gpu", {
    value: { requestAdapter: () => Promise.resolve(null) },
    configurable: true,
  });
  console.warn = (...a: unknown[]) => {
    if (!String(a[0]).startsWith("Failed to create default WebGPU device")) warn(...a);
  };
  try {
    await loadLiteRt(wasmDir);
  } finally {
    console.warn = warn;
    delete (navigator as unknown as Record<string, unknown>).gpu; // the prototype's getter again
  }
  return getGlobalLiteRt().getDefaultEnvironment();
}

/** A compiled model with raw-byte input and output. */
export interface LiteRtModel {
  inputs: { name: string; type: number; dims: number[] }[];
  outputs: { name: string; type: number; dims: number[] }[];
  /** One raw little-endian buffer per input in, one per output out. */
  run(inputs: Uint8Array[]): Promise<Uint8Array[]>;
  delete(): void;
}

// The Emscripten bindings are typed in the package; only what is used here is named.
// deno-lint-ignore no-explicit-any
type Wasm = any;

/**
 * Compiles `.tflite` bytes for the CPU. A model the runtime rejects is an
 * error naming `file` with the runtime's own message.
 *
 * @example
 * ```ts ignore
 * const m = await compileTflite(await Deno.readFile("model.tflite"));
 * const [out] = await m.run([new Uint8Array(96 * 96)]);
 * m.delete();
 * ```
 */
export async function compileTflite(
  bytes: Uint8Array,
  file = "model.tflite",
): Promise<LiteRtModel> {
  const env = await init();
  const w: Wasm = getGlobalLiteRt().liteRtWasm;
  takeErrors();
  const fail = (what: string, e?: unknown): never => {
    const lines = takeErrors();
    throw new Error(
      `${file}: LiteRT ${LITERT_VERSION} ${what}: ${
        [e ? String(e) : "", ...lines].filter(Boolean).join("; ")
      }`,
    );
  };
  const ptr = w._malloc(bytes.byteLength); // the model points into these bytes while it lives
  w.HEAPU8.set(bytes, ptr);
  let model: Wasm, compiled: Wasm;
  try {
    model = w.loadModel(env.liteRtEnvironment, ptr, bytes.byteLength);
    compiled = await w.compileModel(env.liteRtEnvironment, model, {
      environment: env,
      accelerator: "wasm",
      cpuOptions: { numThreads: 1 },
      gpuOptions: {},
      webNNOptions: {},
    });
  } catch (e) {
    w._free(ptr);
    return fail("could not load the model", e);
  }
  if (runtimeLog.some((l) => l.startsWith("ERROR"))) {
    compiled.delete();
    model.delete();
    w._free(ptr);
    fail("could not compile the model");
  }
  const sig = model.getSignature(0);
  const describe = (t: Wasm) => {
    const l = t.layout(), d = l.dimensions();
    const dims = Array.from({ length: d.size() }, (_, i) => d.get(i) as number);
    const r = { type: t.elementType().value as number, dims };
    d.delete();
    l.delete();
    t.delete();
    return r;
  };
  const names = (v: Wasm): string[] => {
    const a = Array.from({ length: v.size() }, (_, i) => v.get(i) as string);
    v.delete();
    return a;
  };
  const inputs = names(sig.inputNames()).map((name, i) => ({
    name,
    ...describe(model.getInputTensorType(0, i)),
  }));
  const outputs = names(sig.outputNames()).map((name, i) => ({
    name,
    ...describe(model.getOutputTensorType(0, i)),
  }));
  return {
    inputs,
    outputs,
    async run(data) {
      const bufs = inputs.map((inp, i) => {
        const dims = new w.VectorInt32();
        for (const d of inp.dims) dims.push_back(d);
        const layout = w.LiteRtLayout.create(dims);
        dims.delete();
        const type = w.LiteRtRankedTensorType.create({ value: inp.type }, layout);
        layout.delete();
        const size = type.bytes();
        if (size !== data[i].byteLength) {
          type.delete();
          throw new Error(
            `${file}: input ${inp.name}: ${data[i].byteLength} bytes, expected ${size}`,
          );
        }
        const buf = w.LiteRtTensorBuffer.createManaged(
          env.liteRtEnvironment,
          w.LiteRtTensorBufferType.HOST_MEMORY,
          type,
          size,
        );
        type.delete();
        const p = buf.lock(w.LiteRtTensorBufferLockMode.WRITE);
        w.HEAPU8.set(data[i], p);
        buf.unlock();
        return buf;
      });
      const outs: Wasm[] = await compiled.run(0, bufs);
      bufs.forEach((b: Wasm) => b.delete());
      if (runtimeLog.some((l) => l.startsWith("ERROR"))) {
        outs.forEach((o) => o.delete());
        fail("failed to run the model");
      }
      return outs.map((o) => {
        const p = o.lock(w.LiteRtTensorBufferLockMode.READ);
        const out = w.HEAPU8.slice(p, p + o.packedSize()) as Uint8Array;
        o.unlock();
        o.delete();
        return out;
      });
    },
    delete() {
      sig.delete();
      compiled.delete();
      model.delete();
      w._free(ptr);
    },
  };
}

/** LiteRT element types of int8 and int16 tensors. */
const INT8 = 9, INT16 = 7;

/** A raw int8 or int16 output as numbers. */
function typedOutput(type: number, raw: Uint8Array): Int8Array | Int16Array {
  if (type === INT8) return new Int8Array(raw.buffer, raw.byteOffset, raw.length);
  if (type === INT16) return new Int16Array(raw.slice().buffer);
  throw new Error(`LiteRT output element type ${type}: expected int8 (9) or int16 (7)`);
}

/** The int8 outputs of a `.tflite` classifier on every image of a dataset, and its argmax. */
export interface TfliteEval {
  /** Predicted class per image: the largest int8 output, ties to the lowest class. */
  predictions: Uint8Array;
  /** The raw int8 (or int16) outputs, images x classes. */
  outputs: Int16Array;
  accuracy: number;
}

/**
 * Runs a qgt-exported `.tflite` (int8 input q = pixel - 128, int8 or int16 logits out)
 * in LiteRT on every image of `ds`.
 *
 * @example
 * ```ts ignore
 * const r = await evaluateTflite(await Deno.readFile("model.tflite"), val);
 * ```
 */
export async function evaluateTflite(
  bytes: Uint8Array,
  ds: Dataset,
  file = "model.tflite",
  onImages?: (done: number, total: number) => void,
): Promise<TfliteEval> {
  const m = await compileTflite(bytes, file);
  try {
    const per = ds.shape.reduce((a, b) => a * b, 1);
    const want = m.inputs[0].dims.reduce((a, b) => a * b, 1);
    if (m.inputs.length !== 1 || want !== per) {
      throw new Error(
        `${file}: model input ${m.inputs.map((i) => i.dims.join("x")).join(", ")} != data ${
          ds.shape.join("x")
        }`,
      );
    }
    const n = ds.labels.length, classes = m.outputs[0].dims.reduce((a, b) => a * b, 1);
    const outputs = new Int16Array(n * classes), predictions = new Uint8Array(n);
    let correct = 0;
    for (let i = 0; i < n; i++) {
      const x = pixelsToInt8(ds.images.subarray(i * per, (i + 1) * per));
      const [raw] = await m.run([new Uint8Array(x.buffer)]);
      const y = typedOutput(m.outputs[0].type, raw);
      outputs.set(y, i * classes);
      let best = 0;
      for (let c = 1; c < classes; c++) if (y[c] > y[best]) best = c;
      predictions[i] = best;
      if (best === ds.labels[i]) correct++;
      if (onImages && ((i + 1) % 16 === 0 || i + 1 === n)) onImages(i + 1, n);
    }
    return { predictions, outputs, accuracy: n ? correct / n : NaN };
  } finally {
    m.delete();
  }
}

/** How one layer's int8 outputs in LiteRT compare with qgt's interpreter. */
export interface LayerDifference {
  layer: string;
  /** Output values compared, and how many differ. */
  values: number;
  differing: number;
  /** The largest difference, in steps of the layer's output scale. */
  maxSteps: number;
}

/**
 * Runs the `.tflite` converted from `qgtBytes` with every operator's output
 * exposed, and counts per layer how many int8 outputs differ from qgt's
 * interpreter on `images` (int8, q = pixel - 128): where TFLite's arithmetic
 * and qgt's part, and how a last-bit difference grows through the layers
 * after it. The logit layer is compared on its int8 output against qgt's
 * logits rounded to that output's parameters.
 *
 * @example
 * ```ts ignore
 * const diffs = await compareLayers(qgtBytes, tfliteBytes, images);
 * ```
 */
export async function compareLayers(
  qgtBytes: Uint8Array,
  tfliteBytes: Uint8Array,
  images: Int8Array[],
): Promise<LayerDifference[]> {
  const it = loadInterpreter(qgtBytes);
  const m = readTflite(tfliteBytes);
  const acts = m.operators.map((op) => op.outputs[0]);
  m.outputs = acts;
  m.signature.outputs = acts.map((a) => [m.tensors[a].name, a]);
  const model = await compileTflite(writeTflite(m));
  const last = it.layers[it.layers.length - 1];
  const outQ = m.tensors[acts[acts.length - 1]].quant!;
  const wide = m.tensors[acts[acts.length - 1]].type === TensorType.INT16;
  const diffs = new Map(
    it.layers.map((l) => [l.name, { layer: l.name, values: 0, differing: 0, maxSteps: 0 }]),
  );
  const tally = (name: string, want: ArrayLike<number>, got: ArrayLike<number>) => {
    const d = diffs.get(name)!;
    for (let k = 0; k < want.length; k++) {
      const s = Math.abs(want[k] - got[k]);
      d.values++;
      if (s) d.differing++;
      if (s > d.maxSteps) d.maxSteps = s;
    }
  };
  try {
    for (const x of images) {
      const outs = await model.run([new Uint8Array(x.slice().buffer)]);
      const got = new Map(model.outputs.map((o, j) => [o.name, typedOutput(o.type, outs[j])]));
      const { acc } = runInterpreter(it, x, (name, out) => {
        if (name !== last.name) tally(name, out, got.get(name)!);
      });
      const want = Array.from(acc, (a, c) => {
        const q = Math.round((a * last.inScale! * last.weightScale![c]) / outQ.scale[0]) +
          outQ.zeroPoint[0];
        return wide ? Math.max(-32768, Math.min(32767, q)) : Math.max(-128, Math.min(127, q));
      });
      tally(last.name, want, got.get(last.name)!);
    }
  } finally {
    model.delete();
  }
  return [...diffs.values()];
}

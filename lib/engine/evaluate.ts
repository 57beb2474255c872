/**
 * Measuring an exported model on a dataset: with the C runtime where a compiler is present, else
 * the TypeScript interpreter (in worker threads); accuracy, loss and each image's prediction.
 * @module
 */
import type { Dataset } from "../data/dataset.ts";
import { loadInterpreter, pixelsToInt8 } from "./interpreter.ts";
import { loadNative } from "./native.ts";

/** Which implementation ran an exported model: the C runtime, or the TypeScript interpreter. */
export type Evaluator = "c-runtime" | "ts-interpreter";

/** Interpreter results on a dataset. */
export interface InterpreterEval {
  accuracy: number;
  predictions: Uint8Array;
  seconds: number;
  evaluator: Evaluator;
  /** The last layer's int32 accumulators, image by image (when asked for). */
  logits?: Int32Array;
}

/**
 * Runs exported model bytes over every image of `ds` with the C runtime when
 * it is available here (built once per machine), else with the TypeScript
 * interpreter in worker threads. Both give the same predictions.
 *
 * @example
 * ```ts ignore
 * const r = await evaluateModel(await Deno.readFile("model.qgt"), val);
 * ```
 */
export async function evaluateModel(
  bytes: Uint8Array,
  ds: Dataset,
  file = "model.qgt",
  onImages?: (done: number, total: number) => void,
): Promise<InterpreterEval> {
  const it = loadInterpreter(bytes, file); // validates the file with the reference reader's messages
  const per = ds.shape.reduce((a, b) => a * b, 1);
  if (per !== it.header.input.shape.reduce((a, b) => a * b, 1)) {
    throw new Error(
      `${file}: model input ${it.header.input.shape.join("x")} != data ${ds.shape.join("x")}`,
    );
  }
  const native = await loadNative(bytes, file);
  if (!native) {
    return evaluateInterpreter(bytes, ds, file, undefined, false, onImages);
  }
  const t0 = performance.now(), n = ds.labels.length;
  const predictions = new Uint8Array(n);
  let correct = 0;
  for (let i = 0; i < n; i++) {
    predictions[i] = native.predict(pixelsToInt8(ds.images.subarray(i * per, (i + 1) * per)));
    if (predictions[i] === ds.labels[i]) correct++;
    if (onImages && ((i + 1) % 64 === 0 || i + 1 === n)) onImages(i + 1, n);
  }
  return {
    accuracy: n ? correct / n : NaN,
    predictions,
    seconds: (performance.now() - t0) / 1000,
    evaluator: "c-runtime",
  };
}

/**
 * Runs the integer interpreter from `bytes` over every image of `ds`, split
 * over `threads` worker threads (default: the machine's cores, at most 4).
 * Predictions do not depend on the thread count.
 *
 * @example
 * ```ts ignore
 * const r = await evaluateInterpreter(await Deno.readFile("model.qgt"), val);
 * ```
 */
export async function evaluateInterpreter(
  bytes: Uint8Array,
  ds: Dataset,
  file = "model.qgt",
  threads = Math.min(4, navigator.hardwareConcurrency || 1),
  withLogits = false,
  onImages?: (done: number, total: number) => void,
): Promise<InterpreterEval> {
  const it = loadInterpreter(bytes, file); // validates the file and the input shape here, with clear errors
  const per = ds.shape.reduce((a, b) => a * b, 1);
  const want = it.header.input.shape.reduce((a, b) => a * b, 1);
  if (per !== want) {
    throw new Error(
      `${file}: model input ${it.header.input.shape.join("x")} != data ${ds.shape.join("x")}`,
    );
  }
  const n = ds.labels.length;
  const t0 = performance.now();
  const k = Math.max(1, Math.min(threads, Math.ceil(n / 64)));
  const shards = Array.from(
    { length: k },
    (_, i) => [Math.floor((i * n) / k), Math.floor(((i + 1) * n) / k)],
  );
  type Part = { predictions: Uint8Array; logits?: Int32Array };
  let done = 0;
  const parts = await Promise.all(
    shards.map(([a, b]) =>
      new Promise<Part>((resolve, reject) => {
        const w = new Worker(new URL("./interp_worker.ts", import.meta.url).href, {
          type: "module",
        });
        w.onmessage = (e: MessageEvent<Part & { error?: string; done?: number }>) => {
          if (e.data.done) { // a progress message: images done so far in this shard
            onImages?.(done += e.data.done, n);
            return;
          }
          w.terminate();
          if (e.data.error) reject(new Error(`interpreter worker: ${e.data.error}`));
          else resolve(e.data);
        };
        w.onerror = (e) => {
          e.preventDefault();
          w.terminate();
          reject(new Error(`interpreter worker: ${e.message}`));
        };
        const images = ds.images.slice(a * per, b * per);
        w.postMessage({ bytes, images, per, file, logits: withLogits });
      })
    ),
  );
  const classes = it.header.classes.length;
  const predictions = new Uint8Array(n);
  const logits = withLogits ? new Int32Array(n * classes) : undefined;
  shards.forEach(([a], i) => {
    predictions.set(parts[i].predictions, a);
    if (logits) logits.set(parts[i].logits!, a * classes);
  });
  let correct = 0;
  for (let i = 0; i < n; i++) if (predictions[i] === ds.labels[i]) correct++;
  onImages?.(n, n);
  return {
    accuracy: n ? correct / n : NaN,
    predictions,
    seconds: (performance.now() - t0) / 1000,
    evaluator: "ts-interpreter",
    ...(logits ? { logits } : {}),
  };
}

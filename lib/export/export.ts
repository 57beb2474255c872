/**
 * Exports a quantized variant: `model.qgt` (the packed integer model),
 * `model_data.h` / `model_data.c` (the same bytes as a C array), `model.tflite`
 * (the same network as a standard int8 TFLite model, checked in LiteRT), a tfjs
 * LayersModel (`model.json` + `weights.bin`, dequantized folded weights), and
 * `summary.json` / `summary.md` with bytes by part and the accuracy of the
 * exported model measured by the integer interpreter on the validation set.
 * @module
 */
import { CALIBRATION_IMAGES } from "../quant/range.ts";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import type { Dataset } from "../data/dataset.ts";
import { DEFAULT_NORMALIZATION, firstImages } from "../data/dataset.ts";
import type { Model } from "../models/model.ts";
import type { AddSpec, ArchSpec, LayerSpec } from "../models/spec.ts";
import { isWeightLayer, layerInputs, NETWORK_INPUT } from "../models/spec.ts";
import { writeFileAtomic, writeJsonAtomic, writeTextAtomic } from "../util/fs.ts";
import { buildQgt, type ExportSource, parseQgt } from "../format/model_file.ts";
import { cArray } from "../format/c_array.ts";
import { loadInterpreter, pixelsToInt8 } from "../engine/interpreter.ts";
import { loadNative } from "../engine/native.ts";
import { logitRange, qgtToTflite, TfliteUnsupportedError } from "./tflite.ts";
import { evaluateTflite, LITERT_VERSION } from "../engine/litert.ts";

/**
 * The source of an export from a folded, snapped model.
 *
 * @example
 * ```ts ignore
 * const src = exportSource(model, weights, specs, ranges, classNames);
 * ```
 */
export function exportSource(
  model: Model,
  weights: ExportSource["weights"],
  specs: ExportSource["specs"],
  activationRanges: ExportSource["activationRanges"],
  classNames: string[],
): ExportSource {
  const biases: Record<string, Float32Array> = {};
  for (const l of model.arch.layers) {
    if (!isWeightLayer(l)) continue;
    const b = model.params.get(`${l.name}/bias`);
    if (!b) throw new Error(`export: layer ${l.name} has no bias (fold BatchNorm first)`);
    biases[l.name] = b.dataSync() as Float32Array;
  }
  return {
    arch: model.arch,
    classNames,
    biases,
    weights,
    specs,
    activationRanges,
    normalize: DEFAULT_NORMALIZATION,
  };
}

/** The Keras layer of one qgt layer (not add), with `input` (the first layer's input shape). */
function kerasLayer(
  l: Exclude<LayerSpec, AddSpec>,
  input: { inputShape?: [number, number, number] },
): tf.layers.Layer {
  const act = (a: string) => (a === "none" ? "linear" : a) as "linear" | "relu" | "relu6";
  switch (l.type) {
    case "conv2d":
      return tf.layers.conv2d({
        ...input,
        name: l.name,
        filters: l.filters,
        kernelSize: l.kernel,
        strides: l.stride,
        padding: l.padding,
        useBias: true,
        activation: act(l.act),
      });
    case "depthwise2d":
      return tf.layers.depthwiseConv2d({
        ...input,
        name: l.name,
        kernelSize: l.kernel,
        strides: l.stride,
        padding: l.padding,
        depthMultiplier: 1,
        useBias: true,
        activation: act(l.act),
      });
    case "maxpool":
      return tf.layers.maxPooling2d({
        ...input,
        name: l.name,
        poolSize: l.size,
        strides: l.stride,
        padding: "valid",
      });
    case "gap":
      return tf.layers.globalAveragePooling2d({ ...input, name: l.name });
    case "dense":
      return tf.layers.dense({
        ...input,
        name: l.name,
        units: l.units,
        useBias: true,
        activation: act(l.act),
      });
  }
}

/**
 * A tfjs LayersModel with the model's (dequantized, folded) weights; explicit
 * layer names keep `model.json` identical between exports.
 *
 * @example
 * ```ts
 * import { createModel, foldBatchNorm, tinyCnn } from "../models/mod.ts";
 * import { toLayersModel } from "./export.ts";
 * const m = foldBatchNorm(createModel(tinyCnn(), 1));
 * const lm = toLayersModel(m);
 * if (lm.layers.length < m.arch.layers.length) throw new Error();
 * ```
 */
export function toLayersModel(model: Model): tf.LayersModel {
  const arch: ArchSpec = model.arch;
  let m: tf.LayersModel;
  if (arch.layers.some((l) => l.inputs || l.type === "add")) {
    // residual connections: a functional model, each layer applied to the outputs it reads
    const inputs = layerInputs(arch);
    const outs = new Map<string, tf.SymbolicTensor>([
      [NETWORK_INPUT, tf.input({ shape: arch.inputShape, name: NETWORK_INPUT })],
    ]);
    for (const l of arch.layers) {
      const from = inputs.get(l.name)!.map((n) => outs.get(n)!);
      let y: tf.SymbolicTensor;
      if (l.type === "add") {
        y = tf.layers.add({ name: l.name }).apply(from) as tf.SymbolicTensor;
        if (l.act !== "none") {
          y = tf.layers.activation({ name: `${l.name}_${l.act}`, activation: l.act })
            .apply(y) as tf.SymbolicTensor;
        }
      } else y = kerasLayer(l, {}).apply(from[0]) as tf.SymbolicTensor;
      outs.set(l.name, y);
    }
    m = tf.model({
      name: arch.name,
      inputs: outs.get(NETWORK_INPUT)!,
      outputs: outs.get(arch.layers[arch.layers.length - 1].name)!,
    });
  } else {
    const seq = tf.sequential({ name: arch.name });
    arch.layers.forEach((l, i) => {
      seq.add(
        kerasLayer(
          l as Exclude<LayerSpec, AddSpec>,
          i === 0 ? { inputShape: arch.inputShape } : {},
        ),
      );
    });
    m = seq;
  }
  for (const l of arch.layers) {
    if (!isWeightLayer(l)) continue;
    const k = model.params.get(`${l.name}/kernel`), b = model.params.get(`${l.name}/bias`);
    if (!k || !b) {
      throw new Error(`export: layer ${l.name} needs kernel and bias (fold BatchNorm first)`);
    }
    m.getLayer(l.name).setWeights([k, b]);
  }
  return m;
}

/**
 * Writes a LayersModel as model.json + weights.bin in `dir`.
 *
 * @example
 * ```ts
 * import { createModel, foldBatchNorm, tinyCnn } from "../models/mod.ts";
 * import { saveLayersModel, toLayersModel } from "./export.ts";
 * const dir = await Deno.makeTempDir();
 * await saveLayersModel(toLayersModel(foldBatchNorm(createModel(tinyCnn(), 1))), dir);
 * if (!(await Deno.stat(`${dir}/weights.bin`)).size) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveLayersModel(m: tf.LayersModel, dir: string): Promise<void> {
  let saved: tf.io.ModelArtifacts | null = null;
  await m.save(tf.io.withSaveHandler((a) => {
    saved = a;
    return Promise.resolve({
      modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: "JSON" },
    });
  }));
  const a = saved! as tf.io.ModelArtifacts;
  const data = a.weightData instanceof ArrayBuffer
    ? new Uint8Array(a.weightData)
    : new Uint8Array(tf.io.concatenateArrayBuffers(a.weightData as ArrayBuffer[]));
  await writeFileAtomic(join(dir, "weights.bin"), data);
  await writeJsonAtomic(join(dir, "model.json"), {
    format: "layers-model",
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: null,
    modelTopology: a.modelTopology,
    weightsManifest: [{ paths: ["weights.bin"], weights: a.weightSpecs }],
  });
}

/**
 * An IOHandler reading model.json + weights.bin from a directory (tfjs has no file:// loader in Deno).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { createModel, foldBatchNorm, tinyCnn } from "../models/mod.ts";
 * import { fileLoader, saveLayersModel, toLayersModel } from "./export.ts";
 * const dir = await Deno.makeTempDir();
 * const lm = toLayersModel(foldBatchNorm(createModel(tinyCnn(), 1)));
 * await saveLayersModel(lm, dir);
 * const back = await tf.loadLayersModel(fileLoader(dir));
 * if (back.countParams() !== lm.countParams()) throw new Error();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function fileLoader(dir: string): tf.io.IOHandler {
  return {
    load: async () => {
      const json = JSON.parse(await Deno.readTextFile(join(dir, "model.json")));
      const bin = await Deno.readFile(join(dir, "weights.bin"));
      return {
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest[0].weights,
        weightData: bin.buffer.slice(
          bin.byteOffset,
          bin.byteOffset + bin.byteLength,
        ) as ArrayBuffer,
        format: json.format,
      };
    },
  };
}

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
        const w = new Worker(new URL("../engine/interp_worker.ts", import.meta.url).href, {
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

/** The size and accuracy summary written beside an export. */
export interface ExportSummary {
  variant: string;
  bytes: {
    weightCodes: number;
    scales: number;
    zeroPoints: number;
    biases: number;
    header: number;
    total: number;
  };
  float32Bytes: number;
  reduction: number;
  floatAccuracy: number | null;
  accuracy: number;
  simulatedAccuracy: number;
  agreement: number;
  dropPoints: number | null;
  /** Which implementation measured the exported bytes, on how many images. */
  evaluator: Evaluator;
  images: number;
  /** The same network as a standard TFLite model, run in LiteRT on the same images (or why not written). */
  tflite: TfliteSummary | { skipped: string };
  /** The run's warnings about the data these figures were measured on (absent: none). */
  warnings?: string[];
  interpreterSecondsPerImage: number;
}

/** `model.tflite` beside `model.qgt`: its size, and what LiteRT computes with it. */
export interface TfliteSummary {
  bytes: number;
  /** Bytes of the same model with every weight in int8 (the standard int8 deployment; not written). */
  int8Bytes: number;
  /** model.qgt bytes / model.tflite bytes. */
  qgtFraction: number;
  /** Layers whose weights are packed INT4 (the rest are int8). */
  int4Layers: string[];
  /** The output: logit = scale * (q - zeroPoint), int16 (or int8), range from training images. */
  output: { scale: number; zeroPoint: number; type: "int8" | "int16" };
  runtime: string;
  /** LiteRT ran the first this many validation images (INT4 layers run on its slow reference kernels). */
  images: number;
  accuracy: number;
  /** model.qgt's accuracy on the same images. */
  qgtAccuracy: number;
  /** Fraction of those images on which LiteRT predicts the class qgt's interpreter predicts. */
  agreement: number;
}

/** How many validation images LiteRT runs by default (its INT4 kernels take ~50 ms per person image). */
export const TFLITE_EVAL_IMAGES = 500;

/** What {@link writeExport} exports and measures. */
export interface ExportJob {
  variant: string;
  src: ExportSource;
  /** The folded, snapped network (saved as a tfjs LayersModel). */
  model: Model;
  /** The images the exported model is measured on. */
  val: Dataset;
  /** Training images that set the output range of `model.tflite` (the first CALIBRATION_IMAGES used). */
  calibration: Dataset;
  /** LiteRT runs `model.tflite` on the first this many images of `val` (default 500). */
  tfliteCount?: number;
  simulated: { accuracy: number; predictions: Uint8Array };
  floatAccuracy: number | null;
  float32Bytes: number;
  /** Warnings about the data the figures were measured on (summary.json and summary.md). */
  warnings?: string[];
}

/**
 * Converts the exported bytes to `model.tflite` (output range from the
 * calibration images) and measures it in LiteRT against the interpreter's
 * predictions.
 */
async function exportTflite(
  bytes: Uint8Array,
  dir: string,
  job: ExportJob,
  qgtPredictions: Uint8Array,
): Promise<TfliteSummary | { skipped: string }> {
  const file = join(dir, "model.qgt");
  const logits = await logitRange(bytes, job.calibration, CALIBRATION_IMAGES, file);
  let t;
  try {
    t = qgtToTflite(bytes, { logits }, file);
  } catch (e) {
    if (e instanceof TfliteUnsupportedError) return { skipped: e.message };
    throw e;
  }
  const n = Math.min(job.tfliteCount ?? TFLITE_EVAL_IMAGES, job.val.labels.length);
  const r = await evaluateTflite(t.bytes, firstImages(job.val, n), join(dir, "model.tflite"));
  let agree = 0, qgtCorrect = 0;
  for (let i = 0; i < n; i++) {
    if (r.predictions[i] === qgtPredictions[i]) agree++;
    if (qgtPredictions[i] === job.val.labels[i]) qgtCorrect++;
  }
  await writeFileAtomic(join(dir, "model.tflite"), t.bytes);
  return {
    bytes: t.bytes.length,
    int8Bytes: qgtToTflite(bytes, { logits, int4: false }, file).bytes.length,
    qgtFraction: bytes.length / t.bytes.length,
    int4Layers: t.int4Layers,
    output: t.output,
    runtime: `LiteRT.js ${LITERT_VERSION}`,
    images: n,
    accuracy: r.accuracy,
    qgtAccuracy: n ? qgtCorrect / n : NaN,
    agreement: n ? agree / n : 1,
  };
}

/**
 * Writes the export files of a variant into `dir` (model.qgt, its C array,
 * model.tflite, a tfjs LayersModel, summary.json/.md) and evaluates the
 * exported bytes on `val`: model.qgt with the integer interpreter, model.tflite
 * in LiteRT.
 *
 * @example
 * ```ts ignore
 * const s = await writeExport(dir, { variant: "qgt-2", src, model, val, calibration, simulated, floatAccuracy: 0.91, float32Bytes });
 * ```
 */
export async function writeExport(dir: string, job: ExportJob): Promise<ExportSummary> {
  const { src, model, val, simulated, floatAccuracy, float32Bytes } = job;
  const bytes = buildQgt(src);
  const parsed = parseQgt(bytes, join(dir, "model.qgt"));
  await writeFileAtomic(join(dir, "model.qgt"), bytes);
  const { h, c } = cArray(bytes);
  await writeTextAtomic(join(dir, "model_data.h"), h);
  await writeTextAtomic(join(dir, "model_data.c"), c);
  const lm = toLayersModel(model);
  await saveLayersModel(lm, dir);
  lm.dispose();
  const ev = await evaluateModel(bytes, val, join(dir, "model.qgt"));
  const tflite = await exportTflite(bytes, dir, job, ev.predictions);
  let agree = 0;
  for (let i = 0; i < ev.predictions.length; i++) {
    if (ev.predictions[i] === simulated.predictions[i]) agree++;
  }
  const p = parsed.parts;
  const summary: ExportSummary = {
    variant: job.variant,
    bytes: {
      weightCodes: p.codes,
      scales: p.scales,
      zeroPoints: p.zeroPoints,
      biases: p.biases,
      header: p.header,
      total: p.total,
    },
    float32Bytes,
    reduction: float32Bytes / p.total,
    floatAccuracy,
    accuracy: ev.accuracy,
    simulatedAccuracy: simulated.accuracy,
    agreement: ev.predictions.length ? agree / ev.predictions.length : 1,
    dropPoints: floatAccuracy === null ? null : (floatAccuracy - ev.accuracy) * 100,
    evaluator: ev.evaluator,
    images: ev.predictions.length,
    tflite,
    ...(job.warnings?.length ? { warnings: job.warnings } : {}),
    interpreterSecondsPerImage: ev.seconds / Math.max(1, val.labels.length),
  };
  // timing varies between runs: keep it out of the deterministic summary files, and round
  // each value to what it measures (fractions to 1e-4, points and ratios to 0.01)
  const { interpreterSecondsPerImage: _t, ...exact } = summary;
  const r = (x: number, d: number) => Number(x.toFixed(d));
  const stable = {
    ...exact,
    reduction: r(exact.reduction, 2),
    floatAccuracy: exact.floatAccuracy === null ? null : r(exact.floatAccuracy, 4),
    accuracy: r(exact.accuracy, 4),
    simulatedAccuracy: r(exact.simulatedAccuracy, 4),
    agreement: r(exact.agreement, 4),
    dropPoints: exact.dropPoints === null ? null : r(exact.dropPoints, 2),
    tflite: "skipped" in tflite ? tflite : {
      ...tflite,
      qgtFraction: r(tflite.qgtFraction, 4),
      accuracy: r(tflite.accuracy, 4),
      qgtAccuracy: r(tflite.qgtAccuracy, 4),
      agreement: r(tflite.agreement, 4),
    },
  };
  await writeJsonAtomic(join(dir, "summary.json"), stable);
  await writeTextAtomic(join(dir, "summary.md"), summaryMarkdown(stable));
  return summary;
}

function tfliteMarkdown(s: Omit<ExportSummary, "interpreterSecondsPerImage">): string {
  const t = s.tflite;
  if ("skipped" in t) return `## model.tflite\n\nNot written: ${t.skipped}\n`;
  const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
  const weights = t.int4Layers.length
    ? `int8, packed INT4 weights in ${t.int4Layers.length} layers of 4 bits or fewer`
    : "int8 weights";
  const engine = s.evaluator === "c-runtime" ? "C runtime" : "TypeScript interpreter";
  return `## model.tflite (standard TFLite: int8 activations, int8 or INT4 weights)

| file | bytes |
| --- | ---: |
| the same with every weight in int8 (not written) | ${t.int8Bytes} |
| model.tflite (${weights}) | ${t.bytes} |
| model.qgt (bit-packed) | ${s.bytes.total} |

- model.qgt is ${(t.qgtFraction * 100).toFixed(1)} % of model.tflite and ${
    (100 * s.bytes.total / t.int8Bytes).toFixed(1)
  } % of the all-int8 TFLite model: what sub-byte packing saves against the standard
  deployment of the same integer weights
- ${t.output.type} output: logit = ${t.output.scale} * (q - ${t.output.zeroPoint}) (range calibrated on training images)
- on the first ${t.images} images: accuracy in ${t.runtime} ${pct(t.accuracy)} (model.qgt: ${
    pct(t.qgtAccuracy)
  }); the same predicted class as the ${engine} on ${
    pct(t.agreement)
  } (docs/tflite.md: where the two round differently)
`;
}

function summaryMarkdown(s: Omit<ExportSummary, "interpreterSecondsPerImage">): string {
  const pct = (x: number | null) => (x === null ? "n/a" : `${(x * 100).toFixed(2)} %`);
  const warn = s.warnings?.length
    ? `${s.warnings.map((w) => `> **${w.replace(/^warning: /, "Warning:** ")}`).join("\n>\n")}\n\n`
    : "";
  return `# ${s.variant}: exported model

${warn}| part | bytes |
| --- | ---: |
| weight codes (bit-packed) | ${s.bytes.weightCodes} |
| per-channel scales (float16) | ${s.bytes.scales} |
| zero points (int32) | ${s.bytes.zeroPoints} |
| biases (int32, BatchNorm folded) | ${s.bytes.biases} |
| header (preamble + JSON, incl. activation parameters) | ${s.bytes.header} |
| **total deployable (model.qgt)** | **${s.bytes.total}** |

- float32 size of the same (folded) network: ${s.float32Bytes} bytes; reduction ${
    s.reduction.toFixed(2)
  }x
- float accuracy: ${pct(s.floatAccuracy)}
- exported-model accuracy (${
    s.evaluator === "c-runtime" ? "C runtime" : "TypeScript integer interpreter"
  } on ${s.images} validation images): ${pct(s.accuracy)}
- drop: ${s.dropPoints === null ? "n/a" : `${s.dropPoints.toFixed(2)} points`}
- fake-quantized simulation accuracy: ${
    pct(s.simulatedAccuracy)
  }; prediction agreement interpreter vs simulation: ${pct(s.agreement)}

${tfliteMarkdown(s)}`;
}

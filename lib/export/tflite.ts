/**
 * `model.qgt` to a standard fully-integer TFLite model (`model.tflite`), as
 * TFLite Micro's builtin kernels take it: int8 input and activations, int8
 * per-channel symmetric weights (layers of 4 bits or fewer as packed INT4
 * when asked), int32 biases, one scale and zero point per activation tensor,
 * CONV_2D / DEPTHWISE_CONV_2D / MAX_POOL_2D / MEAN / FULLY_CONNECTED with
 * fused ReLU or ReLU6. docs/tflite.md says how the numbers map and where
 * TFLite's arithmetic differs from qgt's in the last bit.
 * @module
 */
import { loadInterpreter, pixelsToInt8, runInterpreter } from "../engine/interpreter.ts";
import { loadNative } from "../engine/native.ts";
import { CALIBRATION_IMAGES, rangeParams } from "../quant/range.ts";
import type { Dataset } from "../data/dataset.ts";
import {
  Activation,
  BuiltinOperator,
  Padding,
  TensorType,
  type TfOptions,
  writeTflite,
} from "../format/tflite_schema.ts";
import {
  ModelBuilder,
  packInt4,
  tensorQuant,
  TfliteUnsupportedError,
  weightTensors,
} from "./tflite_builder.ts";

export { packInt4, TfliteUnsupportedError };

/** The logits of the integer model on calibration images ({@link logitRange}). */
export interface LogitRange {
  /** Smallest and largest logit of any class. */
  all: [number, number];
  /** Smallest second-largest and largest largest logit of an image. */
  topTwo: [number, number];
}

/** How to convert. */
export interface TfliteOptions {
  /** What the output must hold (the last layer has no activation range in `model.qgt`). */
  logits: LogitRange;
  /**
   * The logits' type. "int16" (default): the last hidden activation is
   * widened to int16 (QUANTIZE, exact) and the logit layer runs in TFLite's
   * 16x8 mode (int16 activations, int8 weights, int32 biases and
   * accumulators) on twice the calibrated range, so near-equal logits stay
   * apart and the predicted class is qgt's. "int8": a graph of int8 tensors
   * only, the output on the `topTwo` range; classes whose logits fall in one
   * int8 step then tie.
   */
  output?: "int16" | "int8";
  /** Store the weights of layers of at most 4 bits as packed INT4 (default true). */
  int4?: boolean;
}

/** The converted model and what a user needs to know about it. */
export interface TfliteExport {
  bytes: Uint8Array;
  /** Layers whose weights are packed INT4. */
  int4Layers: string[];
  /** The output's quantization: logit = scale * (q - zeroPoint), q int8 (or int16). */
  output: { scale: number; zeroPoint: number; type: "int8" | "int16" };
  /** The int8 input's: real = scale * (q - zeroPoint), q = pixel - 128. */
  input: { scale: number; zeroPoint: number };
}

/** Operator versions for int8 kernels (INT4 weights in parentheses), from TFLite's op_version.cc. */
const VERSIONS: Record<string, [number, number]> = {
  [BuiltinOperator.CONV_2D]: [3, 7],
  [BuiltinOperator.DEPTHWISE_CONV_2D]: [3, 7],
  [BuiltinOperator.FULLY_CONNECTED]: [4, 10],
  [BuiltinOperator.MAX_POOL_2D]: [2, 2],
  [BuiltinOperator.MEAN]: [2, 2],
  [BuiltinOperator.ADD]: [2, 2],
};

const ACT: Record<string, number> = {
  none: Activation.NONE,
  relu: Activation.RELU,
  relu6: Activation.RELU6,
};

/** The output's parameters: logit = scale * (q - zeroPoint). */
function outputParams(o: TfliteOptions): TfliteExport["output"] {
  if ((o.output ?? "int16") === "int16") {
    // symmetric (TFLite's 16x8 mode wants zero point 0), with a factor 2 of headroom
    const m = 2 * Math.max(Math.abs(o.logits.all[0]), Math.abs(o.logits.all[1]), 1e-6);
    return { scale: Math.fround(m / 32767), zeroPoint: 0, type: "int16" };
  }
  const p = rangeParams(o.logits.topTwo[0], o.logits.topTwo[1], 8);
  return { scale: Math.fround(p.scale), zeroPoint: p.zeroPoint - 128, type: "int8" };
}

/**
 * Converts `model.qgt` bytes (validated by the reference reader) into a
 * `.tflite` with the same integer weights, biases and activation
 * parameters. Weights with zero points are stored as (code - zero point)
 * with zero point 0, so they must fit int8 (int4 for INT4 storage); a layer
 * that does not is an error naming it.
 *
 * @example
 * ```ts ignore
 * const t = qgtToTflite(await Deno.readFile("model.qgt"), { logits: { all: [-8, 8], topTwo: [-1, 8] } });
 * await Deno.writeFile("model.tflite", t.bytes);
 * ```
 */
export function qgtToTflite(
  bytes: Uint8Array,
  o: TfliteOptions,
  file = "model.qgt",
): TfliteExport {
  const it = loadInterpreter(bytes, file);
  const h = it.header, mb = new ModelBuilder();
  const [H, W, C] = h.input.shape;
  const input: Made = {
    x: mb.tensor({
      name: "input",
      shape: [1, H, W, C],
      type: TensorType.INT8,
      quant: tensorQuant(h.input.scale, h.input.zp),
    }),
    q: { scale: h.input.scale, zeroPoint: h.input.zp },
  };
  const c: Conversion = { mb, o, file, outQ: outputParams(o), int4Layers: [] };
  // every layer's output tensor and quantization, by name: residual networks read earlier ones
  const made = new Map<string, Made>([["input", input]]);
  let x = input.x;
  it.file.layers.forEach((l, i) => {
    const rt = it.layers[i];
    const from = made.get(rt.inputs[0])!;
    const y = l.type === "add"
      ? addOp(c, l, rt, from, made.get(rt.inputs[1])!)
      : l.type === "maxpool"
      ? maxPoolOp(c, l, rt, from)
      : l.type === "gap"
      ? meanOp(c, l, rt, from)
      : weightOp(c, l, rt, from, i === it.file.layers.length - 1);
    made.set(l.name, y);
    x = y.x;
  });
  return {
    bytes: finishModel(mb, h, x, c.outQ),
    int4Layers: c.int4Layers,
    output: c.outQ,
    input: { scale: Math.fround(h.input.scale), zeroPoint: h.input.zp },
  };
}

/** A tensor made so far and its quantization. */
interface Made {
  x: number;
  q: { scale: number; zeroPoint: number };
}

/** What every layer's conversion shares. */
interface Conversion {
  mb: ModelBuilder;
  o: TfliteOptions;
  file: string;
  outQ: ReturnType<typeof outputParams>;
  int4Layers: string[];
}

type Layer = ReturnType<typeof loadInterpreter>["file"]["layers"][number];
type RuntimeLayer = ReturnType<typeof loadInterpreter>["layers"][number];

/** An int8 output tensor of `l` with quantization `q`. */
function int8Output(c: Conversion, l: Layer, rt: RuntimeLayer, q: Made["q"]): number {
  return c.mb.tensor({
    name: l.name,
    shape: [1, ...rt.outShape],
    type: TensorType.INT8,
    quant: tensorQuant(q.scale, q.zeroPoint),
  });
}

/** A residual sum: ADD with its own output quantization and fused activation. */
function addOp(c: Conversion, l: Layer, rt: RuntimeLayer, a: Made, b: Made): Made {
  const q = { scale: l.out![0], zeroPoint: l.out![1] };
  const y = int8Output(c, l, rt, q);
  c.mb.op(BuiltinOperator.ADD, 2, [a.x, b.x], [y], { kind: "add", act: ACT[l.act ?? "none"] });
  return { x: y, q };
}

/** MAX_POOL_2D, valid padding, keeping its input's quantization. */
function maxPoolOp(c: Conversion, l: Layer, rt: RuntimeLayer, from: Made): Made {
  const y = int8Output(c, l, rt, from.q);
  c.mb.op(BuiltinOperator.MAX_POOL_2D, 2, [from.x], [y], {
    kind: "pool",
    padding: Padding.VALID,
    strideW: l.stride!,
    strideH: l.stride!,
    filterW: l.size!,
    filterH: l.size!,
    act: Activation.NONE,
  });
  return { x: y, q: from.q };
}

/** Global average pooling as MEAN over height and width, keeping its input's quantization. */
function meanOp(c: Conversion, l: Layer, rt: RuntimeLayer, from: Made): Made {
  const axes = c.mb.int32s(`${l.name}/axes`, [1, 2]);
  const y = int8Output(c, l, rt, from.q);
  c.mb.op(BuiltinOperator.MEAN, 2, [from.x, axes], [y], { kind: "reducer", keepDims: false });
  return { x: y, q: from.q };
}

/**
 * CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED with its packed weights; the last layer gives
 * the logits (int16 ones through a QUANTIZE of its input to int16 at the same scale).
 *
 * The operator types follow what TFLite Micro's reference and CMSIS-NN kernels both take
 * (TFLM 90b983c, CMSIS-NN 4ab83cc; docs/tflite.md): INT4 weights only for CONV_2D and
 * DEPTHWISE_CONV_2D with int8 input (CMSIS-NN's s4 kernels); FULLY_CONNECTED always with int8
 * weights (per-channel INT4 fully connected layers are rejected by both); int16 logits from a
 * dense layer as a 1x1 CONV_2D in 16x8 mode (int64 biases), between two RESHAPEs, because
 * CMSIS-NN's FULLY_CONNECTED takes per-channel scales only with int8 input.
 */
function weightOp(c: Conversion, l: Layer, rt: RuntimeLayer, from: Made, last: boolean): Made {
  const { mb, o } = c;
  let x = from.x;
  const wide = last && c.outQ.type === "int16";
  const out = last ? c.outQ : { scale: l.out![0], zeroPoint: l.out![1] };
  if (wide) { // int8 -> int16 at the same scale, zero point 0: q16 = q8 - zp8 exactly
    const x16 = mb.tensor({
      name: `${l.name}/input16`,
      shape: [1, ...rt.inShape],
      type: TensorType.INT16,
      quant: tensorQuant(from.q.scale, 0),
    });
    mb.op(BuiltinOperator.QUANTIZE, 2, [x], [x16]);
    x = x16;
  }
  // TFLite's 16x8 kernels take int8 weights only, and no fully connected layer takes INT4 per channel
  const int4 = (o.int4 ?? true) && !wide && l.type !== "dense";
  if (wide && l.type === "dense") return logitConv(c, l, rt, x, from.q.scale, out);
  const packed = weightTensors(mb, l, rt, from.q.scale, int4, c.file);
  if (packed.int4) c.int4Layers.push(l.name);
  const y = mb.tensor({
    name: l.name,
    shape: [1, ...rt.outShape],
    type: wide ? TensorType.INT16 : TensorType.INT8,
    quant: tensorQuant(out.scale, out.zeroPoint),
  });
  const act = ACT[l.act ?? "none"];
  const builtin = l.type === "conv2d"
    ? BuiltinOperator.CONV_2D
    : l.type === "depthwise2d"
    ? BuiltinOperator.DEPTHWISE_CONV_2D
    : BuiltinOperator.FULLY_CONNECTED;
  const padding = l.padding === "same" ? Padding.SAME : Padding.VALID;
  const options: TfOptions = l.type === "conv2d"
    ? { kind: "conv2d", padding, strideW: l.stride!, strideH: l.stride!, act }
    : l.type === "depthwise2d"
    ? {
      kind: "depthwise",
      padding,
      strideW: l.stride!,
      strideH: l.stride!,
      depthMultiplier: 1,
      act,
    }
    : wide
    ? { kind: "fc", act, quantizedBiasType: TensorType.INT32 } // int32 biases and accumulators
    : { kind: "fc", act };
  // FULLY_CONNECTED in 16x8 mode with quantized_bias_type: version 11
  const version = wide ? 11 : VERSIONS[builtin][packed.int4 ? 1 : 0];
  mb.op(builtin, version, [x, packed.filter, packed.bias], [y], options);
  return { x: y, q: out };
}

/**
 * The int16 logits of a dense layer as a 1x1 CONV_2D in 16x8 mode: x16 ([1, C]) reshaped to
 * [1, 1, 1, C], the convolution with the dense weights as [classes, 1, 1, C] and int64 biases,
 * and its output reshaped to [1, classes]. Per-channel scales stay exact.
 */
function logitConv(
  c: Conversion,
  l: Layer,
  rt: RuntimeLayer,
  x16: number,
  inScale: number,
  out: { scale: number; zeroPoint: number },
): Made {
  const { mb } = c;
  const cin = rt.inShape.reduce((a, b) => a * b, 1), classes = rt.outShape.at(-1)!;
  const q16 = tensorQuant(inScale, 0);
  const x4 = mb.tensor({
    name: `${l.name}/input4d`,
    shape: [1, 1, 1, cin],
    type: TensorType.INT16,
    quant: q16,
  });
  mb.op(BuiltinOperator.RESHAPE, 1, [x16, mb.int32s(`${l.name}/shape4d`, [1, 1, 1, cin])], [x4]);
  const packed = weightTensors(mb, l, rt, inScale, false, c.file, true);
  const y4 = mb.tensor({
    name: `${l.name}/conv`,
    shape: [1, 1, 1, classes],
    type: TensorType.INT16,
    quant: tensorQuant(out.scale, out.zeroPoint),
  });
  mb.op(BuiltinOperator.CONV_2D, 4, [x4, packed.filter, packed.bias], [y4], {
    kind: "conv2d",
    padding: Padding.VALID,
    strideW: 1,
    strideH: 1,
    act: ACT[l.act ?? "none"],
  });
  const y = mb.tensor({
    name: l.name,
    shape: [1, classes],
    type: TensorType.INT16,
    quant: tensorQuant(out.scale, out.zeroPoint),
  });
  mb.op(BuiltinOperator.RESHAPE, 1, [y4, mb.int32s(`${l.name}/shape`, [1, classes])], [y]);
  return { x: y, q: out };
}

/** The flatbuffer: metadata (classes, input and output conventions, provenance), signature. */
function finishModel(
  mb: ModelBuilder,
  h: ReturnType<typeof loadInterpreter>["header"],
  logits: number,
  outQ: ReturnType<typeof outputParams>,
): Uint8Array {
  const meta = new TextEncoder().encode(JSON.stringify({
    name: h.name,
    classes: h.classes,
    input: "int8 q = pixel - 128 (uint8 pixels), H x W x C",
    output: `${outQ.type} logits, one per class: logit = scale * (q - zero_point)`,
    ...(h.provenance ? { provenance: h.provenance } : {}),
  }));
  mb.buffers.push(meta);
  return writeTflite({
    description: `qgt ${h.name}: ${h.classes.length} classes (${h.classes.join(", ")})`,
    opcodes: mb.opcodes,
    tensors: mb.tensors,
    inputs: [0],
    outputs: [logits],
    operators: mb.operators,
    buffers: mb.buffers,
    metadata: [{ name: "qgt", buffer: mb.buffers.length - 1 }],
    signature: { key: "serving_default", inputs: [["image", 0]], outputs: [["logits", logits]] },
  });
}

/**
 * The logits of the integer model, acc[c] * s_in * s_w[c], on the first
 * `count` images of `ds` (calibration images, not the ones results are
 * reported on): their whole range, and the range of each image's two largest
 * (what the predicted class and a two-way score need; an int8 output on it
 * saturates the smaller logits of many-class models at -128 instead of
 * coarsening the step for the ones that matter). Run by the C runtime when it
 * is available, else by the TypeScript interpreter.
 *
 * @example
 * ```ts ignore
 * const logits = await logitRange(bytes, firstImages(train, 512));
 * ```
 */
export async function logitRange(
  bytes: Uint8Array,
  ds: Dataset,
  count = CALIBRATION_IMAGES,
  file = "model.qgt",
): Promise<LogitRange> {
  const it = loadInterpreter(bytes, file);
  const last = it.layers[it.layers.length - 1];
  const s = last.weightScale!.map((sw) => sw * last.inScale!);
  const native = await loadNative(bytes, file);
  const per = ds.shape.reduce((a, b) => a * b, 1);
  const n = Math.min(count, ds.labels.length);
  if (n === 0) throw new Error(`${file}: no calibration images for the logit range`);
  let lo = Infinity, second = Infinity, hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const img = pixelsToInt8(ds.images.subarray(i * per, (i + 1) * per));
    const acc = native ? native.invoke(img) : runInterpreter(it, img).acc;
    const l = Array.from(acc, (a, c) => a * s[c]).sort((a, b) => b - a);
    hi = Math.max(hi, l[0]);
    second = Math.min(second, l[1]);
    lo = Math.min(lo, l[l.length - 1]);
  }
  return { all: [lo, hi], topTwo: [second, hi] };
}

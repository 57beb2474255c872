/**
 * Strict validation of a `model.qgt` header (docs/format.md): every key known
 * and of the right type, every count, size, kernel and stride a positive
 * integer, every scale finite and positive, zero points in the int8 range,
 * the layer sequence well formed (shapes derived from the input, a dense
 * last layer giving one output per class). Each problem is one error naming
 * the file, the layer and the field.
 * @module
 */
import { outSize } from "../models/spec.ts";

/** One layer in the header (see docs/format.md for every key). */
export interface HeaderLayer {
  name: string;
  type: "conv2d" | "depthwise2d" | "dense" | "maxpool" | "gap" | "add";
  /**
   * Version 3: the layers this one reads ("input": the network input), when
   * not the one before it; an add layer names its two.
   */
  inputs?: string[];
  /** conv2d: output channels; dense: units. */
  filters?: number;
  units?: number;
  /** Square kernel size (conv2d, depthwise2d). */
  kernel?: number;
  stride?: number;
  padding?: "same" | "valid";
  /** maxpool window. */
  size?: number;
  act?: "none" | "relu" | "relu6";
  bits?: number;
  /** Lowest integer level (codes are stored as code - qmin; 1-bit: 0/1 for -1/+1). */
  qmin?: number;
  /** One scale for the whole kernel instead of one per output channel. */
  perTensor?: boolean;
  /** Payload offsets of the sections. */
  codes?: number;
  scales?: number;
  zeroPoints?: number;
  bias?: number;
  /** Output quantization [scale, zeroPoint] (int8); absent on the logit layer. */
  out?: [number, number];
}

/** Where a model came from (format version 2): enough to find its run and its validation images. */
export interface Provenance {
  experiment: string;
  version: number;
  profile: string;
  seed: number;
  variant: string;
  commit: string;
  dirty: boolean;
  /** The dataset the run validated on: `loadDataset(name, options)` gives the same images. */
  dataset: { name: string; options: Record<string, unknown> };
  /** How many of its validation images the run measured the exported model on (the first ones). */
  validation: { count: number };
}

/** The JSON header. */
export interface QgtHeader {
  format: "qgt";
  version: number;
  name: string;
  classes: string[];
  /** int8 input: q = pixel - 128; real value = scale * (q - zp). */
  input: { shape: [number, number, number]; scale: number; zp: number };
  layers: HeaderLayer[];
  /** Payload length in bytes. */
  payload: number;
  /** Format version 2, optional: where the model came from. */
  provenance?: Provenance;
}

/** A layer with the shapes a reader derived. */
export interface ShapedLayer extends HeaderLayer {
  inShape: number[];
  outShape: number[];
  /** Kernel shape: [k,k,cin,cout] conv, [k,k,c,1] depthwise, [in,out] dense. */
  kernelShape?: number[];
  channels?: number;
}

const WEIGHT_KEYS = ["act", "bits", "qmin", "codes", "scales", "bias"];
const WEIGHT_OPTIONAL = ["perTensor", "zeroPoints", "out"];
const KEYS: Record<HeaderLayer["type"], { required: string[]; optional: string[] }> = {
  conv2d: {
    required: ["name", "type", "filters", "kernel", "stride", "padding", ...WEIGHT_KEYS],
    optional: WEIGHT_OPTIONAL,
  },
  depthwise2d: {
    required: ["name", "type", "kernel", "stride", "padding", ...WEIGHT_KEYS],
    optional: WEIGHT_OPTIONAL,
  },
  dense: { required: ["name", "type", "units", ...WEIGHT_KEYS], optional: WEIGHT_OPTIONAL },
  maxpool: { required: ["name", "type", "size", "stride"], optional: [] },
  gap: { required: ["name", "type"], optional: [] },
  add: { required: ["name", "type", "inputs", "act", "out"], optional: [] },
};
const TOP_KEYS = ["format", "version", "name", "classes", "input", "layers", "payload"];
const PROVENANCE_KEYS = [
  "experiment",
  "version",
  "profile",
  "seed",
  "variant",
  "commit",
  "dirty",
  "dataset",
  "validation",
];

/** Largest image side and channel count a header may declare. */
const MAX_SIDE = 8192, MAX_CHANNELS = 65536;

type Fail = (msg: string) => never;
type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === "object" && x !== null && !Array.isArray(x);

function keysOf(o: Obj, where: string, required: string[], optional: string[], fail: Fail): void {
  for (const k of Object.keys(o)) {
    if (!required.includes(k) && !optional.includes(k)) {
      fail(
        `${where}: unknown key ${JSON.stringify(k)} (expected ${
          [...required, ...optional].join(", ")
        })`,
      );
    }
  }
  for (const k of required) if (!(k in o)) fail(`${where}: missing key ${JSON.stringify(k)}`);
}

function int(v: unknown, where: string, lo: number, hi: number, fail: Fail): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) {
    fail(`${where}: expected an integer in ${lo}..${hi}, got ${JSON.stringify(v)}`);
  }
  return v as number;
}

function scale(v: unknown, where: string, fail: Fail): number {
  if (typeof v !== "number" || !Number.isFinite(v) || !(v > 0)) {
    fail(`${where}: expected a finite positive scale, got ${JSON.stringify(v)}`);
  }
  return v as number;
}

function oneOf<T extends string>(v: unknown, where: string, allowed: readonly T[], fail: Fail): T {
  if (typeof v !== "string" || !allowed.includes(v as T)) {
    fail(`${where}: expected one of ${allowed.join(", ")}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

function checkProvenance(p: unknown, fail: Fail): void {
  const w = "provenance";
  if (!isObj(p)) fail(`${w}: expected an object`);
  const o = p as Obj;
  keysOf(o, w, PROVENANCE_KEYS, [], fail);
  for (const k of ["experiment", "profile", "variant", "commit"]) {
    if (typeof o[k] !== "string") fail(`${w}.${k}: expected a string`);
  }
  int(o.version, `${w}.version`, 0, 2 ** 31, fail);
  int(o.seed, `${w}.seed`, 0, 2 ** 31, fail);
  if (typeof o.dirty !== "boolean") fail(`${w}.dirty: expected true or false`);
  const ds = o.dataset;
  if (!isObj(ds) || typeof ds.name !== "string" || !isObj(ds.options)) {
    fail(`${w}.dataset: expected { name, options }`);
  }
  keysOf(ds as Obj, `${w}.dataset`, ["name", "options"], [], fail);
  if (!isObj(o.validation)) fail(`${w}.validation: expected { count }`);
  keysOf(o.validation as Obj, `${w}.validation`, ["count"], [], fail);
  int((o.validation as Obj).count, `${w}.validation.count`, 0, 2 ** 31, fail);
}

/** The top level of the header: keys, format, version, name, classes, input, payload length. */
function checkTop(h: unknown, version: number, fail: Fail): QgtHeader {
  if (!isObj(h)) fail("corrupt header: not a JSON object");
  const o = h as Obj;
  keysOf(o, "header", TOP_KEYS, version >= 2 ? ["provenance"] : [], fail);
  if (o.format !== "qgt") fail(`header.format: expected "qgt", got ${JSON.stringify(o.format)}`);
  if (o.version !== version) {
    fail(`header.version: ${JSON.stringify(o.version)} differs from the preamble's ${version}`);
  }
  if (typeof o.name !== "string") fail("header.name: expected a string");
  if (
    !Array.isArray(o.classes) || !o.classes.length || o.classes.some((c) => typeof c !== "string")
  ) {
    fail("header.classes: expected a non-empty list of class names");
  }
  const inp = o.input;
  if (!isObj(inp)) fail("header.input: expected { shape, scale, zp }");
  keysOf(inp as Obj, "header.input", ["shape", "scale", "zp"], [], fail);
  const shape = (inp as Obj).shape;
  if (!Array.isArray(shape) || shape.length !== 3) {
    fail("header.input.shape: expected [height, width, channels]");
  }
  (shape as unknown[]).forEach((d, i) =>
    int(d, `header.input.shape[${i}]`, 1, i < 2 ? MAX_SIDE : MAX_CHANNELS, fail)
  );
  scale((inp as Obj).scale, "header.input.scale", fail);
  int((inp as Obj).zp, "header.input.zp", -128, 127, fail);
  if (!Array.isArray(o.layers) || !o.layers.length) {
    fail("header.layers: expected a non-empty list");
  }
  int(o.payload, "header.payload", 0, 2 ** 32, fail);
  if (o.provenance !== undefined) checkProvenance(o.provenance, fail);
  return o as unknown as QgtHeader;
}

/** A weight layer's own fields: activation, bits, qmin, optional output quantization. */
function checkWeightFields(l: Obj, where: string, last: boolean, fail: Fail): void {
  const act = oneOf(l.act, `${where}.act`, ["none", "relu", "relu6"] as const, fail);
  const bits = int(l.bits, `${where}.bits`, 1, 8, fail);
  const qmins = bits === 1 ? [-1] : [-(2 ** (bits - 1)), -(2 ** (bits - 1)) + 1, 0];
  if (!qmins.includes(l.qmin as number)) {
    fail(
      `${where}.qmin: expected one of ${qmins.join(", ")} for ${bits}-bit codes, got ${
        JSON.stringify(l.qmin)
      }`,
    );
  }
  if ("perTensor" in l && l.perTensor !== true) {
    fail(`${where}.perTensor: expected true when present`);
  }
  if (last) {
    if (act !== "none" || "out" in l) {
      fail(`${where}: the last layer gives the logits: act must be "none" and it has no "out"`);
    }
    return;
  }
  const out = l.out;
  if (!Array.isArray(out) || out.length !== 2) {
    fail(
      `${where}.out: expected [scale, zeroPoint] (every weight layer but the last has an int8 output)`,
    );
  }
  scale((out as unknown[])[0], `${where}.out[0]`, fail);
  int((out as unknown[])[1], `${where}.out[1]`, -128, 127, fail);
}

/**
 * One layer: its keys and values, and its output shape from its input
 * shape. Throws through `fail` with the layer's name and field.
 */
function shapeLayer(
  l: unknown,
  i: number,
  shapeOf: (name: string, where: string) => number[],
  previous: string,
  version: number,
  last: boolean,
  fail: Fail,
): ShapedLayer {
  if (!isObj(l)) fail(`layer ${i}: expected an object`);
  const o = l as Obj;
  const name = typeof o.name === "string" && o.name
    ? o.name
    : fail(`layer ${i}: name: expected a non-empty string`);
  const where = `layer ${name}`;
  const types = (Object.keys(KEYS) as HeaderLayer["type"][]).filter((t) =>
    t !== "add" || version >= 3
  );
  const type = oneOf(o.type, `${where}.type`, types, fail);
  const optional = version >= 3 && type !== "add"
    ? [...KEYS[type].optional, "inputs"]
    : KEYS[type].optional;
  keysOf(o, where, KEYS[type].required, optional, fail);
  const want = type === "add" ? 2 : 1;
  if (
    "inputs" in o &&
    (!Array.isArray(o.inputs) || o.inputs.length !== want ||
      o.inputs.some((x) => typeof x !== "string"))
  ) {
    fail(`${where}.inputs: expected ${want} layer name${want > 1 ? "s" : ""}`);
  }
  const ins = ((o.inputs as string[] | undefined) ?? [previous]).map((n) =>
    shapeOf(n, `${where}.inputs`)
  );
  const inShape = ins[0];
  const image = (what: string) => {
    if (inShape.length !== 3) {
      fail(`${where}: ${what} needs an image input, got shape [${inShape}]`);
    }
  };
  let outShape: number[];
  if (type === "conv2d" || type === "depthwise2d") {
    image(type);
    const k = int(o.kernel, `${where}.kernel`, 1, MAX_SIDE, fail);
    const s = int(o.stride, `${where}.stride`, 1, MAX_SIDE, fail);
    const pad = oneOf(o.padding, `${where}.padding`, ["same", "valid"] as const, fail);
    const cout = type === "conv2d"
      ? int(o.filters, `${where}.filters`, 1, MAX_CHANNELS, fail)
      : inShape[2];
    outShape = [outSize(inShape[0], k, s, pad), outSize(inShape[1], k, s, pad), cout];
  } else if (type === "dense") {
    if (inShape.length !== 1) {
      fail(`${where}: dense needs a flat input (after gap or dense), got shape [${inShape}]`);
    }
    outShape = [int(o.units, `${where}.units`, 1, MAX_CHANNELS, fail)];
  } else if (type === "maxpool") {
    image("maxpool");
    const size = int(o.size, `${where}.size`, 1, MAX_SIDE, fail);
    const s = int(o.stride, `${where}.stride`, 1, MAX_SIDE, fail);
    outShape = [
      outSize(inShape[0], size, s, "valid"),
      outSize(inShape[1], size, s, "valid"),
      inShape[2],
    ];
  } else if (type === "add") {
    if (ins[0].join() !== ins[1].join()) {
      fail(`${where}.inputs: adds two outputs of the same shape, got [${ins[0]}] and [${ins[1]}]`);
    }
    oneOf(o.act, `${where}.act`, ["none", "relu", "relu6"] as const, fail);
    const out = o.out;
    if (!Array.isArray(out) || out.length !== 2) fail(`${where}.out: expected [scale, zeroPoint]`);
    scale((out as unknown[])[0], `${where}.out[0]`, fail);
    int((out as unknown[])[1], `${where}.out[1]`, -128, 127, fail);
    outShape = ins[0];
  } else {
    image("gap");
    outShape = [inShape[2]];
  }
  if (outShape.some((d) => !(d >= 1))) fail(`${where}: empty output (shape [${outShape}])`);
  const sl: ShapedLayer = { ...(o as unknown as HeaderLayer), inShape, outShape };
  if (type === "conv2d" || type === "depthwise2d" || type === "dense") {
    checkWeightFields(o, where, last, fail);
    const cin = inShape[inShape.length - 1], cout = outShape[outShape.length - 1];
    sl.kernelShape = type === "conv2d"
      ? [o.kernel as number, o.kernel as number, cin, cout]
      : type === "depthwise2d"
      ? [o.kernel as number, o.kernel as number, cin, 1]
      : [cin, cout];
    sl.channels = cout;
  } else if (last) {
    fail(`${where}: the last layer must be a dense layer (it gives the logits)`);
  }
  return sl;
}

/**
 * Validates a parsed header (numbers already float32 where they are
 * fractions) and derives every layer's shapes. `fail` throws with the file
 * name in front.
 *
 * @example
 * ```ts
 * import { checkHeader } from "./header.ts";
 * const fail = (m: string): never => { throw new Error(m); };
 * const h = { format: "qgt", version: 2, name: "n", classes: ["a", "b"],
 *   input: { shape: [4, 4, 1], scale: 0.5, zp: 0 }, payload: 0,
 *   layers: [{ name: "g", type: "gap" }, { name: "d", type: "dense", units: 2, act: "none",
 *     bits: 8, qmin: -128, codes: 0, scales: 4, bias: 8 }] };
 * const { layers } = checkHeader(h, 2, fail);
 * if (layers[1].kernelShape!.join() !== "1,2") throw new Error();
 * let msg = "";
 * try { checkHeader({ ...h, layers: [{ name: "g", type: "gap", stride: 0 }] }, 2, fail); } catch (e) { msg = (e as Error).message; }
 * if (!msg.startsWith('layer g: unknown key "stride"')) throw new Error(msg);
 * ```
 */
export function checkHeader(
  h: unknown,
  version: number,
  fail: Fail,
): { header: QgtHeader; layers: ShapedLayer[] } {
  const header = checkTop(h, version, fail);
  const shapes = new Map<string, number[]>([["input", [...header.input.shape]]]);
  const shapeOf = (n: string, where: string) =>
    shapes.get(n) ??
      fail(`${where}: ${JSON.stringify(n)} is not an earlier layer (or "input")`);
  let shape: number[] = [...header.input.shape], previous = "input";
  const layers = header.layers.map((l, i) => {
    const sl = shapeLayer(l, i, shapeOf, previous, version, i === header.layers.length - 1, fail);
    if (shapes.has(sl.name)) fail(`layer ${sl.name}: the name is used twice`);
    shapes.set(sl.name, sl.outShape);
    shape = sl.outShape;
    previous = sl.name;
    return sl;
  });
  if (shape.length !== 1 || shape[0] !== header.classes.length) {
    fail(
      `the network outputs ${
        JSON.stringify(shape)
      }, but the header lists ${header.classes.length} classes`,
    );
  }
  return { header, layers };
}

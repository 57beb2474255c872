/**
 * The part of the TFLite flatbuffer schema that qgt writes and reads, kept by
 * hand: enum values, union indices and each table's field slots, taken from
 * `tensorflow/compiler/mlir/lite/schema/schema.fbs` of tensorflow/tflite-micro
 * at 90b983c (2026-08-20), schema version 3, file identifier "TFL3". A model is
 * described as plain data ({@link TfModel}); {@link writeTflite} lays it out
 * with the `flatbuffers` package's Builder and {@link readTflite} reads it back
 * with every offset and length checked, so damaged bytes give one error
 * naming the file, never a crash or a huge allocation.
 * @module
 */
import { Builder } from "flatbuffers";

/** The schema version this module follows (`Model.version`). */
export const TFLITE_SCHEMA_VERSION = 3;
/** The file identifier at bytes 4..8. */
export const TFLITE_IDENTIFIER = "TFL3";

/** `TensorType` values used here. */
export const TensorType = { FLOAT32: 0, INT32: 2, INT64: 4, INT16: 7, INT8: 9, INT4: 17 } as const;
/** `BuiltinOperator` values used here. */
export const BuiltinOperator = {
  ADD: 0,
  AVERAGE_POOL_2D: 1,
  CONV_2D: 3,
  DEPTHWISE_CONV_2D: 4,
  FULLY_CONNECTED: 9,
  MAX_POOL_2D: 17,
  RESHAPE: 22,
  MEAN: 40,
  QUANTIZE: 114,
} as const;
/** `Padding`. */
export const Padding = { SAME: 0, VALID: 1 } as const;
/** `ActivationFunctionType` values used here. */
export const Activation = { NONE: 0, RELU: 1, RELU6: 3 } as const;

/** `BuiltinOptions` union indices of the option tables used here. */
const OPTIONS_INDEX = { conv2d: 1, depthwise: 2, pool: 5, fc: 8, add: 11, reducer: 27 } as const;

/** The builtin options of one operator (the union member, as plain data). */
export type TfOptions =
  | { kind: "conv2d"; padding: number; strideW: number; strideH: number; act: number }
  | {
    kind: "depthwise";
    padding: number;
    strideW: number;
    strideH: number;
    depthMultiplier: number;
    act: number;
  }
  | {
    kind: "pool";
    padding: number;
    strideW: number;
    strideH: number;
    filterW: number;
    filterH: number;
    act: number;
  }
  | { kind: "fc"; act: number; quantizedBiasType?: number }
  | { kind: "add"; act: number }
  | { kind: "reducer"; keepDims: boolean };

/** Affine quantization: real = scale[i] * (q - zeroPoint[i]) along `dim`. */
export interface TfQuant {
  scale: number[];
  zeroPoint: number[];
  dim: number;
}

export interface TfTensor {
  name: string;
  shape: number[];
  type: number;
  /** Index into `buffers` (0: no data, an activation). */
  buffer: number;
  quant?: TfQuant;
}

export interface TfOperator {
  /** Index into `opcodes`. */
  opcode: number;
  inputs: number[];
  outputs: number[];
  options?: TfOptions;
}

/** A one-subgraph TFLite model as plain data. */
export interface TfModel {
  description: string;
  opcodes: { builtin: number; version: number }[];
  tensors: TfTensor[];
  inputs: number[];
  outputs: number[];
  operators: TfOperator[];
  /** Constant data; `buffers[0]` must be empty. */
  buffers: Uint8Array[];
  metadata: { name: string; buffer: number }[];
  signature: { key: string; inputs: [string, number][]; outputs: [string, number][] };
}

// ---------------------------------------------------------------- writing

function offsets(b: Builder, xs: number[]): number {
  b.startVector(4, xs.length, 4);
  for (let i = xs.length - 1; i >= 0; i--) b.addOffset(xs[i]);
  return b.endVector();
}

function int32s(b: Builder, xs: number[]): number {
  b.startVector(4, xs.length, 4);
  for (let i = xs.length - 1; i >= 0; i--) b.addInt32(xs[i]);
  return b.endVector();
}

/** Constant data, 16-byte aligned as the schema's `force_align: 16` asks. */
function data16(b: Builder, bytes: Uint8Array): number {
  b.startVector(1, bytes.length, 16);
  for (let i = bytes.length - 1; i >= 0; i--) b.addInt8(bytes[i]);
  return b.endVector();
}

function quantTable(b: Builder, q: TfQuant): number {
  b.startVector(4, q.scale.length, 4);
  for (let i = q.scale.length - 1; i >= 0; i--) b.addFloat32(q.scale[i]);
  const scale = b.endVector();
  b.startVector(8, q.zeroPoint.length, 8);
  for (let i = q.zeroPoint.length - 1; i >= 0; i--) b.addInt64(BigInt(q.zeroPoint[i]));
  const zp = b.endVector();
  b.startObject(7); // min, max, scale, zero_point, details_type, details, quantized_dimension
  b.addFieldOffset(2, scale, 0);
  b.addFieldOffset(3, zp, 0);
  b.addFieldInt32(6, q.dim, 0);
  return b.endObject();
}

function tensorTable(b: Builder, t: TfTensor): number {
  const name = b.createString(t.name);
  const shape = int32s(b, t.shape);
  const quant = t.quant ? quantTable(b, t.quant) : 0;
  b.startObject(9); // shape, type, buffer, name, quantization, is_variable, sparsity, shape_signature, has_rank
  b.addFieldOffset(0, shape, 0);
  b.addFieldInt8(1, t.type, 0);
  b.addFieldInt32(2, t.buffer, 0);
  b.addFieldOffset(3, name, 0);
  if (quant) b.addFieldOffset(4, quant, 0);
  b.addFieldInt8(8, 1, 0); // has_rank: the shape is known
  return b.endObject();
}

function optionsTable(b: Builder, o: TfOptions): number {
  switch (o.kind) {
    case "conv2d":
      b.startObject(7); // padding, stride_w, stride_h, fused_activation_function, dilation_w, dilation_h, quantized_bias_type
      b.addFieldInt8(0, o.padding, 0);
      b.addFieldInt32(1, o.strideW, 0);
      b.addFieldInt32(2, o.strideH, 0);
      b.addFieldInt8(3, o.act, 0);
      return b.endObject();
    case "depthwise":
      b.startObject(7); // padding, stride_w, stride_h, depth_multiplier, fused_activation_function, dilation_w, dilation_h
      b.addFieldInt8(0, o.padding, 0);
      b.addFieldInt32(1, o.strideW, 0);
      b.addFieldInt32(2, o.strideH, 0);
      b.addFieldInt32(3, o.depthMultiplier, 0);
      b.addFieldInt8(4, o.act, 0);
      return b.endObject();
    case "pool":
      b.startObject(6); // padding, stride_w, stride_h, filter_width, filter_height, fused_activation_function
      b.addFieldInt8(0, o.padding, 0);
      b.addFieldInt32(1, o.strideW, 0);
      b.addFieldInt32(2, o.strideH, 0);
      b.addFieldInt32(3, o.filterW, 0);
      b.addFieldInt32(4, o.filterH, 0);
      b.addFieldInt8(5, o.act, 0);
      return b.endObject();
    case "fc":
      b.startObject(5); // fused_activation_function, weights_format, keep_num_dims, asymmetric_quantize_inputs, quantized_bias_type
      b.addFieldInt8(0, o.act, 0);
      if (o.quantizedBiasType) b.addFieldInt8(4, o.quantizedBiasType, 0);
      return b.endObject();
    case "add":
      b.startObject(2); // fused_activation_function, pot_scale_int16
      b.addFieldInt8(0, o.act, 0);
      return b.endObject();
    case "reducer":
      b.startObject(1); // keep_dims
      b.addFieldInt8(0, o.keepDims ? 1 : 0, 0);
      return b.endObject();
  }
}

function operatorTable(b: Builder, op: TfOperator): number {
  const inputs = int32s(b, op.inputs), outputs = int32s(b, op.outputs);
  const options = op.options ? optionsTable(b, op.options) : 0;
  b.startObject(5); // opcode_index, inputs, outputs, builtin_options_type, builtin_options
  b.addFieldInt32(0, op.opcode, 0);
  b.addFieldOffset(1, inputs, 0);
  b.addFieldOffset(2, outputs, 0);
  if (op.options) {
    b.addFieldInt8(3, OPTIONS_INDEX[op.options.kind], 0);
    b.addFieldOffset(4, options, 0);
  }
  return b.endObject();
}

function tensorMaps(b: Builder, maps: [string, number][]): number {
  return offsets(
    b,
    maps.map(([name, index]) => {
      const n = b.createString(name);
      b.startObject(2); // name, tensor_index
      b.addFieldOffset(0, n, 0);
      b.addFieldInt32(1, index, 0);
      return b.endObject();
    }),
  );
}

/**
 * Lays out a model as TFLite flatbuffer bytes (identifier "TFL3"). The same
 * model gives the same bytes.
 *
 * @example
 * ```ts
 * import { readTflite, TensorType, writeTflite } from "./tflite_schema.ts";
 * const bytes = writeTflite({
 *   description: "empty", opcodes: [], operators: [], inputs: [0], outputs: [0],
 *   tensors: [{ name: "x", shape: [1, 2], type: TensorType.INT8, buffer: 0 }],
 *   buffers: [new Uint8Array(0)], metadata: [],
 *   signature: { key: "serving_default", inputs: [["x", 0]], outputs: [["x", 0]] },
 * });
 * if (readTflite(bytes).tensors[0].shape[1] !== 2) throw new Error();
 * ```
 */
export function writeTflite(m: TfModel): Uint8Array {
  if (m.buffers.length === 0 || m.buffers[0].length !== 0) {
    throw new Error("writeTflite: buffers[0] must be the empty buffer");
  }
  const b = new Builder(1024 + m.buffers.reduce((a, x) => a + x.length + 16, 0));
  const opcodes = offsets(
    b,
    m.opcodes.map((c) => {
      b.startObject(4); // deprecated_builtin_code, custom_code, version, builtin_code
      b.addFieldInt8(0, Math.min(c.builtin, 127), 0);
      b.addFieldInt32(2, c.version, 1);
      b.addFieldInt32(3, c.builtin, 0);
      return b.endObject();
    }),
  );
  const tensors = offsets(b, m.tensors.map((t) => tensorTable(b, t)));
  const operators = offsets(b, m.operators.map((op) => operatorTable(b, op)));
  const sgInputs = int32s(b, m.inputs), sgOutputs = int32s(b, m.outputs);
  const sgName = b.createString("main");
  b.startObject(5); // tensors, inputs, outputs, operators, name
  b.addFieldOffset(0, tensors, 0);
  b.addFieldOffset(1, sgInputs, 0);
  b.addFieldOffset(2, sgOutputs, 0);
  b.addFieldOffset(3, operators, 0);
  b.addFieldOffset(4, sgName, 0);
  const subgraphs = offsets(b, [b.endObject()]);
  const description = b.createString(m.description);
  const buffers = offsets(
    b,
    m.buffers.map((bytes) => {
      const data = bytes.length ? data16(b, bytes) : 0;
      b.startObject(1); // data
      if (data) b.addFieldOffset(0, data, 0);
      return b.endObject();
    }),
  );
  const metadata = offsets(
    b,
    m.metadata.map((md) => {
      const n = b.createString(md.name);
      b.startObject(2); // name, buffer
      b.addFieldOffset(0, n, 0);
      b.addFieldInt32(1, md.buffer, 0);
      return b.endObject();
    }),
  );
  const sigIn = tensorMaps(b, m.signature.inputs), sigOut = tensorMaps(b, m.signature.outputs);
  const sigKey = b.createString(m.signature.key);
  b.startObject(5); // inputs, outputs, signature_key, deprecated_tag, subgraph_index
  b.addFieldOffset(0, sigIn, 0);
  b.addFieldOffset(1, sigOut, 0);
  b.addFieldOffset(2, sigKey, 0);
  const signatures = offsets(b, [b.endObject()]);
  b.startObject(8); // version, operator_codes, subgraphs, description, buffers, metadata_buffer, metadata, signature_defs
  b.addFieldInt32(0, TFLITE_SCHEMA_VERSION, 0);
  b.addFieldOffset(1, opcodes, 0);
  b.addFieldOffset(2, subgraphs, 0);
  b.addFieldOffset(3, description, 0);
  b.addFieldOffset(4, buffers, 0);
  b.addFieldOffset(6, metadata, 0);
  b.addFieldOffset(7, signatures, 0);
  b.finish(b.endObject(), TFLITE_IDENTIFIER);
  return b.asUint8Array().slice();
}

// ---------------------------------------------------------------- reading

/** A bounds-checked view of one flatbuffer table. */
class Table {
  constructor(readonly r: Reader, readonly pos: number, readonly what: string) {}
  /** Absolute position of field `slot`, or 0 when absent. */
  field(slot: number): number {
    const vt = this.pos - this.r.i32(this.pos);
    const vtLen = this.r.u16(vt);
    const at = 4 + 2 * slot;
    if (at + 2 > vtLen) return 0;
    const off = this.r.u16(vt + at);
    return off ? this.pos + off : 0;
  }
  int(slot: number, size: 1 | 4, def: number): number {
    const p = this.field(slot);
    return p ? (size === 1 ? this.r.i8(p) : this.r.i32(p)) : def;
  }
  table(slot: number, what: string): Table | null {
    const p = this.field(slot);
    return p ? new Table(this.r, this.r.indirect(p), `${this.what}.${what}`) : null;
  }
  /** Start and length of a vector of `size`-byte elements, length checked against the file. */
  vector(slot: number, size: number, what: string): { start: number; length: number } | null {
    const p = this.field(slot);
    if (!p) return null;
    const at = this.r.indirect(p);
    const length = this.r.u32(at);
    if (at + 4 + length * size > this.r.bytes.length) {
      this.r.fail(`${this.what}.${what}: a vector of ${length} elements runs past the end`);
    }
    return { start: at + 4, length };
  }
  ints(slot: number, what: string): number[] {
    const v = this.vector(slot, 4, what);
    return v ? Array.from({ length: v.length }, (_, i) => this.r.i32(v.start + 4 * i)) : [];
  }
  tables(slot: number, what: string): Table[] {
    const v = this.vector(slot, 4, what);
    if (!v) return [];
    return Array.from(
      { length: v.length },
      (_, i) => new Table(this.r, this.r.indirect(v.start + 4 * i), `${this.what}.${what}[${i}]`),
    );
  }
  string(slot: number, what: string): string {
    const v = this.vector(slot, 1, what);
    return v ? new TextDecoder().decode(this.r.bytes.subarray(v.start, v.start + v.length)) : "";
  }
}

class Reader {
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array, readonly file: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  fail(msg: string): never {
    throw new Error(`${this.file}: not a valid TFLite model: ${msg}`);
  }
  private check(p: number, n: number): void {
    if (!(p >= 0 && p + n <= this.bytes.length)) {
      this.fail(`offset ${p} is outside the ${this.bytes.length}-byte file`);
    }
  }
  /** Reads `size` bytes at `p` with `get`, after checking they lie inside the file. */
  private at<T>(p: number, size: number, get: (p: number) => T): T {
    this.check(p, size);
    return get(p);
  }
  i8 = (p: number) => this.at(p, 1, (q) => this.view.getInt8(q));
  u16 = (p: number) => this.at(p, 2, (q) => this.view.getUint16(q, true));
  i32 = (p: number) => this.at(p, 4, (q) => this.view.getInt32(q, true));
  u32 = (p: number) => this.at(p, 4, (q) => this.view.getUint32(q, true));
  f32 = (p: number) => this.at(p, 4, (q) => this.view.getFloat32(q, true));
  i64 = (p: number) => this.at(p, 8, (q) => Number(this.view.getBigInt64(q, true)));
  indirect(p: number): number {
    return p + this.u32(p);
  }
}

function readOptions(t: Table): TfOptions | undefined {
  const type = t.int(3, 1, 0) & 0xff;
  const o = t.table(4, "builtin_options");
  if (!type || !o) return undefined;
  const i = (slot: number, def = 0) => o.int(slot, 4, def), b = (slot: number) => o.int(slot, 1, 0);
  switch (type) {
    case OPTIONS_INDEX.conv2d:
      return { kind: "conv2d", padding: b(0), strideW: i(1), strideH: i(2), act: b(3) };
    case OPTIONS_INDEX.depthwise:
      return {
        kind: "depthwise",
        padding: b(0),
        strideW: i(1),
        strideH: i(2),
        depthMultiplier: i(3),
        act: b(4),
      };
    case OPTIONS_INDEX.pool:
      return {
        kind: "pool",
        padding: b(0),
        strideW: i(1),
        strideH: i(2),
        filterW: i(3),
        filterH: i(4),
        act: b(5),
      };
    case OPTIONS_INDEX.fc: {
      const quantizedBiasType = b(4);
      return { kind: "fc", act: b(0), ...(quantizedBiasType ? { quantizedBiasType } : {}) };
    }
    case OPTIONS_INDEX.add:
      return { kind: "add", act: b(0) };
    case OPTIONS_INDEX.reducer:
      return { kind: "reducer", keepDims: b(0) !== 0 };
    default:
      return t.r.fail(`${t.what}: builtin options type ${type} is not one qgt reads`);
  }
}

function readTensor(t: Table): TfTensor {
  const r = t.r;
  const q = t.table(4, "quantization");
  let quant: TfQuant | undefined;
  if (q) {
    const s = q.vector(2, 4, "scale"), z = q.vector(3, 8, "zero_point");
    quant = {
      scale: s ? Array.from({ length: s.length }, (_, i) => r.f32(s.start + 4 * i)) : [],
      zeroPoint: z ? Array.from({ length: z.length }, (_, i) => r.i64(z.start + 8 * i)) : [],
      dim: q.int(6, 4, 0),
    };
  }
  return {
    name: t.string(3, "name"),
    shape: t.ints(0, "shape"),
    type: t.int(1, 1, 0),
    buffer: t.int(2, 4, 0) >>> 0,
    ...(quant ? { quant } : {}),
  };
}

/**
 * Reads TFLite bytes written by {@link writeTflite} (one subgraph, builtin
 * operators with the option tables listed in this module) back into plain
 * data. Every offset and length is checked: damaged bytes give one error
 * naming `file`.
 *
 * @example
 * ```ts
 * import { readTflite } from "./tflite_schema.ts";
 * let msg = "";
 * try { readTflite(new Uint8Array(8), "x.tflite"); } catch (e) { msg = String(e); }
 * if (!msg.includes("x.tflite")) throw new Error();
 * ```
 */
export function readTflite(bytes: Uint8Array, file = "model.tflite"): TfModel {
  const r = new Reader(bytes, file);
  if (bytes.length < 8) r.fail(`${bytes.length} bytes is too short`);
  const id = new TextDecoder().decode(bytes.subarray(4, 8));
  if (id !== TFLITE_IDENTIFIER) r.fail(`file identifier ${JSON.stringify(id)}, expected "TFL3"`);
  const m = new Table(r, r.indirect(0), "model");
  const version = m.int(0, 4, 0);
  if (version !== TFLITE_SCHEMA_VERSION) r.fail(`schema version ${version}, expected 3`);
  const subgraphs = m.tables(2, "subgraphs");
  if (subgraphs.length !== 1) r.fail(`${subgraphs.length} subgraphs, expected 1`);
  const sg = subgraphs[0];
  const buffers = m.tables(4, "buffers").map((t) => {
    const v = t.vector(0, 1, "data");
    return v ? bytes.slice(v.start, v.start + v.length) : new Uint8Array(0);
  });
  const sig = m.tables(7, "signature_defs")[0];
  const maps = (t: Table | undefined, slot: number): [string, number][] =>
    t ? t.tables(slot, "tensors").map((x) => [x.string(0, "name"), x.int(1, 4, 0) >>> 0]) : [];
  const model: TfModel = {
    description: m.string(3, "description"),
    opcodes: m.tables(1, "operator_codes").map((c) => ({
      builtin: c.int(3, 4, 0) || c.int(0, 1, 0),
      version: c.int(2, 4, 1),
    })),
    tensors: sg.tables(0, "tensors").map(readTensor),
    inputs: sg.ints(1, "inputs"),
    outputs: sg.ints(2, "outputs"),
    operators: sg.tables(3, "operators").map((t) => {
      const options = readOptions(t);
      return {
        opcode: t.int(0, 4, 0) >>> 0,
        inputs: t.ints(1, "inputs"),
        outputs: t.ints(2, "outputs"),
        ...(options ? { options } : {}),
      };
    }),
    buffers,
    metadata: m.tables(6, "metadata").map((t) => ({
      name: t.string(0, "name"),
      buffer: t.int(1, 4, 0) >>> 0,
    })),
    signature: {
      key: sig ? sig.string(2, "signature_key") : "",
      inputs: maps(sig, 0),
      outputs: maps(sig, 1),
    },
  };
  checkReferences(model, r);
  return model;
}

/** Every index in range: tensors to buffers, operators to opcodes and tensors. */
function checkReferences(m: TfModel, r: Reader): void {
  const nt = m.tensors.length;
  m.tensors.forEach((t, i) => {
    if (t.buffer >= m.buffers.length) {
      r.fail(`tensor ${i} (${t.name}): buffer ${t.buffer} of ${m.buffers.length}`);
    }
  });
  const tensorRef = (x: number, where: string) => {
    if (!(x >= 0 && x < nt)) r.fail(`${where}: tensor ${x} of ${nt}`);
  };
  m.inputs.forEach((x) => tensorRef(x, "subgraph inputs"));
  m.outputs.forEach((x) => tensorRef(x, "subgraph outputs"));
  m.operators.forEach((op, i) => {
    if (op.opcode >= m.opcodes.length) r.fail(`operator ${i}: opcode ${op.opcode}`);
    op.inputs.forEach((x) => tensorRef(x, `operator ${i} inputs`));
    op.outputs.forEach((x) => tensorRef(x, `operator ${i} outputs`));
  });
  m.metadata.forEach((md) => {
    if (md.buffer >= m.buffers.length) r.fail(`metadata ${md.name}: buffer ${md.buffer}`);
  });
}

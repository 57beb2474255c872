/**
 * The pieces of a `.tflite` that qgt's converter (tflite.ts) assembles: a builder of tensors and
 * operators, and the filter and bias tensors of one weight layer in TFLite's layouts.
 * @module
 */
import type { Interpreter } from "../engine/interpreter.ts";
import type { ShapedLayer } from "../format/header.ts";
import {
  TensorType,
  type TfModel,
  type TfOptions,
  type TfQuant,
  type TfTensor,
} from "../format/tflite_schema.ts";

/** A `model.qgt` that TFLite's int8 scheme cannot hold as it is (e.g. asymmetric 8-bit weights). */
export class TfliteUnsupportedError extends Error {}

/**
 * Packs int4 values two to a byte, the first in the low nibble (TFLite's
 * INT4 layout, as `UnpackDenseInt4IntoInt8` reads it).
 *
 * @example
 * ```ts
 * import { packInt4 } from "./tflite.ts";
 * const b = packInt4(Int8Array.from([1, -1, 7]));
 * if (b.length !== 2 || b[0] !== 0xf1 || b[1] !== 0x07) throw new Error();
 * ```
 */
export function packInt4(v: Int8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(v.length / 2));
  for (let i = 0; i < v.length; i++) out[i >> 1] |= (v[i] & 15) << (4 * (i & 1));
  return out;
}

/** Builds the plain-data model, tensor by tensor and operator by operator. */
export class ModelBuilder {
  tensors: TfTensor[] = [];
  buffers: Uint8Array[] = [new Uint8Array(0)];
  opcodes: { builtin: number; version: number }[] = [];
  operators: TfModel["operators"] = [];

  tensor(t: Omit<TfTensor, "buffer">, data?: Uint8Array): number {
    let buffer = 0;
    if (data) {
      this.buffers.push(data);
      buffer = this.buffers.length - 1;
    }
    this.tensors.push({ ...t, buffer });
    return this.tensors.length - 1;
  }

  /** A constant int32 vector (MEAN's axes, RESHAPE's shape). */
  int32s(name: string, values: number[]): number {
    return this.tensor(
      { name, shape: [values.length], type: TensorType.INT32 },
      new Uint8Array(Int32Array.from(values).buffer),
    );
  }

  op(builtin: number, version: number, inputs: number[], outputs: number[], options?: TfOptions) {
    let opcode = this.opcodes.findIndex((c) => c.builtin === builtin && c.version === version);
    if (opcode < 0) opcode = this.opcodes.push({ builtin, version }) - 1;
    this.operators.push({ opcode, inputs, outputs, ...(options ? { options } : {}) });
  }
}

/** One scale and zero point for a whole tensor. */
export const tensorQuant = (scale: number, zeroPoint: number): TfQuant => ({
  scale: [Math.fround(scale)],
  zeroPoint: [zeroPoint],
  dim: 0,
});

/**
 * The filter and bias tensors of one weight layer: filter in TFLite's layout
 * (conv OHWI, depthwise 1HWC, fully connected [out, in]), per-channel
 * symmetric scales (the float16 scales, exactly), bias int32 with scale
 * s_in * s_w[c].
 */
export function weightTensors(
  mb: ModelBuilder,
  l: ShapedLayer,
  rt: Interpreter["layers"][number],
  inScale: number,
  int4: boolean,
  file: string,
  asConv1x1 = false,
): { filter: number; bias: number; int4: boolean } {
  const w = rt.w!, bias = rt.bias!, scales = rt.weightScale!;
  const ks = l.kernelShape!, cout = l.channels!, n = w.length;
  const tf = new Int8Array(n);
  let lo = 0, hi = 0;
  // qgt kernels are [k,k,cin,cout], [k,k,c,1] or [in,out]: the output channel is the fastest index
  const cin = l.type === "conv2d" ? ks[2] : l.type === "dense" ? ks[0] : 1;
  const window = l.type === "dense" ? 1 : ks[0] * ks[1];
  for (let i = 0; i < n; i++) {
    const v = w[i];
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
    if (l.type === "depthwise2d") tf[i] = v; // [k,k,c,1] is already 1HWC
    else {
      const co = i % cout, rest = Math.floor(i / cout); // rest = (ky*k + kx)*cin + ci, or ci
      const ci = rest % cin, pos = Math.floor(rest / cin);
      tf[(co * window + pos) * cin + ci] = v;
    }
  }
  if (lo < -128 || hi > 127) {
    throw new TfliteUnsupportedError(
      `${file}: layer ${l.name}: weights minus zero points span ${lo}..${hi}, outside int8; TFLite needs symmetric int8 weights`,
    );
  }
  const packInt4Here = int4 && l.bits! <= 4 && lo >= -8 && hi <= 7;
  const shape = l.type === "conv2d"
    ? [cout, ks[0], ks[1], ks[2]]
    : l.type === "depthwise2d"
    ? [1, ks[0], ks[1], cout]
    : asConv1x1
    ? [cout, 1, 1, ks[0]]
    : [cout, ks[0]];
  const s = Array.from({ length: cout }, (_, c) => Math.fround(scales[c]));
  const filter = mb.tensor(
    {
      name: `${l.name}/filter`,
      shape,
      type: packInt4Here ? TensorType.INT4 : TensorType.INT8,
      quant: { scale: s, zeroPoint: s.map(() => 0), dim: l.type === "depthwise2d" ? 3 : 0 },
    },
    packInt4Here ? packInt4(tf) : new Uint8Array(tf.buffer),
  );
  const biasScale = s.map((sw) => Math.fround(inScale * sw));
  // a 16x8 convolution takes int64 biases (the same integers; LiteRT misreads int32 ones there)
  const b = mb.tensor(
    {
      name: `${l.name}/bias`,
      shape: [cout],
      type: asConv1x1 ? TensorType.INT64 : TensorType.INT32,
      quant: { scale: biasScale, zeroPoint: s.map(() => 0), dim: 0 },
    },
    asConv1x1
      ? new Uint8Array(BigInt64Array.from(bias, (v) => BigInt(v)).buffer)
      : new Uint8Array(bias.slice().buffer),
  );
  return { filter, bias: b, int4: packInt4Here };
}

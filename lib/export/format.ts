/**
 * The `model.qgt` file format (specified in docs/format.md): a 12-byte
 * preamble (magic "QGTM", uint16 version, uint16 flags, uint32 header length,
 * little-endian), a compact UTF-8 JSON header padded with spaces to a multiple
 * of 4 bytes, then the payload. For each weight layer the payload holds its
 * bit-packed codes, float16 scales (one per output channel, or one), int32
 * zero points (asymmetric weights only) and int32 biases (BatchNorm folded in),
 * each section 4-byte aligned at the byte offset the header gives, relative to
 * the payload start. Shapes are not stored: a reader derives them from the
 * input shape and the layer parameters, and checks every section against them.
 * @module
 */
import type { ArchSpec, LayerSpec } from "../models/spec.ts";
import { layerShapes, outSize } from "../models/spec.ts";
import { levelRange, type QuantSpec } from "../quant/spec.ts";
import type { QuantizedTensor } from "../quant/quantizer.ts";
import { rangeParams } from "../quant/activation.ts";
import { fromFloat16Bits, toFloat16Bits } from "../quant/fp16.ts";
import { packCodes, packedBytes } from "./pack.ts";
import { weightLayerSizes } from "../quant/layers.ts";

/** File magic and version. */
export const QGT_MAGIC = "QGTM";
export const QGT_VERSION = 1;

/** One layer in the header (see docs/format.md for every key). */
export interface HeaderLayer {
  name: string;
  type: LayerSpec["type"];
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
}

/** What the exporter needs of a quantized, folded network. */
export interface ExportSource {
  arch: ArchSpec;
  classNames: string[];
  /** Folded float biases by layer. */
  biases: Record<string, Float32Array>;
  weights: Record<string, QuantizedTensor>;
  specs: Record<string, QuantSpec>;
  /** Activation ranges [lo, hi] of each weight layer with an activation. */
  activationRanges: Record<string, [number, number]>;
  /** Input normalisation: x = (pixel - 255 mean) / (255 std). */
  normalize: { mean: number; std: number };
}

const align4 = (n: number) => (n + 3) & ~3;

/** Shortest decimal that reads back as the same float32 (keeps the header small). */
function f32Text(v: number): number {
  const f = Math.fround(v);
  for (let p = 6; p <= 9; p++) {
    const t = Number(f.toPrecision(p));
    if (Math.fround(t) === f) return t;
  }
  return f;
}

/**
 * Builds the bytes of `model.qgt`. The same source gives the same bytes.
 *
 * @example
 * ```ts ignore
 * const bytes = buildQgt(source);
 * ```
 */
export function buildQgt(src: ExportSource): Uint8Array {
  const { arch } = src;
  const shapes = layerShapes(arch);
  const zpIn = 255 * src.normalize.mean - 128;
  if (Math.abs(zpIn - Math.round(zpIn)) > 1e-9) {
    throw new Error(
      `export: normalisation mean ${src.normalize.mean} does not give an integer int8 input zero point`,
    );
  }
  const input = {
    shape: arch.inputShape,
    scale: f32Text(1 / (255 * src.normalize.std)),
    zp: Math.round(zpIn),
  };
  const chunks: { offset: number; bytes: Uint8Array }[] = [];
  let offset = 0;
  const put = (bytes: Uint8Array): number => {
    const at = offset;
    chunks.push({ offset, bytes });
    offset = align4(offset + bytes.length);
    return at;
  };
  let inScale = input.scale;
  const layers: HeaderLayer[] = arch.layers.map((l, idx): HeaderLayer => {
    if (l.type === "maxpool") return { name: l.name, type: l.type, size: l.size, stride: l.stride };
    if (l.type === "gap") return { name: l.name, type: l.type };
    const q = src.weights[l.name], spec = src.specs[l.name];
    if (!q || !spec) {
      throw new Error(
        `export: layer ${l.name} is not quantized; every weight layer must be quantized to be exported`,
      );
    }
    if ("bn" in l && l.bn) {
      throw new Error(`export: layer ${l.name} still has BatchNorm; fold it first`);
    }
    const s = shapes.get(l.name)!;
    const channels = s.out[s.out.length - 1];
    const bias = src.biases[l.name];
    if (!bias || bias.length !== channels) {
      throw new Error(`export: layer ${l.name} needs ${channels} biases`);
    }
    if (q.scales.length !== channels && q.scales.length !== 1) {
      throw new Error(
        `export: layer ${l.name} has ${q.scales.length} scales for ${channels} output channels`,
      );
    }
    const { qmin } = levelRange(spec);
    const codes = put(packCodes(q.codes, q.bits, qmin));
    const half = new Uint16Array(q.scales.length);
    q.scales.forEach((v, i) => (half[i] = toFloat16Bits(v)));
    const scales = put(new Uint8Array(half.buffer));
    const zeroPoints = spec.symmetric
      ? undefined
      : put(new Uint8Array(Int32Array.from(q.zeroPoints).buffer));
    const bq = new Int32Array(channels);
    for (let c = 0; c < channels; c++) {
      const sw = fromFloat16Bits(half[half.length === 1 ? 0 : c]);
      bq[c] = Math.max(-2147483648, Math.min(2147483647, Math.round(bias[c] / (inScale * sw))));
    }
    const biasAt = put(new Uint8Array(bq.buffer));
    let out: [number, number] | undefined;
    if (idx < arch.layers.length - 1 || l.act !== "none") {
      const r = src.activationRanges[l.name];
      if (!r) throw new Error(`export: layer ${l.name} has no activation range (calibrate first)`);
      const p = rangeParams(r[0], r[1], 8);
      out = [f32Text(p.scale), p.zeroPoint - 128];
      inScale = out[0];
    }
    return {
      name: l.name,
      type: l.type,
      ...(l.type === "conv2d" ? { filters: l.filters } : {}),
      ...(l.type === "dense"
        ? { units: l.units }
        : { kernel: l.kernel, stride: l.stride, padding: l.padding }),
      act: l.act,
      bits: q.bits,
      qmin,
      ...(q.scales.length === 1 && channels > 1 ? { perTensor: true } : {}),
      codes,
      scales,
      ...(zeroPoints !== undefined ? { zeroPoints } : {}),
      bias: biasAt,
      ...(out ? { out } : {}),
    };
  });
  const header: QgtHeader = {
    format: "qgt",
    version: QGT_VERSION,
    name: arch.name,
    classes: src.classNames,
    input,
    layers,
    payload: offset,
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const hlen = align4(json.length);
  const bytes = new Uint8Array(12 + hlen + offset);
  bytes.set(new TextEncoder().encode(QGT_MAGIC), 0);
  const dv = new DataView(bytes.buffer);
  dv.setUint16(4, QGT_VERSION, true);
  dv.setUint16(6, 0, true);
  dv.setUint32(8, hlen, true);
  bytes.set(json, 12);
  bytes.fill(0x20, 12 + json.length, 12 + hlen);
  for (const c of chunks) bytes.set(c.bytes, 12 + hlen + c.offset);
  return bytes;
}

/** Longest JSON text of a positive float32 as the header writes it (`0.00000` and 9 digits). */
const MAX_SCALE_TEXT = 16;

/**
 * Upper bound on the bytes of `model.qgt` beyond its layers' sections (as
 * `layerBytes` in `quant/layers.ts` counts them): the preamble, the JSON
 * header and the 4-byte padding of each section, for any per-layer bit
 * widths (1-8) on `arch` (folded, no BatchNorm) with `spec`'s symmetry and
 * granularity. It builds the file once at 8 bits (the longest offsets and
 * `qmin`, int8 zero points of -128), reads its header length, and adds room
 * for the longest scale texts and the most padding each section can need,
 * so a mixed-precision assignment that budgets with it fits once exported.
 *
 * @example
 * ```ts
 * import { exportOverheadBound } from "./format.ts";
 * import { foldedArch, tinyCnn } from "../models/mod.ts";
 * const arch = foldedArch(tinyCnn());
 * const bound = exportOverheadBound(arch, ["no", "yes"], { symmetric: true, perChannel: true });
 * if (bound < 12 + 100) throw new Error(); // at least the preamble and a header
 * ```
 */
export function exportOverheadBound(
  arch: ArchSpec,
  classNames: string[],
  spec: Pick<QuantSpec, "symmetric" | "perChannel" | "narrowRange">,
): number {
  const s8: QuantSpec = { ...spec, bits: 8 };
  const sizes = weightLayerSizes(arch);
  const src: ExportSource = {
    arch,
    classNames,
    biases: {},
    weights: {},
    specs: {},
    activationRanges: {},
    normalize: { mean: 0, std: 1 }, // input zero point -128, the longest
  };
  let padding = 0;
  for (const l of sizes) {
    const n = spec.perChannel ? l.channels : 1;
    src.weights[l.name] = {
      shape: [l.params],
      bits: 8,
      symmetric: spec.symmetric,
      axis: spec.perChannel ? 0 : -1,
      codes: new Int32Array(l.params),
      scales: new Float32Array(n).fill(1),
      zeroPoints: new Int32Array(n),
    };
    src.specs[l.name] = s8;
    src.biases[l.name] = new Float32Array(l.channels);
    src.activationRanges[l.name] = [0, 1]; // output zero point -128, the longest
    padding += 3 + (n % 2) * 2; // codes pad to 4 by up to 3; float16 scales by 2 when odd; int32 sections never
  }
  const bytes = buildQgt(src);
  const hlen = new DataView(bytes.buffer).getUint32(8, true);
  // the dummy's scale texts (input, and `out` of each layer but possibly the last) may be shorter
  // than real ones, and asymmetric 8-bit `qmin` is "0" where 1-bit's is "-1"
  const textRoom = (MAX_SCALE_TEXT - JSON.stringify(f32Text(1 / 255)).length) * (sizes.length + 1) +
    (spec.symmetric ? 0 : sizes.length);
  return 12 + align4(hlen + textRoom) + padding;
}

/** A layer with the shapes a reader derived. */
export interface ShapedLayer extends HeaderLayer {
  inShape: number[];
  outShape: number[];
  /** Kernel shape: [k,k,cin,cout] conv, [k,k,c,1] depthwise, [in,out] dense. */
  kernelShape?: number[];
  channels?: number;
}

/** A parsed file: header, derived shapes and payload. */
export interface QgtFile {
  header: QgtHeader;
  layers: ShapedLayer[];
  payload: Uint8Array;
  /** Bytes by part. */
  parts: {
    header: number;
    codes: number;
    scales: number;
    zeroPoints: number;
    biases: number;
    total: number;
  };
}

/**
 * Parses and validates `model.qgt` bytes; errors name `file` and the problem
 * (truncation, magic, version, unknown layer types, offsets out of range or
 * overlapping the next section).
 *
 * @example
 * ```ts
 * import { parseQgt } from "./format.ts";
 * let msg = "";
 * try { parseQgt(new TextEncoder().encode("NOPE12345678"), "m.qgt"); } catch (e) { msg = (e as Error).message; }
 * if (!msg.startsWith("m.qgt: wrong magic")) throw new Error(msg);
 * ```
 */
export function parseQgt(bytes: Uint8Array, file: string): QgtFile {
  const fail = (m: string): never => {
    throw new Error(`${file}: ${m}`);
  };
  if (bytes.length < 12) {
    fail(`truncated: ${bytes.length} bytes, shorter than the 12-byte preamble`);
  }
  const magic = new TextDecoder().decode(bytes.subarray(0, 4));
  if (magic !== QGT_MAGIC) {
    fail(`wrong magic ${JSON.stringify(magic)} (expected "${QGT_MAGIC}"; not a qgt model)`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint16(4, true);
  if (version !== QGT_VERSION) {
    fail(`unsupported format version ${version} (this reader knows ${QGT_VERSION})`);
  }
  const hlen = dv.getUint32(8, true);
  if (12 + hlen > bytes.length) {
    fail(`truncated: a ${hlen}-byte header does not fit in ${bytes.length} bytes`);
  }
  let header: QgtHeader;
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(12, 12 + hlen)),
    );
  } catch (e) {
    return fail(`corrupt header: ${(e as Error).message}`);
  }
  if (
    header?.format !== "qgt" || !Array.isArray(header.layers) || !Array.isArray(header.input?.shape)
  ) {
    fail("corrupt header: not a qgt header");
  }
  const payload = bytes.subarray(12 + hlen);
  if (payload.length !== header.payload) {
    fail(`truncated or padded payload: ${payload.length} bytes, the header says ${header.payload}`);
  }
  const parts = {
    header: 12 + hlen,
    codes: 0,
    scales: 0,
    zeroPoints: 0,
    biases: 0,
    total: bytes.length,
  };
  const used: [number, number, string][] = [];
  const section = (at: number | undefined, length: number, what: string) => {
    if (at === undefined) return fail(`${what}: missing offset`);
    if (!Number.isInteger(at) || at < 0 || at % 4 !== 0 || at + length > payload.length) {
      fail(
        `${what}: offset ${at} (+${length} bytes) outside the ${payload.length}-byte payload or not 4-byte aligned`,
      );
    }
    used.push([at, at + length, what]);
  };
  let shape: number[] = [...header.input.shape];
  const layers: ShapedLayer[] = header.layers.map((l) => {
    const inShape = shape;
    const where = `layer ${l.name}`;
    if (l.type === "conv2d" || l.type === "depthwise2d") {
      if (inShape.length !== 3) fail(`${where}: needs an image input`);
      const [h, w, c] = inShape;
      const k = l.kernel ?? fail(`${where}: no kernel`);
      const s = l.stride ?? fail(`${where}: no stride`);
      const pad = l.padding === "same" || l.padding === "valid"
        ? l.padding
        : fail(`${where}: bad padding`);
      const cout = l.type === "conv2d" ? (l.filters ?? fail(`${where}: no filters`)) : c;
      shape = [outSize(h, k, s, pad), outSize(w, k, s, pad), cout];
      if (shape[0] < 1 || shape[1] < 1) fail(`${where}: empty output`);
    } else if (l.type === "dense") {
      if (inShape.length !== 1) fail(`${where}: needs a flat input`);
      shape = [l.units ?? fail(`${where}: no units`)];
    } else if (l.type === "maxpool") {
      const [h, w, c] = inShape;
      shape = [outSize(h, l.size!, l.stride!, "valid"), outSize(w, l.size!, l.stride!, "valid"), c];
    } else if (l.type === "gap") {
      shape = [inShape[inShape.length - 1]];
    } else fail(`${where}: unknown layer type ${JSON.stringify(l.type)}`);
    const sl: ShapedLayer = { ...l, inShape, outShape: shape };
    if (l.type === "conv2d" || l.type === "depthwise2d" || l.type === "dense") {
      const cin = inShape[inShape.length - 1], cout = shape[shape.length - 1];
      sl.kernelShape = l.type === "conv2d"
        ? [l.kernel!, l.kernel!, cin, cout]
        : l.type === "depthwise2d"
        ? [l.kernel!, l.kernel!, cin, 1]
        : [cin, cout];
      sl.channels = cout;
      if (!(Number.isInteger(l.bits) && l.bits! >= 1 && l.bits! <= 8)) {
        fail(`${where}: bits ${l.bits} outside 1-8`);
      }
      const n = sl.kernelShape.reduce((a, b) => a * b, 1);
      const nScales = l.perTensor ? 1 : cout;
      section(l.codes, packedBytes(n, l.bits!), `${where} codes`);
      section(l.scales, 2 * nScales, `${where} scales`);
      if (l.zeroPoints !== undefined) section(l.zeroPoints, 4 * nScales, `${where} zero points`);
      section(l.bias, 4 * cout, `${where} bias`);
      parts.codes += packedBytes(n, l.bits!);
      parts.scales += 2 * nScales;
      parts.zeroPoints += l.zeroPoints !== undefined ? 4 * nScales : 0;
      parts.biases += 4 * cout;
    }
    return sl;
  });
  if (shape.length !== 1 || shape[0] !== header.classes.length) {
    fail(
      `the network outputs ${
        JSON.stringify(shape)
      }, but the header lists ${header.classes.length} classes`,
    );
  }
  used.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < used.length; i++) {
    if (used[i][0] < used[i - 1][1]) fail(`${used[i][2]} overlaps ${used[i - 1][2]}`);
  }
  return { header, layers, payload, parts };
}

/**
 * The `model.qgt` file format (specified in docs/format.md). Version 2: a
 * 16-byte preamble (magic "QGTM", uint16 version, uint16 flags, uint32
 * header length, uint32 CRC-32 of the rest of the file, little-endian), a
 * compact UTF-8 JSON header padded with spaces to a multiple of 4 bytes, then
 * the payload. For each weight layer the payload holds its bit-packed codes,
 * float16 scales (one per output channel, or one), int32 zero points
 * (asymmetric weights only) and int32 biases (BatchNorm folded in), each
 * section 4-byte aligned at the byte offset the header gives, relative to the
 * payload start. Shapes are not stored: a reader derives them from the input
 * shape and the layer parameters, and checks every section against them.
 * Version 1 (12-byte preamble, no checksum, no provenance) is still read.
 * @module
 */
import type { ArchSpec } from "../models/spec.ts";
import { layerInputs, layerShapes, NETWORK_INPUT } from "../models/spec.ts";
import { levelRange, type QuantSpec } from "../quant/spec.ts";
import type { QuantizedTensor } from "../quant/spec.ts";
import { rangeParams } from "../quant/range.ts";
import { fromFloat16Bits, toFloat16Bits } from "../quant/fp16.ts";
import { packCodes, packedBytes } from "./pack.ts";
import { weightLayerSizes } from "../quant/layers.ts";
import { crc32 } from "../util/crc32.ts";
import {
  checkHeader,
  type HeaderLayer,
  type Provenance,
  type QgtHeader,
  type ShapedLayer,
} from "./header.ts";
import { decimalToFloat32 } from "./numbers.ts";

export type { HeaderLayer, Provenance, QgtHeader, ShapedLayer } from "./header.ts";

/** File magic and the version this writer writes. */
export const QGT_MAGIC = "QGTM";
/**
 * Version 4: the activation scales (the input's and each layer's output scale) as binary float32
 * in the payload instead of decimal text in the header (docs/format.md).
 */
export const QGT_VERSION = 4;
/** The version that added residual connections (layer inputs, add layers); 3 wrote them. */
export const QGT_VERSION_GRAPH = 3;
/** The versions this reader reads (1-3 through the same path: see {@link upgradeQgt}). */
export const QGT_READS = [1, 2, 3, 4];

/** Preamble length by version: magic, version, flags, header length (and, from 2, the CRC-32). */
const preambleOf = (version: number) => (version >= 2 ? 16 : 12);

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
  /** Where the model came from (experiment, seed, commit, dataset), written into the header. */
  provenance?: Provenance;
}

const align4 = (n: number) => (n + 3) & ~3;

/**
 * Shortest decimal that reads back as the same float32, both rounded directly
 * (as the format specifies) and through a double (keeps the header small).
 */
function f32Text(v: number): number {
  const f = Math.fround(v);
  for (let p = 6; p <= 9; p++) {
    const t = Number(f.toPrecision(p));
    if (Math.fround(t) === f && decimalToFloat32(JSON.stringify(t)) === f) return t;
  }
  return f;
}

/** Appends 4-byte-aligned payload sections and returns their offsets. */
class PayloadWriter {
  chunks: { offset: number; bytes: Uint8Array }[] = [];
  size = 0;
  put(bytes: Uint8Array): number {
    const at = this.size;
    this.chunks.push({ offset: at, bytes });
    this.size = align4(at + bytes.length);
    return at;
  }
}

/** The header entry and payload sections of one weight layer; returns the entry and its output scale. */
function weightLayerEntry(
  src: ExportSource,
  l: ArchSpec["layers"][number] & { type: "conv2d" | "depthwise2d" | "dense" },
  channels: number,
  last: boolean,
  inScale: number,
  w: PayloadWriter,
): { entry: HeaderLayer; outScale: number } {
  const q = src.weights[l.name], spec = src.specs[l.name];
  if (!q || !spec) {
    throw new Error(
      `export: layer ${l.name} is not quantized; every weight layer must be quantized to be exported`,
    );
  }
  if ("bn" in l && l.bn) {
    throw new Error(`export: layer ${l.name} still has BatchNorm; fold it first`);
  }
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
  const codes = w.put(packCodes(q.codes, q.bits, qmin));
  const half = new Uint16Array(q.scales.length);
  q.scales.forEach((v, i) => (half[i] = toFloat16Bits(v)));
  const scales = w.put(new Uint8Array(half.buffer));
  const zeroPoints = spec.symmetric
    ? undefined
    : w.put(new Uint8Array(Int32Array.from(q.zeroPoints).buffer));
  const bq = new Int32Array(channels);
  for (let c = 0; c < channels; c++) {
    const sw = fromFloat16Bits(half[half.length === 1 ? 0 : c]);
    bq[c] = Math.max(-2147483648, Math.min(2147483647, Math.round(bias[c] / (inScale * sw))));
  }
  const biasAt = w.put(new Uint8Array(bq.buffer));
  let out: [number, number] | undefined;
  if (!last) {
    const r = src.activationRanges[l.name];
    if (!r) throw new Error(`export: layer ${l.name} has no activation range (calibrate first)`);
    const p = rangeParams(r[0], r[1], 8);
    out = [f32Text(p.scale), p.zeroPoint - 128];
  }
  const entry: HeaderLayer = {
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
  return { entry, outScale: out ? out[0] : inScale };
}

/** The file around a header and payload: preamble (with the CRC-32 from version 2), padded JSON, payload. */
function assemble(header: QgtHeader, w: PayloadWriter): Uint8Array {
  const pre = preambleOf(header.version);
  const json = new TextEncoder().encode(JSON.stringify(header));
  const hlen = align4(json.length);
  const bytes = new Uint8Array(pre + hlen + w.size);
  bytes.set(new TextEncoder().encode(QGT_MAGIC), 0);
  const dv = new DataView(bytes.buffer);
  dv.setUint16(4, header.version, true);
  dv.setUint16(6, 0, true);
  dv.setUint32(8, hlen, true);
  bytes.set(json, pre);
  bytes.fill(0x20, pre + json.length, pre + hlen);
  for (const c of w.chunks) bytes.set(c.bytes, pre + hlen + c.offset);
  if (pre === 16) dv.setUint32(12, fileChecksum(bytes), true);
  return bytes;
}

/**
 * The CRC-32 a version-2 file stores at bytes 12-15: over the preamble's
 * first 12 bytes and everything after the CRC (header and payload).
 *
 * @example
 * ```ts
 * import { fileChecksum } from "./model_file.ts";
 * import { crc32 } from "../util/crc32.ts";
 * const b = new Uint8Array(20).fill(7);
 * if (fileChecksum(b) !== crc32(new Uint8Array(16).fill(7))) throw new Error();
 * ```
 */
export function fileChecksum(bytes: Uint8Array): number {
  return crc32(bytes.subarray(16), crc32(bytes.subarray(0, 12)));
}

/**
 * Builds the bytes of `model.qgt`: version 4 by default, or an older layout (`version` 2 for a
 * chain, 3 for a graph; for tests and comparisons). The same source gives the same bytes, and a
 * version-4 file is exactly `upgradeQgt` of the version-3 one.
 *
 * @example
 * ```ts ignore
 * const bytes = buildQgt(source);
 * ```
 */
export function buildQgt(src: ExportSource, version = QGT_VERSION): Uint8Array {
  if (version >= 4) return toVersion4(parseQgt(buildQgt(src, QGT_VERSION_GRAPH), "model.qgt"));
  return buildDecimal(src, version);
}

/** The version 1-3 layout: activation scales as decimal text in the header. */
function buildDecimal(src: ExportSource, version: number): Uint8Array {
  const { arch } = src;
  const shapes = layerShapes(arch);
  const zpIn = 255 * src.normalize.mean - 128;
  if (Math.abs(zpIn - Math.round(zpIn)) > 1e-9) {
    throw new Error(
      `export: normalisation mean ${src.normalize.mean} does not give an integer int8 input zero point`,
    );
  }
  const lastLayer = arch.layers[arch.layers.length - 1];
  if (lastLayer.type !== "dense" || lastLayer.act !== "none") {
    throw new Error(
      `export: the last layer (${lastLayer.name}) must be dense with act "none": it gives the logits`,
    );
  }
  const input = {
    shape: arch.inputShape,
    scale: f32Text(1 / (255 * src.normalize.std)),
    zp: Math.round(zpIn),
  };
  const w = new PayloadWriter();
  // a network with residual connections is a graph: version 3 names each layer's inputs
  const graph = arch.layers.some((l) => l.type === "add" || l.inputs);
  if (graph && version < QGT_VERSION_GRAPH) version = QGT_VERSION_GRAPH;
  const inputs = layerInputs(arch);
  const outScale = new Map<string, number>([[NETWORK_INPUT, input.scale]]);
  const layers: HeaderLayer[] = arch.layers.map((l, idx): HeaderLayer => {
    const from = inputs.get(l.name)!;
    const named = l.inputs ? { inputs: [...l.inputs] } : {};
    const inScale = outScale.get(from[0])!;
    let entry: HeaderLayer;
    if (l.type === "maxpool" || l.type === "gap") {
      entry = l.type === "maxpool"
        ? { name: l.name, type: l.type, ...named, size: l.size, stride: l.stride }
        : { name: l.name, type: l.type, ...named };
      outScale.set(l.name, inScale);
    } else if (l.type === "add") {
      const r = src.activationRanges[l.name];
      if (!r) throw new Error(`export: layer ${l.name} has no activation range (calibrate first)`);
      const p = rangeParams(r[0], r[1], 8);
      const out: [number, number] = [f32Text(p.scale), p.zeroPoint - 128];
      entry = { name: l.name, type: "add", inputs: [...l.inputs], act: l.act, out };
      outScale.set(l.name, out[0]);
    } else {
      const s = shapes.get(l.name)!;
      const r = weightLayerEntry(
        src,
        l,
        s.out[s.out.length - 1],
        idx === arch.layers.length - 1,
        inScale,
        w,
      );
      entry = graph ? { ...named, ...r.entry } : r.entry;
      outScale.set(l.name, r.outScale);
    }
    return entry;
  });
  const header: QgtHeader = {
    format: "qgt",
    version,
    name: arch.name,
    classes: src.classNames,
    input,
    layers,
    payload: w.size,
    ...(version >= 2 && src.provenance ? { provenance: src.provenance } : {}),
  };
  return assemble(header, w);
}

/** Longest JSON text of a positive float32 as the header writes it (`0.00000` and 9 digits). */
const MAX_SCALE_TEXT = 16;

/**
 * Upper bound on the bytes of `model.qgt` beyond its layers' sections (as
 * `layerBytes` in `quant/layers.ts` counts them): the preamble, the JSON
 * header (with `provenance`, when the export will carry it) and the 4-byte
 * padding of each section, for any per-layer bit
 * widths (1-8) on `arch` (folded, no BatchNorm) with `spec`'s symmetry and
 * granularity. It builds the file once at 8 bits (the longest offsets and
 * `qmin`, int8 zero points of -128), reads its header length, and adds room
 * for the longest scale texts and the most padding each section can need,
 * so a mixed-precision assignment that budgets with it fits once exported.
 *
 * @example
 * ```ts
 * import { exportOverheadBound } from "./model_file.ts";
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
  provenance?: Provenance,
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
    provenance,
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
  // residual sums carry an output quantization too
  const sums = arch.layers.filter((l) => l.type === "add");
  for (const l of sums) src.activationRanges[l.name] = [0, 1];
  // the version-3 layout bounds version 4's too (tests/format_test.ts): its decimal scales take
  // more header bytes than version 4's float32 table, so mixed-precision budgets keep their value
  const bytes = buildQgt(src, QGT_VERSION_GRAPH);
  const hlen = new DataView(bytes.buffer).getUint32(8, true);
  // the dummy's scale texts (input, and `out` of each layer but possibly the last) may be shorter
  // than real ones, and asymmetric 8-bit `qmin` is "0" where 1-bit's is "-1"
  const textRoom = (MAX_SCALE_TEXT - JSON.stringify(f32Text(1 / 255)).length) *
      (sizes.length + sums.length + 1) +
    (spec.symmetric ? 0 : sizes.length);
  const version = new DataView(bytes.buffer).getUint16(4, true);
  return preambleOf(version) + align4(hlen + textRoom) + padding;
}

/** A parsed file: header, derived shapes and payload. */
export interface QgtFile {
  version: number;
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
  /** What a reader should tell the user (e.g. a version-1 file carries no checksum). */
  notes: string[];
}

/**
 * Version 4's activation scales: reads the float32 table at `actScales` into the header in
 * the version 1-3 shape the validation and every reader use (`input.scale`, each `out` as
 * `[scale, zeroPoint]` from `outZp`), so every version is read through one path. Returns the
 * table's place for the section checks.
 */
function readActScales(
  json: unknown,
  payload: Uint8Array,
  fail: (m: string) => never,
): { at: number; bytes: number } {
  const isObj = (x: unknown): x is Record<string, unknown> =>
    typeof x === "object" && x !== null && !Array.isArray(x);
  if (!isObj(json) || !isObj(json.input) || !Array.isArray(json.layers)) {
    return fail("corrupt header: expected an object with input and layers");
  }
  const layers = json.layers as unknown[];
  if ("scale" in json.input) {
    fail('header.input: unknown key "scale" (version 4 keeps it in the actScales table)');
  }
  const withOut = layers.filter((l): l is Record<string, unknown> => isObj(l) && "outZp" in l);
  for (const [i, l] of layers.entries()) {
    if (isObj(l) && "out" in l) {
      fail(`layer ${l.name ?? i}: unknown key "out" (version 4 has outZp and the actScales table)`);
    }
  }
  const at = json.actScales, n = 1 + withOut.length, bytes = 4 * n;
  if (
    typeof at !== "number" || !Number.isInteger(at) || at < 0 || at % 4 !== 0 ||
    at + bytes > payload.length
  ) {
    return fail(
      `header.actScales: offset ${at} (+${bytes} bytes for ${n} scales) outside the ${payload.length}-byte payload or not 4-byte aligned`,
    );
  }
  const dv = new DataView(payload.buffer, payload.byteOffset + at, bytes);
  const f32 = (k: number) => dv.getFloat32(4 * k, true);
  delete json.actScales;
  json.input = { shape: json.input.shape, scale: f32(0), zp: json.input.zp };
  for (const [k, l] of withOut.entries()) {
    const zp = l.outZp;
    delete l.outZp;
    l.out = [f32(k + 1), zp];
  }
  return { at, bytes };
}

/**
 * A file of any version as version 4: the same layers, sections and payload bytes, the
 * activation scales (exactly the float32 values the old header's decimals gave) appended to the
 * payload as a float32 table, and each `out` written as `outZp`.
 */
function toVersion4(f: QgtFile): Uint8Array {
  const h = f.header;
  const scales = [h.input.scale, ...h.layers.filter((l) => l.out).map((l) => l.out![0])];
  const w = new PayloadWriter();
  w.put(f.payload);
  const at = w.put(new Uint8Array(Float32Array.from(scales).buffer));
  const layers = h.layers.map((l) => {
    const { out, ...rest } = l;
    return out ? { ...rest, outZp: out[1] } : rest;
  });
  const header = {
    format: "qgt",
    version: 4,
    name: h.name,
    classes: h.classes,
    input: { shape: h.input.shape, zp: h.input.zp },
    layers,
    payload: w.size,
    actScales: at,
    ...(h.provenance ? { provenance: h.provenance } : {}),
  };
  return assemble(header as unknown as QgtHeader, w);
}

/**
 * `model.qgt` bytes of any version (1-4) as version 4, the only one the C runtime reads:
 * the same model, computing the same integers (unchanged when already version 4).
 *
 * @example
 * ```ts ignore
 * const v4 = upgradeQgt(await Deno.readFile("old.qgt"), "old.qgt");
 * ```
 */
export function upgradeQgt(bytes: Uint8Array, file: string): Uint8Array {
  const f = parseQgt(bytes, file);
  return f.version >= 4 ? bytes : toVersion4(f);
}

/** JSON.parse keeping fractions as the float32 their decimal text rounds to (docs/format.md, Numbers). */
function parseHeaderJson(text: string): unknown {
  return JSON.parse(
    text,
    (_k, v, ctx?: { source?: string }) =>
      typeof v === "number" && !Number.isInteger(v)
        ? (ctx?.source !== undefined ? decimalToFloat32(ctx.source) : Math.fround(v))
        : v,
  );
}

/** The preamble: magic, a version this reader knows, flags 0, a header that fits, the checksum. */
function checkPreamble(
  bytes: Uint8Array,
  fail: (m: string) => never,
): { version: number; hlen: number } {
  if (bytes.length < 12) {
    fail(`truncated: ${bytes.length} bytes, shorter than the 12-byte preamble`);
  }
  const magic = new TextDecoder().decode(bytes.subarray(0, 4));
  if (magic !== QGT_MAGIC) {
    fail(`wrong magic ${JSON.stringify(magic)} (expected "${QGT_MAGIC}"; not a qgt model)`);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint16(4, true);
  if (!QGT_READS.includes(version)) {
    fail(`unsupported format version ${version} (this reader knows ${QGT_READS.join(", ")})`);
  }
  const flags = dv.getUint16(6, true);
  if (flags !== 0) fail(`flags: expected 0 (reserved), got ${flags}`);
  const pre = preambleOf(version);
  if (bytes.length < pre) {
    fail(`truncated: ${bytes.length} bytes, shorter than the ${pre}-byte preamble`);
  }
  const hlen = dv.getUint32(8, true);
  if (pre + hlen > bytes.length) {
    fail(`truncated: a ${hlen}-byte header does not fit in ${bytes.length} bytes`);
  }
  if (hlen % 4 !== 0) fail(`header length ${hlen} is not a multiple of 4`);
  if (version >= 2) {
    const stored = dv.getUint32(12, true), actual = fileChecksum(bytes);
    if (stored !== actual) {
      fail(
        `checksum mismatch (stored CRC-32 ${hex(stored)}, computed ${
          hex(actual)
        }): the file is damaged or truncated`,
      );
    }
  }
  return { version, hlen };
}

const hex = (x: number) => "0x" + x.toString(16).padStart(8, "0");

/**
 * Parses and validates `model.qgt` bytes (versions 1 to 4); errors are one
 * line starting with `file` naming the layer and field (truncation, magic,
 * version, checksum, unknown or missing keys, bad values, offsets out of
 * range or overlapping the next section).
 *
 * @example
 * ```ts
 * import { parseQgt } from "./model_file.ts";
 * let msg = "";
 * try { parseQgt(new TextEncoder().encode("NOPE12345678"), "m.qgt"); } catch (e) { msg = (e as Error).message; }
 * if (!msg.startsWith("m.qgt: wrong magic")) throw new Error(msg);
 * ```
 */
export function parseQgt(bytes: Uint8Array, file: string): QgtFile {
  const fail = (m: string): never => {
    throw new Error(`${file}: ${m}`);
  };
  const { version, hlen } = checkPreamble(bytes, fail);
  const pre = preambleOf(version);
  let json: unknown;
  try {
    json = parseHeaderJson(
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(pre, pre + hlen)),
    );
  } catch (e) {
    return fail(`corrupt header: ${(e as Error).message}`);
  }
  const payload = bytes.subarray(pre + hlen);
  const reals = version >= 4 ? readActScales(json, payload, fail) : null;
  const { header, layers } = checkHeader(json, version, fail);
  if (payload.length !== header.payload) {
    fail(`truncated or padded payload: ${payload.length} bytes, the header says ${header.payload}`);
  }
  const parts = {
    header: pre + hlen,
    codes: 0,
    scales: 0,
    zeroPoints: 0,
    biases: 0,
    total: bytes.length,
  };
  const used: [number, number, string][] = [];
  if (reals) {
    used.push([reals.at, reals.at + reals.bytes, "actScales"]);
    parts.scales += reals.bytes;
  }
  const section = (at: number | undefined, length: number, what: string) => {
    if (
      typeof at !== "number" || !Number.isInteger(at) || at < 0 || at % 4 !== 0 ||
      at + length > payload.length
    ) {
      fail(
        `${what}: offset ${at} (+${length} bytes) outside the ${payload.length}-byte payload or not 4-byte aligned`,
      );
    }
    used.push([at as number, (at as number) + length, what]);
  };
  for (const l of layers) {
    if (!l.kernelShape) continue;
    const where = `layer ${l.name}`;
    const n = l.kernelShape.reduce((a, b) => a * b, 1), cout = l.channels!;
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
  used.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < used.length; i++) {
    if (used[i][0] < used[i - 1][1]) fail(`${used[i][2]} overlaps ${used[i - 1][2]}`);
  }
  const notes = version < 2
    ? [`${file}: format version 1 carries no checksum, so damage to it cannot be detected`]
    : [];
  return { version, header, layers, payload, parts, notes };
}

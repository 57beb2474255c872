/**
 * The integer reference interpreter: runs a network straight from
 * `model.qgt` bytes the way a microcontroller kernel library does (TFLite
 * Micro's reference kernels): int8 activations, int32 accumulation, biases in
 * int32, and per-channel requantization of each accumulator by a fixed-point
 * multiplier and shift, rounded once (TFLite's TFLITE_SINGLE_ROUNDING mode;
 * the gemmlowp double-rounding pair is here too, for reference). The logit layer's int32 accumulators are the output;
 * `logits` scales them per class to real units.
 * @module
 */
import { parseQgt, type QgtFile, type QgtHeader, type ShapedLayer } from "../format/model_file.ts";
import { packedBytes, unpackCodes } from "../format/pack.ts";
import { fromFloat16Bits } from "../quant/fp16.ts";
import { predictClass, relu6Max, requantMultiplier } from "../format/numbers.ts";

/**
 * M = m0 * 2^(shift - 31) with m0 in [2^30, 2^31) (TFLite's QuantizeMultiplier),
 * for the exact value of the double `m`, rounded once (see `requantMultiplier`).
 *
 * @example
 * ```ts
 * import { quantizeMultiplier } from "./interpreter.ts";
 * const [m0, shift] = quantizeMultiplier(0.25);
 * if (m0 !== 2 ** 30 || shift !== -1) throw new Error();
 * ```
 */
export function quantizeMultiplier(m: number): [number, number] {
  if (m === 0) return [0, 0];
  return requantMultiplier(m, 1, 1);
}

/**
 * gemmlowp SaturatingRoundingDoublingHighMul(a, b): (a b + nudge) / 2^31 in
 * int64 with C's truncating division, nudge = 2^30 for a b >= 0 and 1 - 2^30
 * otherwise (so 1.5 -> 2 but -1.5 -> -1), for int32 a and b, computed exactly
 * with doubles.
 *
 * @example
 * ```ts
 * import { srdhm } from "./interpreter.ts";
 * if (srdhm(1 << 30, 1 << 30) !== 1 << 29 || srdhm(3, 1 << 30) !== 2 || srdhm(-3, 1 << 30) !== -1) throw new Error();
 * ```
 */
export function srdhm(a: number, b: number): number {
  if (a === -2147483648 && b === -2147483648) return 2147483647;
  const lo = Math.imul(a, b) >>> 0; // exact low 32 bits of the product
  const hi = Math.round((a * b - lo) / 4294967296); // exact high word (the double product is within 2^10)
  const nudge = (a >= 0) === (b >= 0) || a === 0 || b === 0 ? 1073741824 : 1 - 1073741824;
  const s = lo + nudge;
  const fs = Math.floor(s / 2147483648);
  let r = hi * 2 + fs;
  if (r < 0 && s - fs * 2147483648 !== 0) r += 1; // C's truncation toward zero
  return r;
}

/**
 * gemmlowp RoundingDivideByPOT(x, e): x / 2^e rounded to nearest, ties away from zero.
 *
 * @example
 * ```ts
 * import { roundingDivideByPOT } from "./interpreter.ts";
 * if (roundingDivideByPOT(5, 1) !== 3 || roundingDivideByPOT(-5, 1) !== -3 || roundingDivideByPOT(-4, 1) !== -2) throw new Error();
 * ```
 */
export function roundingDivideByPOT(x: number, e: number): number {
  if (e === 0) return x;
  const mask = (1 << e) - 1;
  const rem = x & mask;
  const threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> e) + (rem > threshold ? 1 : 0);
}

/**
 * acc * M as TFLite's MultiplyByQuantizedMultiplier (saturating left shift for M > 1).
 *
 * @example
 * ```ts
 * import { multiplyByQuantizedMultiplier, quantizeMultiplier } from "./interpreter.ts";
 * const [m, s] = quantizeMultiplier(0.5);
 * if (multiplyByQuantizedMultiplier(101, m, s) !== 51) throw new Error(); // 50.5 rounds away from zero
 * ```
 */
export function multiplyByQuantizedMultiplier(acc: number, m0: number, shift: number): number {
  const left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  let x = acc * Math.pow(2, left);
  x = x > 2147483647 ? 2147483647 : x < -2147483648 ? -2147483648 : x;
  return roundingDivideByPOT(srdhm(x, m0), right);
}

/**
 * round(acc * M) with a single rounding (TFLite's TFLITE_SINGLE_ROUNDING mode):
 * floor((acc * m0 + 2^(t-1)) / 2^t) with t = 31 - shift, computed exactly from
 * the 64-bit product, saturated to int32. Ties round up, as the fake-quantized
 * simulation's floor(x + 0.5); the gemmlowp pair (SRDHM then
 * RoundingDivideByPOT) rounds twice and is off by one on about 2 % of outputs.
 *
 * @example
 * ```ts
 * import { multiplyByQuantizedMultiplierSingleRounding as mul, quantizeMultiplier } from "./interpreter.ts";
 * const [m, s] = quantizeMultiplier(0.25);
 * if (mul(6, m, s) !== 2 || mul(-6, m, s) !== -1 || mul(9, m, s) !== 2) throw new Error(); // 1.5 -> 2, -1.5 -> -1, 2.25 -> 2
 * ```
 */
export function multiplyByQuantizedMultiplierSingleRounding(
  acc: number,
  m0: number,
  shift: number,
): number {
  const t = 31 - shift;
  const lo = Math.imul(acc, m0) >>> 0; // exact low 32 bits of acc * m0
  const hi = Math.round((acc * m0 - lo) / 4294967296); // exact high word
  let r: number;
  if (t >= 33) r = Math.floor((hi + Math.pow(2, t - 33)) / Math.pow(2, t - 32));
  else if (t === 32) r = hi + Math.floor((lo + 2147483648) / 4294967296);
  else if (t >= 1) {
    r = hi * Math.pow(2, 32 - t) + Math.floor((lo + Math.pow(2, t - 1)) / Math.pow(2, t));
  } else r = (hi * 4294967296 + lo) * Math.pow(2, -t); // M >= 2^31: never for real scales
  return r > 2147483647 ? 2147483647 : r < -2147483648 ? -2147483648 : r;
}

interface RtLayer {
  name: string;
  type: string;
  inShape: number[];
  outShape: number[];
  k?: number;
  stride?: number;
  padTop?: number;
  padLeft?: number;
  size?: number;
  /** Weights with zero points removed, as int32, in kernel layout. */
  w?: Int32Array;
  bias?: Int32Array;
  m0?: Int32Array;
  shift?: Int32Array;
  inZp: number;
  outZp: number;
  actMin: number;
  actMax: number;
  /** Per-channel float16 weight scale s_w[c] (the logits are acc * s_in * s_w[c]). */
  weightScale?: Float64Array;
  /** The input scale s_in. */
  inScale?: number;
  /** The layers it reads (their names, "input" for the network input). */
  inputs: string[];
  /** add: the second input's zero point, and the multipliers of both inputs and of the sum. */
  in2Zp?: number;
  addM?: [number, number, number, number, number, number];
}

/** The left shift of an int8 add's inputs before rescaling (TFLite's ADD kernel uses 20). */
export const ADD_LEFT_SHIFT = 20;

/**
 * The multipliers of an int8 add as TFLite's ADD kernel prepares them:
 * each input rescaled by s_i / (2 max(s_1, s_2)) after a left shift of
 * {@link ADD_LEFT_SHIFT} bits, the sum by 2 max(s_1, s_2) / (2^20 s_out);
 * each as [m0, shift] from the exact value of the float32 scales, rounded
 * once, as a layer's multiplier (`requantMultiplier`; TFLite rounds through
 * doubles, which can differ in the last bit of m0).
 *
 * @example
 * ```ts
 * import { addMultipliers } from "./interpreter.ts";
 * const [m1, , m2] = addMultipliers(0.5, 0.25, 1);
 * if (m1 !== 2 ** 30 || m2 !== 2 ** 30) throw new Error(); // 1/2 and 1/4: the same mantissa
 * ```
 */
export function addMultipliers(
  s1: number,
  s2: number,
  sOut: number,
): [number, number, number, number, number, number] {
  // each the exact rational of float32 scales rounded once (2 max(s1, s2) is exact in float32)
  const twiceMax = 2 * Math.max(s1, s2);
  return [
    ...requantMultiplier(s1, 1, twiceMax),
    ...requantMultiplier(s2, 1, twiceMax),
    ...requantMultiplier(twiceMax, 2 ** -ADD_LEFT_SHIFT, sOut),
  ] as [number, number, number, number, number, number];
}

/** A loaded model ready to run. */
export interface Interpreter {
  header: QgtHeader;
  file: QgtFile;
  layers: RtLayer[];
}

/**
 * The top/left padding of TensorFlow's `same`: floor(max((out - 1) * s + k - in, 0) / 2).
 *
 * @example
 * ```ts
 * import { samePad } from "./interpreter.ts";
 * if (samePad(96, 48, 3, 2) !== 0 || samePad(5, 5, 3, 1) !== 1) throw new Error();
 * ```
 */
export function samePad(inp: number, out: number, k: number, s: number): number {
  return Math.floor(Math.max((out - 1) * s + k - inp, 0) / 2);
}

/** Decodes a weight layer's sections into integer weights, biases and requantization multipliers. */
function weightLayer(
  rt: RtLayer,
  l: ShapedLayer,
  p: Uint8Array,
  inScale: number,
  fail: (m: string) => never,
): void {
  const view = (at: number, len: number) => p.slice(at, at + len);
  const ks = l.kernelShape!, cout = l.channels!;
  const n = ks.reduce((a, b) => a * b, 1);
  const nScales = l.perTensor ? 1 : cout;
  const codes = unpackCodes(view(l.codes!, packedBytes(n, l.bits!)), n, l.bits!, l.qmin!);
  const half = new Uint16Array(view(l.scales!, 2 * nScales).buffer);
  const scales = Array.from(half, fromFloat16Bits);
  scales.forEach((sw, i) => {
    if (!(sw > 0) || !Number.isFinite(sw)) {
      fail(
        `scales[${i}]: float16 0x${
          half[i].toString(16).padStart(4, "0")
        } is ${sw}, expected a finite positive scale`,
      );
    }
  });
  const zps = l.zeroPoints !== undefined
    ? new Int32Array(view(l.zeroPoints, 4 * nScales).buffer)
    : null;
  // a zero point lies in the code range, so |code - zero point| <= 255
  const lo = l.bits === 1 ? -1 : l.qmin!, hi = l.bits === 1 ? 1 : l.qmin! + 2 ** l.bits! - 1;
  zps?.forEach((z, i) => {
    if (z < lo || z > hi) fail(`zeroPoints[${i}]: ${z} outside the code range ${lo}..${hi}`);
  });
  // the output channel of flat kernel index i is i % cout for [k,k,cin,cout], [k,k,c,1] and [in,out]
  rt.w = new Int32Array(n);
  for (let i = 0; i < n; i++) rt.w[i] = codes[i] - (zps ? zps[nScales === 1 ? 0 : i % cout] : 0);
  // the largest |code - zero point| the code range allows
  let wMax = 0;
  for (const z of zps ?? [0]) wMax = Math.max(wMax, Math.abs(lo - z), Math.abs(hi - z));
  rt.bias = new Int32Array(view(l.bias!, 4 * cout).buffer);
  // the largest accumulator: every product at its bound, plus the largest bias
  const window = l.type === "dense"
    ? ks[0]
    : l.type === "depthwise2d"
    ? ks[0] * ks[1]
    : ks[0] * ks[1] * ks[2];
  const biasMax = rt.bias.reduce((a, b) => Math.max(a, Math.abs(b)), 0);
  if (window * 255 * wMax + biasMax > 2147483647) {
    fail(
      `the int32 accumulator could overflow (${window} products of up to 255 x ${wMax}, biases up to ${biasMax})`,
    );
  }
  rt.m0 = new Int32Array(cout);
  rt.shift = new Int32Array(cout);
  rt.weightScale = new Float64Array(cout);
  rt.inScale = inScale;
  for (let c = 0; c < cout; c++) {
    const sw = scales[nScales === 1 ? 0 : c];
    rt.weightScale[c] = sw;
    if (!l.out) continue;
    const [m0, shift] = requantMultiplier(inScale, sw, l.out[0]);
    if (shift > 30) {
      fail(`out: requantization multiplier s_in * s_w / s_out >= 2^30 (channel ${c})`);
    }
    rt.m0[c] = m0;
    rt.shift[c] = shift;
  }
  if (l.type !== "dense") {
    rt.k = l.kernel;
    rt.stride = l.stride;
    const same = l.padding === "same";
    rt.padTop = same ? samePad(l.inShape[0], l.outShape[0], l.kernel!, l.stride!) : 0;
    rt.padLeft = same ? samePad(l.inShape[1], l.outShape[1], l.kernel!, l.stride!) : 0;
  }
  if (l.out) {
    const [s, z] = l.out;
    if (l.act === "relu" || l.act === "relu6") rt.actMin = z;
    if (l.act === "relu6") rt.actMax = relu6Max(z, s);
  }
}

/**
 * Parses `model.qgt` bytes (validating them) and prepares the integer kernels.
 * Errors name the file and layer.
 *
 * @example
 * ```ts ignore
 * const it = loadInterpreter(await Deno.readFile("model.qgt"), "model.qgt");
 * ```
 */
export function loadInterpreter(bytes: Uint8Array, file = "model.qgt"): Interpreter {
  const f = parseQgt(bytes, file);
  // each output's quantization, by layer name (pooling keeps its input's)
  const quant = new Map<string, { scale: number; zeroPoint: number }>([
    ["input", { scale: f.header.input.scale, zeroPoint: f.header.input.zp }],
  ]);
  let previous = "input";
  const layers: RtLayer[] = f.layers.map((l) => {
    const inputs = l.inputs ?? [previous];
    const inQ = quant.get(inputs[0])!;
    const rt: RtLayer = {
      name: l.name,
      type: l.type,
      inShape: l.inShape,
      outShape: l.outShape,
      inZp: inQ.zeroPoint,
      outZp: l.out ? l.out[1] : inQ.zeroPoint,
      actMin: -128,
      actMax: 127,
      inputs,
    };
    const fail = (m: string): never => {
      throw new Error(`${file}: layer ${l.name}: ${m}`);
    };
    if (l.kernelShape) weightLayer(rt, l, f.payload, inQ.scale, fail);
    if (l.type === "maxpool") {
      rt.size = l.size;
      rt.stride = l.stride;
    }
    if (l.type === "add") {
      const in2 = quant.get(inputs[1])!, [s, z] = l.out!;
      rt.in2Zp = in2.zeroPoint;
      rt.addM = addMultipliers(inQ.scale, in2.scale, s);
      if (rt.addM[5] > 30) fail("out: the add's output multiplier is >= 2^30");
      if (l.act === "relu" || l.act === "relu6") rt.actMin = z;
      if (l.act === "relu6") rt.actMax = relu6Max(z, s);
    }
    quant.set(l.name, l.out ? { scale: l.out[0], zeroPoint: l.out[1] } : inQ);
    previous = l.name;
    return rt;
  });
  return { header: f.header, file: f, layers };
}

/**
 * An int8 add: both inputs less their zero points, shifted left by
 * {@link ADD_LEFT_SHIFT} bits and rescaled to a common scale, summed,
 * rescaled to the output scale, plus its zero point, clamped to the
 * activation (TFLite's ADD kernel, with qgt's single rounding).
 */
function addLayer(rt: RtLayer, a: Int8Array, b: Int8Array): Int8Array {
  const [m1, s1, m2, s2, mo, so] = rt.addM!;
  const out = new Int8Array(a.length);
  const shift = 2 ** ADD_LEFT_SHIFT;
  for (let i = 0; i < a.length; i++) {
    const x1 = multiplyByQuantizedMultiplierSingleRounding((a[i] - rt.inZp) * shift, m1, s1);
    const x2 = multiplyByQuantizedMultiplierSingleRounding((b[i] - rt.in2Zp!) * shift, m2, s2);
    let v = multiplyByQuantizedMultiplierSingleRounding(x1 + x2, mo, so) + rt.outZp;
    if (v < rt.actMin) v = rt.actMin;
    if (v > rt.actMax) v = rt.actMax;
    out[i] = v;
  }
  return out;
}

function requant(rt: RtLayer, acc: number, c: number): number {
  let v = multiplyByQuantizedMultiplierSingleRounding(acc, rt.m0![c], rt.shift![c]) + rt.outZp;
  if (v < rt.actMin) v = rt.actMin;
  if (v > rt.actMax) v = rt.actMax;
  return v;
}

function conv(rt: RtLayer, x: Int8Array, depthwise: boolean): Int8Array {
  const [ih, iw, cin] = rt.inShape, [oh, ow, cout] = rt.outShape;
  const k = rt.k!, s = rt.stride!, pt = rt.padTop!, pl = rt.padLeft!;
  const w = rt.w!, bias = rt.bias!, zp = rt.inZp;
  const out = new Int8Array(oh * ow * cout);
  const acc = new Int32Array(cout);
  for (let oy = 0; oy < oh; oy++) {
    for (let ox = 0; ox < ow; ox++) {
      acc.set(bias);
      for (let ky = 0; ky < k; ky++) {
        const iy = oy * s + ky - pt;
        if (iy < 0 || iy >= ih) continue; // padding holds the zero point: (q - zp) = 0
        for (let kx = 0; kx < k; kx++) {
          const ix = ox * s + kx - pl;
          if (ix < 0 || ix >= iw) continue;
          const xo = (iy * iw + ix) * cin;
          if (depthwise) {
            const wo = (ky * k + kx) * cin;
            for (let c = 0; c < cin; c++) acc[c] += (x[xo + c] - zp) * w[wo + c];
          } else {
            const wo = (ky * k + kx) * cin * cout;
            for (let ci = 0; ci < cin; ci++) {
              const xv = x[xo + ci] - zp;
              if (xv === 0) continue;
              const wr = wo + ci * cout;
              for (let co = 0; co < cout; co++) acc[co] += xv * w[wr + co];
            }
          }
        }
      }
      const o = (oy * ow + ox) * cout;
      for (let c = 0; c < cout; c++) out[o + c] = requant(rt, acc[c], c);
    }
  }
  return out;
}

/**
 * Runs one image (int8, H*W*C, q = pixel - 128) and returns the logit layer's
 * int32 accumulators and their real values.
 *
 * @example
 * ```ts ignore
 * const { logits } = runInterpreter(it, quantizeInput(it, pixels));
 * ```
 */
export function runInterpreter(
  it: Interpreter,
  input: Int8Array,
  onLayer?: (name: string, out: Int8Array, zeroPoint: number) => void,
): { acc: Int32Array; logits: Float64Array } {
  let x: Int8Array = input;
  let acc: Int32Array = new Int32Array(0);
  let scale: Float64Array = new Float64Array(0);
  // a graph (version 3: layers name their inputs) keeps the outputs; a chain only the last
  const graph = it.header.version >= 3;
  const outputs = new Map<string, Int8Array>([["input", input]]);
  for (const rt of it.layers) {
    if (graph) x = outputs.get(rt.inputs[0])!;
    switch (rt.type) {
      case "add":
        x = addLayer(rt, x, outputs.get(rt.inputs[1])!);
        break;
      case "conv2d":
        x = conv(rt, x, false);
        break;
      case "depthwise2d":
        x = conv(rt, x, true);
        break;
      case "maxpool": {
        const [ih, iw, c] = rt.inShape, [oh, ow] = rt.outShape;
        const out = new Int8Array(oh * ow * c);
        for (let oy = 0; oy < oh; oy++) {
          for (let ox = 0; ox < ow; ox++) {
            for (let ch = 0; ch < c; ch++) {
              let m = -128;
              for (let dy = 0; dy < rt.size!; dy++) {
                for (let dx = 0; dx < rt.size!; dx++) {
                  const v = x[((oy * rt.stride! + dy) * iw + ox * rt.stride! + dx) * c + ch];
                  if (v > m) m = v;
                }
              }
              out[(oy * ow + ox) * c + ch] = m;
            }
          }
        }
        void ih;
        x = out;
        break;
      }
      case "gap": {
        const [h, w, c] = rt.inShape;
        const n = h * w;
        const out = new Int8Array(c);
        for (let ch = 0; ch < c; ch++) {
          let sum = 0;
          for (let i = 0; i < n; i++) sum += x[i * c + ch] - rt.inZp;
          // round half away from zero, then back to the zero point
          const q = sum >= 0
            ? Math.floor((2 * sum + n) / (2 * n))
            : -Math.floor((-2 * sum + n) / (2 * n));
          out[ch] = Math.max(-128, Math.min(127, q + rt.outZp));
        }
        x = out;
        break;
      }
      case "dense": {
        const [cin] = rt.inShape, [cout] = rt.outShape;
        const a = new Int32Array(rt.bias!);
        for (let ci = 0; ci < cin; ci++) {
          const xv = x[ci] - rt.inZp;
          for (let co = 0; co < cout; co++) a[co] += xv * rt.w![ci * cout + co];
        }
        if (rt === it.layers[it.layers.length - 1]) {
          acc = a;
          scale = rt.weightScale!.map((sw) => sw * rt.inScale!);
        } else {
          const out = new Int8Array(cout);
          for (let c = 0; c < cout; c++) out[c] = requant(rt, a[c], c);
          x = out;
        }
        break;
      }
    }
    onLayer?.(rt.name, x, rt.outZp);
    if (graph) outputs.set(rt.name, x);
  }
  const logits = new Float64Array(acc.length);
  for (let c = 0; c < acc.length; c++) logits[c] = acc[c] * scale[c];
  return { acc, logits };
}

/**
 * The predicted class of one image: the largest logit, acc[c] * s_in * s_w[c],
 * compared exactly (ties to the lowest class).
 *
 * @example
 * ```ts ignore
 * const cls = predict(it, pixelsToInt8(pixels));
 * ```
 */
export function predict(it: Interpreter, input: Int8Array): number {
  const { acc } = runInterpreter(it, input);
  return predictClass(acc, it.layers[it.layers.length - 1].weightScale!);
}

/**
 * int8 input from uint8 pixels: q = pixel - 128.
 *
 * @example
 * ```ts
 * import { pixelsToInt8 } from "./interpreter.ts";
 * if (pixelsToInt8(new Uint8Array([0, 255]))[1] !== 127) throw new Error();
 * ```
 */
export function pixelsToInt8(pixels: Uint8Array): Int8Array {
  const out = new Int8Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = pixels[i] - 128;
  return out;
}

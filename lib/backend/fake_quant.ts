/**
 * The fused symmetric fake-quantization kernel (`wasm/fake_quant.c`, wasm32
 * with SIMD, built by `deno task kernels`): the MSE clipping search over a set
 * of ratios, the fake-quantized weights and the straight-through mask of a
 * `[rows, channels]` float32 matrix, in one pass per ratio. It performs the
 * float32 operations of the tensor implementation (`lib/quant/quantizer.ts`)
 * in the same order, so it returns the same bits as tfjs-backend-wasm does
 * (`tests/quant_test.ts` compares the two on random tensors), at a fraction of
 * the cost: the tensor version runs about fifteen tfjs kernels over every
 * weight for every ratio. The module has its own memory; arrays are copied in
 * and out.
 * @module
 */

interface Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  qgt_max_scale(
    x: number,
    rows: number,
    ch: number,
    qmax: number,
    minScale: number,
    s0: number,
  ): void;
  qgt_mse_scale(
    x: number,
    rows: number,
    ch: number,
    s0: number,
    ratio: number,
    k: number,
    qmin: number,
    qmax: number,
    minScale: number,
    err: number,
    sk: number,
    s: number,
  ): void;
  qgt_fake_quant(
    x: number,
    rows: number,
    ch: number,
    s: number,
    qmin: number,
    qmax: number,
    y: number,
    mask: number,
  ): void;
}

let kernel: Exports | null = null;

function load(): Exports {
  if (kernel) return kernel;
  const bytes = Deno.readFileSync(new URL("./wasm/fake_quant.wasm", import.meta.url));
  const memory = new WebAssembly.Memory({ initial: 2 });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  kernel = { ...(inst.exports as unknown as Exports), memory };
  return kernel;
}

/** What {@link fusedFakeQuant} computes. */
export interface FusedFakeQuant {
  /** Fake-quantized values, same layout as x. */
  y: Float32Array;
  /** 1 where the straight-through gradient passes (x inside the clipping range), else 0. */
  mask: Float32Array;
  /** The scale of each channel. */
  scale: Float32Array;
}

/**
 * Symmetric fake quantization of `x`, a row-major `[rows, ch]` matrix with one
 * grid per column, on the levels qmin..qmax: scale s0 = max(max|x| / qmax,
 * minScale) per column, or with `ratios` the ratio r of s0 minimising the
 * squared error (the first one on ties), s = max(s0 r, minScale); then
 * y = s clamp(round_half_away(x / s), qmin, qmax) and the mask of
 * qmin s <= x <= qmax s.
 *
 * @example
 * ```ts
 * import { fusedFakeQuant } from "./fake_quant.ts";
 * // two columns, 2-bit narrow levels -1..1, max scale: s = max|x| per column
 * const r = fusedFakeQuant(new Float32Array([0.4, -2, -1, 0.9]), 2, 2, { qmin: -1, qmax: 1, minScale: 1e-12 });
 * if (r.scale.join() !== "1,2" || r.y.join() !== "0,-2,-1,0") throw new Error();
 * if (r.mask.join() !== "1,1,1,1") throw new Error();
 * ```
 */
export function fusedFakeQuant(
  x: Float32Array,
  rows: number,
  ch: number,
  o: { qmin: number; qmax: number; minScale: number; ratios?: Float32Array },
): FusedFakeQuant {
  if (x.length !== rows * ch) {
    throw new Error(`internal: fused fake quant: ${x.length} values for ${rows} x ${ch}`);
  }
  const k = load();
  const n = x.length, kr = o.ratios?.length ?? 0;
  // layout (float32 slots from the heap base): x, s0, ratios, err, sk, s, y, mask
  const base = Math.ceil((k.__heap_base.value as number) / 16) * 16;
  const at: number[] = [];
  let off = base;
  for (const len of [n, ch, kr, kr * ch, kr * ch, ch, n, n]) {
    at.push(off);
    off += Math.ceil(len / 4) * 16;
  }
  const need = off - k.memory.buffer.byteLength;
  if (need > 0) k.memory.grow(Math.ceil(need / 65536));
  const f32 = (p: number, len: number) => new Float32Array(k.memory.buffer, p, len);
  f32(at[0], n).set(x);
  k.qgt_max_scale(at[0], rows, ch, o.qmax, o.minScale, at[1]);
  let sAt = at[1];
  if (o.ratios && kr > 0) {
    f32(at[2], kr).set(o.ratios);
    k.qgt_mse_scale(
      at[0],
      rows,
      ch,
      at[1],
      at[2],
      kr,
      o.qmin,
      o.qmax,
      o.minScale,
      at[3],
      at[4],
      at[5],
    );
    sAt = at[5];
  }
  k.qgt_fake_quant(at[0], rows, ch, sAt, o.qmin, o.qmax, at[6], at[7]);
  return { y: f32(at[6], n).slice(), mask: f32(at[7], n).slice(), scale: f32(sAt, ch).slice() };
}

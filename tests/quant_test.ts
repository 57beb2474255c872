// Quantizers against values worked out by hand, STE/LSQ gradients against finite differences.
import * as tf from "@tensorflow/tfjs";
import { tempDir } from "./tmp.ts";
import { initBackend } from "../lib/backend/mod.ts";
import {
  dequantize,
  fakeQuantize,
  fakeQuantOp,
  fakeQuantRange,
  levelRange,
  lsqQuantize,
  quantizeToInt,
  type QuantSpec,
} from "../lib/quant/mod.ts";
import { rng } from "../lib/util/random.ts";
import { assert, assertAlmostEquals } from "./assert.ts";

await initBackend("wasm");

const sym = (bits: number, extra: Partial<QuantSpec> = {}): QuantSpec => ({
  bits,
  symmetric: true,
  perChannel: false,
  ...extra,
});

Deno.test("symmetric per-tensor: hand-worked codes (8, 3 narrow and 2 bits)", () => {
  // 8 bits: s = 2/127; 1/s = 63.5 -> 64 (half away from zero); 0.5/s = 31.75 -> 32
  let q = quantizeToInt(tf.tensor1d([-2, 1, 0.5]), sym(8));
  assert.deepStrictEqual([...q.codes], [-127, 64, 32]);
  assertAlmostEquals(q.scales[0], 2 / 127, 1e-9);
  // 3 bits narrow: levels -3..3, s = 0.9/3 = 0.3; -0.35/0.3 = -1.17 -> -1; 0.1/0.3 -> 0
  q = quantizeToInt(tf.tensor1d([0.9, -0.35, 0.1]), sym(3, { narrowRange: true }));
  assert.deepStrictEqual([...q.codes], [3, -1, 0]);
  assertAlmostEquals(q.scales[0], 0.3, 1e-7);
  // 2 bits full range: levels -2..1, s = max|w| / 1 = 1; 0.5 -> 1 (away from zero)
  q = quantizeToInt(tf.tensor1d([-1, -0.6, 0.2, 0.5, 1]), sym(2));
  assert.deepStrictEqual([...q.codes], [-1, -1, 0, 1, 1]);
  assert.deepStrictEqual(levelRange(sym(2)), { qmin: -2, qmax: 1 });
});

Deno.test("per-channel: conv kernel along axis 3 and depthwise along axis 2", () => {
  // [1,1,2,2]: channel 0 holds {1.0, -0.55}, channel 1 {0.21, -0.4}; 4 bits, qmax 7
  const w = tf.tensor4d([1.0, 0.21, -0.55, -0.4], [1, 1, 2, 2]);
  const q = quantizeToInt(w, sym(4, { perChannel: true, axis: 3 }));
  assertAlmostEquals(q.scales[0], 1 / 7, 1e-7);
  assertAlmostEquals(q.scales[1], 0.4 / 7, 1e-7);
  // 1.0*7 = 7; 0.21/(0.4/7) = 3.675 -> 4; -0.55*7 = -3.85 -> -4; -0.4 -> -7
  assert.deepStrictEqual([...q.codes], [7, 4, -4, -7]);
  // depthwise [1,2,2,1]: channel = axis 2; channel 0 {0.5, 0.25}, channel 1 {-2, 1}
  const d = quantizeToInt(
    tf.tensor4d([0.5, -2, 0.25, 1], [1, 2, 2, 1]),
    sym(2, { perChannel: true, axis: 2, narrowRange: true }),
  );
  assert.deepStrictEqual([...d.scales], [0.5, 2]);
  assert.deepStrictEqual([...d.codes], [1, -1, 1, 1]); // 0.25/0.5 = 0.5 -> 1; 1/2 = 0.5 -> 1
});

Deno.test("asymmetric: zero point and levels 0..2^b-1", () => {
  // [-1, 0, 2], 2 bits: s = 3/3 = 1, z = round(1/1) = 1 -> codes [0, 1, 3]
  const q = quantizeToInt(tf.tensor1d([-1, 0, 2]), {
    bits: 2,
    symmetric: false,
    perChannel: false,
  });
  assert.deepStrictEqual([...q.codes], [0, 1, 3]);
  assert.deepStrictEqual([...q.zeroPoints], [1]);
  assert.deepStrictEqual([...dequantize(q)], [-1, 0, 2]);
  // all positive: range widened to include 0: [0, 1.5], s = 0.5, z = 0
  const p = quantizeToInt(tf.tensor1d([0.3, 0.9, 1.5]), {
    bits: 2,
    symmetric: false,
    perChannel: false,
  });
  assert.deepStrictEqual([...p.codes], [1, 2, 3]);
  assert.equal(p.zeroPoints[0], 0);
});

Deno.test("1-bit: binary {-s, +s} with s = mean|w|", () => {
  const q = quantizeToInt(tf.tensor1d([0.5, -1.5, 0, 1]), sym(1));
  assert.deepStrictEqual([...q.codes], [1, -1, 1, 1]);
  assertAlmostEquals(q.scales[0], 0.75, 1e-7);
  assert.deepStrictEqual([...dequantize(q)], [0.75, -0.75, 0.75, 0.75]);
});

Deno.test("codes stay in range; fakeQuantize equals dequantize(quantizeToInt) for all specs", () => {
  const r = rng(3);
  const w = tf.tensor4d(
    Float32Array.from({ length: 3 * 3 * 4 * 5 }, () => r.normal() * (1 + r.next())),
    [3, 3, 4, 5],
  );
  for (let bits = 1; bits <= 8; bits++) {
    for (const symmetric of bits === 1 ? [true] : [true, false]) {
      for (const perChannel of [false, true]) {
        for (const scale of ["maxabs", "mse"] as const) {
          const spec: QuantSpec = {
            bits,
            symmetric,
            perChannel,
            axis: 3,
            scale,
            narrowRange: bits % 2 === 0,
          };
          const q = quantizeToInt(w, spec);
          const { qmin, qmax } = levelRange(spec);
          assert.ok(q.codes.every((c) => c >= qmin && c <= qmax), JSON.stringify(spec));
          const fq = fakeQuantize(w, spec).dataSync();
          const plus0 = (a: ArrayLike<number>) => Array.from(a, (v) => v + 0); // -0 -> 0
          assert.deepStrictEqual(plus0(fq), plus0(dequantize(q)), JSON.stringify(spec));
        }
      }
    }
  }
  w.dispose();
});

Deno.test("MSE scale never has more error than max-abs, and clearly less on heavy tails at 2 bits", () => {
  const r = rng(9);
  // Laplace-like weights with a few outliers
  const vals = Float32Array.from({ length: 4000 }, () => {
    const u = r.next() - 0.5;
    return -Math.sign(u) * Math.log(1 - 2 * Math.abs(u)) * 0.1;
  });
  const w = tf.tensor1d(vals);
  const err = (spec: QuantSpec) =>
    tf.tidy(() => tf.sum(tf.square(tf.sub(w, fakeQuantOp(w, spec)))).dataSync()[0]);
  for (const bits of [2, 3, 4, 8]) {
    const a = err(sym(bits, { scale: "maxabs" })), b = err(sym(bits, { scale: "mse" }));
    assert.ok(b <= a * (1 + 1e-6), `${bits} bits: mse ${b} > maxabs ${a}`);
    if (bits === 2) assert.ok(b < 0.6 * a, `2 bits: mse ${b} vs maxabs ${a}`);
  }
  w.dispose();
});

/** Central finite difference of f at x along element i. */
function fd(f: (x: Float32Array) => number, x: Float32Array, i: number, h = 1e-3): number {
  const a = x.slice(), b = x.slice();
  a[i] += h;
  b[i] -= h;
  return (f(a) - f(b)) / (2 * h);
}

Deno.test("STE gradient equals the finite-difference derivative of the clipped identity", async () => {
  await initBackend("cpu"); // float64 accumulation for clean finite differences
  const spec = sym(3, { steps: 0.25 }); // explicit scale: range [-1, 0.75], some values clipped
  const xs = Float32Array.from([-1.7, -0.9, -0.33, 0.02, 0.41, 0.7, 1.3, 2.2]);
  const r = Float32Array.from([0.3, -1, 2, 0.5, -0.7, 1.1, 0.9, -2]);
  const g = tf.tidy(() =>
    tf.grad((x: tf.Tensor) => tf.sum(tf.mul(fakeQuantOp(x, spec), tf.tensor1d(r))))(tf.tensor1d(xs))
      .dataSync()
  );
  // surrogate with rounding removed: s * clamp(x / s, qmin, qmax)
  const { qmin, qmax } = levelRange(spec);
  const sur = (x: Float32Array) =>
    x.reduce((a, v, i) => a + r[i] * 0.25 * Math.min(qmax, Math.max(qmin, v / 0.25)), 0);
  xs.forEach((_, i) => assertAlmostEquals(g[i], fd(sur, xs, i), 1e-4, `x[${i}]`));
  await initBackend("wasm");
});

Deno.test("LSQ gradients (w and s) equal finite differences of the LSQ surrogate", async () => {
  await initBackend("cpu");
  const spec = sym(3, { perChannel: true, axis: 1 });
  const ws = Float32Array.from([-0.9, 0.12, 0.33, -0.05, 0.61, 0.4, -0.27, 1.4]); // [4, 2]
  const ss = Float32Array.from([0.2, 0.15]);
  const rr = Float32Array.from([1, -0.5, 0.3, 2, -1.2, 0.7, 0.4, -0.9]);
  const [gw, gs] = tf.tidy(() => {
    const f = (w: tf.Tensor, s: tf.Tensor) =>
      tf.sum(tf.mul(lsqQuantize(w, s, spec), tf.tensor2d(rr, [4, 2])));
    return tf.grads(f)([tf.tensor2d(ws, [4, 2]), tf.tensor1d(ss)]).map((t) => t.dataSync());
  });
  const { qmin, qmax } = levelRange(spec);
  const gScale = 1 / Math.sqrt(4 * qmax);
  // surrogate: s * (clamp(w/s) + r0) with the rounding residual r0 = round(v) - v held constant
  const resid = (w: Float32Array, s: Float32Array) =>
    [...w].map((v, i) => {
      const u = Math.min(qmax, Math.max(qmin, v / s[i % 2]));
      return Math.sign(u) * Math.floor(Math.abs(u) + 0.5) - u;
    });
  const r0 = resid(ws, ss);
  const surW = (w: Float32Array) =>
    [...w].reduce(
      (a, v, i) => a + rr[i] * ss[i % 2] * (Math.min(qmax, Math.max(qmin, v / ss[i % 2])) + r0[i]),
      0,
    );
  const surS = (s: Float32Array) =>
    [...ws].reduce(
      (a, v, i) => a + rr[i] * s[i % 2] * (Math.min(qmax, Math.max(qmin, v / s[i % 2])) + r0[i]),
      0,
    );
  ws.forEach((_, i) => assertAlmostEquals(gw[i], fd(surW, ws, i, 1e-4), 1e-3, `dw[${i}]`));
  ss.forEach((_, c) => assertAlmostEquals(gs[c], gScale * fd(surS, ss, c, 1e-5), 1e-3, `ds[${c}]`));
  await initBackend("wasm");
});

Deno.test("activation fake quantization on a fixed range", () => {
  // [0, 6] at 8 bits: s = 6/255; 3.0/s = 127.5 -> 128 (floor(x + 0.5)); 7 clips to 6
  const y = fakeQuantRange(tf.tensor1d([3, 7, -1]), 0, 6, 8).dataSync();
  assertAlmostEquals(y[0], (128 * 6) / 255, 1e-6);
  assertAlmostEquals(y[1], 6, 1e-6);
  assertAlmostEquals(y[2], 0, 1e-6);
  const g = tf.grad((x: tf.Tensor) => tf.sum(fakeQuantRange(x, 0, 6)))(tf.tensor1d([3, 7, -1]))
    .dataSync();
  assert.deepStrictEqual([...g], [1, 0, 0]);
});

Deno.test("bad specs and bad weights give clear errors", () => {
  const w = tf.tensor2d([1, 2, 3, 4], [2, 2]);
  assert.throws(() => fakeQuantize(w, sym(0)), /bits must be an integer 1-8, got 0/);
  assert.throws(() => quantizeToInt(w, sym(9)), /bits must be an integer 1-8, got 9/);
  assert.throws(
    () => fakeQuantize(w, sym(4, { perChannel: true, axis: 2 })),
    /axis 2 out of range for a rank-2 tensor/,
  );
  assert.throws(
    () => quantizeToInt(tf.tensor1d([1, NaN]), sym(4)),
    /non-finite value \(NaN\) at flat index 1/,
  );
  assert.throws(
    () => fakeQuantize(w, { bits: 1, symmetric: false, perChannel: false }),
    /binary and must be symmetric/,
  );
  assert.throws(() => fakeQuantize(w, sym(4, { steps: -1 })), /steps must all be > 0/);
});

Deno.test("the fused fake-quant kernel gives the tensor ops' bits on wasm: values, STE gradients, host values", async () => {
  const { fakeQuantOpReference, fakeQuantValues, fusedLayout } = await import(
    "../lib/quant/quantizer.ts"
  );
  await initBackend("wasm");
  const r = rng(23);
  const bitsOf = (a: Float32Array) => new Uint32Array(a.slice().buffer);
  const shapes: { shape: number[]; axis?: number }[] = [
    { shape: [3, 3, 1, 8] },
    { shape: [3, 3, 8, 16] },
    { shape: [1, 1, 16, 24] },
    { shape: [3, 3, 32, 64] },
    { shape: [3, 3, 12, 1], axis: 2 },
    { shape: [64, 10] },
    { shape: [5] },
  ];
  let cases = 0, values = 0;
  for (let t = 0; t < 60; t++) {
    const { shape, axis } = shapes[t % shapes.length];
    const n = shape.reduce((a, b) => a * b, 1);
    const scaleOf = 10 ** r.int(-3, 1);
    const x = Float32Array.from({ length: n }, () => {
      const u = r.uniform(0, 1);
      if (u < 0.05) return 0;
      if (u < 0.1) return r.normal() * 1e-8; // below the stock Sign's threshold once divided
      if (u < 0.15) return (r.int(-3, 3) + 0.5) * scaleOf / 2; // on half steps
      return r.normal() * scaleOf;
    });
    if (t % 7 === 0) x.fill(0, 0, Math.min(n, 16)); // an all-zero channel or more
    const spec: QuantSpec = {
      bits: [2, 3, 4, 8][t % 4],
      symmetric: true,
      perChannel: t % 5 !== 0,
      ...(axis !== undefined ? { axis } : {}),
      narrowRange: t % 3 !== 0,
      scale: t % 6 === 5 ? "maxabs" : "mse",
    };
    assert(fusedLayout(shape, spec) !== null, `layout ${shape}`);
    const xt = tf.tensor(x, shape);
    const dy = tf.tensor(Float32Array.from({ length: n }, () => r.normal()), shape);
    const run = (f: (v: tf.Tensor) => tf.Tensor) => {
      const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(f(v), dy)));
      return [f(xt).dataSync() as Float32Array, g(xt).dataSync() as Float32Array];
    };
    const [y1, g1] = run((v) => fakeQuantOp(v, spec));
    const [y0, g0] = run((v) => fakeQuantOpReference(v, spec));
    const h = fakeQuantValues(x, shape, spec);
    const [b0, b1, bg0, bg1, bh] = [y0, y1, g0, g1, h].map(bitsOf);
    const bad = [...b0.keys()].filter((i) =>
      b0[i] !== b1[i] || bg0[i] !== bg1[i] || b0[i] !== bh[i]
    );
    assert(bad.length === 0, `case ${t} ${JSON.stringify(spec)}: ${bad.length} of ${n} differ`);
    cases++;
    values += n;
    tf.dispose([xt, dy]);
  }
  assert(cases === 60 && values > 50000, `${cases} cases, ${values} values`);
});

const wasmTools = (await new Deno.Command("sh", {
  args: ["-c", "command -v clang && command -v wasm-ld"],
  stdout: "null",
}).output()).success;

Deno.test({
  name: "the committed wasm kernels are what their C source builds to (clang + wasm-ld)",
  ignore: !wasmTools,
  fn: async () => {
    const { buildKernels } = await import("../lib/backend/wasm/build.ts");
    const dir = await tempDir("qgt-kernels-");
    try {
      for (const out of await buildKernels(dir)) {
        const name = out.slice(dir.length + 1);
        const committed = await Deno.readFile(
          new URL(`../lib/backend/wasm/${name}`, import.meta.url),
        );
        const built = await Deno.readFile(out);
        assert(
          built.length === committed.length && built.every((b, i) => b === committed[i]),
          `lib/backend/wasm/${name} differs from a fresh build: run deno task kernels`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("the wasm kernels that run on tfjs's memory carry no data section", async () => {
  const { wasmSections } = await import("../lib/backend/wasm/build.ts");
  for (const name of ["bn_act.wasm", "conv_grad.wasm"]) {
    const ids = wasmSections(
      await Deno.readFile(new URL(`../lib/backend/wasm/${name}`, import.meta.url)),
    );
    assert(ids.includes(10), `${name}: no code section in ${ids}`);
    assert(!ids.includes(11) && !ids.includes(12), `${name}: data sections in ${ids}`);
  }
});

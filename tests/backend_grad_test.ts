// Gradient parity of the wasm training kernels with tfjs's cpu backend (the reference).
import * as tf from "@tensorflow/tfjs";
import { GRAD_KERNELS, initBackend, setGradKernels } from "../lib/backend/mod.ts";
import { gradKernelCalls } from "../lib/backend/conv_grad_kernel.ts";
import { rng } from "../lib/util/random.ts";
import { createModel, smallCnn } from "../lib/models/mod.ts";
import { computeGrads } from "../lib/train/step.ts";
import { assert, maxRelErr } from "./assert.ts";

interface Cfg {
  kind: "conv" | "dw";
  n: number;
  h: number;
  w: number;
  cin: number;
  cout: number; // filters (conv) or channel multiplier (dw)
  kh: number;
  kw: number;
  s: number;
  pad: "same" | "valid";
}

function grads(cfg: Cfg, xs: Float32Array, ws: Float32Array, rs: Float32Array): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor4d(xs, [cfg.n, cfg.h, cfg.w, cfg.cin]);
    const w = tf.tensor4d(ws, [cfg.kh, cfg.kw, cfg.cin, cfg.cout]);
    const f = (x: tf.Tensor4D, w: tf.Tensor4D) => {
      const y = cfg.kind === "conv"
        ? tf.conv2d(x, w, cfg.s, cfg.pad)
        : tf.depthwiseConv2d(x, w, cfg.s, cfg.pad);
      return tf.sum(tf.mul(y, tf.tensor(rs.subarray(0, y.size), y.shape)));
    };
    const [dx, dw] = tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor)([x, w]);
    return [dx.dataSync() as Float32Array, dw.dataSync() as Float32Array];
  });
}

function configs(): Cfg[] {
  const r = rng(2024);
  const out: Cfg[] = [];
  for (const kind of ["conv", "dw"] as const) {
    for (const s of [1, 2]) {
      for (const pad of ["same", "valid"] as const) {
        for (let t = 0; t < 14; t++) {
          const kh = r.int(1, 5), kw = t % 3 === 0 ? kh : r.int(1, 5);
          out.push({
            kind,
            n: r.int(1, 3),
            h: r.int(kh, 15),
            w: r.int(kw, 15),
            cin: r.int(1, 7),
            cout: kind === "conv" ? r.int(1, 9) : r.int(1, 3),
            kh,
            kw,
            s,
            pad,
          });
        }
      }
    }
  }
  // shapes of the MobileNet person detector
  out.push({ kind: "conv", n: 2, h: 96, w: 96, cin: 1, cout: 8, kh: 3, kw: 3, s: 2, pad: "same" });
  out.push({ kind: "conv", n: 2, h: 48, w: 48, cin: 8, cout: 16, kh: 1, kw: 1, s: 1, pad: "same" });
  out.push({ kind: "dw", n: 2, h: 48, w: 48, cin: 16, cout: 1, kh: 3, kw: 3, s: 2, pad: "same" });
  out.push({ kind: "dw", n: 2, h: 7, w: 7, cin: 64, cout: 1, kh: 3, kw: 3, s: 1, pad: "same" });
  return out;
}

for (const mode of GRAD_KERNELS) {
  Deno.test(`wasm conv/depthwise gradients (${mode} kernels) match the cpu backend on 116 random configurations`, async () => {
    setGradKernels(mode);
    const calls = gradKernelCalls();
    try {
      await gradientParity();
      // the qgt kernel computed the depthwise filter gradients of multiplier 1; the tfjs mode none
      const used = gradKernelCalls() - calls;
      assert.ok(mode === "qgt" ? used >= 10 : used === 0, `${used} wasm kernel calls`);
    } finally {
      setGradKernels("tfjs");
    }
  });
}

async function gradientParity() {
  const cfgs = configs();
  const r = rng(7);
  const arr = (n: number) => Float32Array.from({ length: n }, () => r.uniform(-1, 1));
  let worst = 0, worstCfg = "";
  const kinds = new Set<string>();
  for (const cfg of cfgs) {
    const xs = arr(cfg.n * cfg.h * cfg.w * cfg.cin);
    const ws = arr(cfg.kh * cfg.kw * cfg.cin * cfg.cout);
    const rs = arr(cfg.n * cfg.h * cfg.w * cfg.cin * cfg.cout);
    await initBackend("cpu");
    const [cdx, cdw] = grads(cfg, xs, ws, rs);
    await initBackend("wasm");
    const before = tf.memory().numTensors;
    const [wdx, wdw] = grads(cfg, xs, ws, rs);
    assert.equal(tf.memory().numTensors, before, `tensor leak in ${JSON.stringify(cfg)}`);
    const e = Math.max(maxRelErr(wdx, cdx), maxRelErr(wdw, cdw));
    if (e > worst) [worst, worstCfg] = [e, JSON.stringify(cfg)];
    kinds.add(`${cfg.kind}/s${cfg.s}/${cfg.pad}/m${cfg.kind === "dw" ? cfg.cout : 1}`);
  }
  assert.ok(cfgs.length >= 50);
  assert.ok(kinds.size >= 12, `coverage: ${[...kinds]}`);
  assert.ok(worst <= 1e-4, `max relative error ${worst} at ${worstCfg}`);
}

Deno.test("the loop kernels Maximum, Minimum and Sign give the stock wasm kernels' bits", async () => {
  const { stockWasmKernel } = await import("../lib/backend/wasm_kernels.ts");
  await initBackend("wasm");
  const r = rng(11);
  const eps = 2 ** -23; // the stock Sign's threshold, and its float32 neighbours
  const special = [0, -0, NaN, Infinity, -Infinity, 1, -1, 0.5, -0.5, 3.4e38, 1e-45, eps, -eps]
    .concat([1.1920928e-7, -1.1920928e-7, 1e-10]);
  const values = (n: number) =>
    Float32Array.from(
      { length: n },
      () =>
        r.uniform(0, 1) < 0.2
          ? special[r.int(0, special.length - 1)]
          : r.normal() * 10 ** r.int(-3, 3),
    );
  const bitsOf = (t: tf.TensorInfo) =>
    new Uint32Array(
      (tf.engine().makeTensorFromTensorInfo(t).dataSync() as Float32Array).slice().buffer,
    );
  const run = (f: tf.KernelFunc, inputs: Record<string, tf.Tensor>) =>
    bitsOf(f({ inputs, backend: tf.backend(), attrs: {} }) as tf.TensorInfo);
  // equal shapes, scalars either side, per-channel vectors either side, and one the loops leave alone
  const pairs: [number[], number[]][] = [
    [[3, 5, 7], [3, 5, 7]],
    [[4, 9], []],
    [[1], [6, 2]],
    [[2, 3, 3, 8], [1, 1, 1, 8]],
    [[8], [5, 4, 8]],
    [[5, 1], [5, 4]],
    [[0, 3], [3]],
  ];
  let compared = 0;
  for (const name of ["Maximum", "Minimum"]) {
    const stock = stockWasmKernel(name)!, mine = tf.getKernel(name, "wasm")!.kernelFunc;
    for (const [sa, sb] of pairs) {
      const a = tf.tensor(values(tf.util.sizeFromShape(sa)), sa);
      const b = tf.tensor(values(tf.util.sizeFromShape(sb)), sb);
      const want = run(stock, { a, b }), got = run(mine, { a, b });
      assert(
        want.length === got.length && want.every((w, i) => w === got[i]),
        `${name} ${sa} ${sb}`,
      );
      compared += want.length;
      tf.dispose([a, b]);
    }
  }
  const x = tf.tensor(values(5000), [50, 100]);
  const want = run(stockWasmKernel("Sign")!, { x });
  const got = run(tf.getKernel("Sign", "wasm")!.kernelFunc, { x });
  const bad = [...want.keys()].filter((i) => want[i] !== got[i]).slice(0, 5);
  assert(
    bad.length === 0,
    `Sign differs at ${
      bad.map((i) => `${x.dataSync()[i]}: ${want[i].toString(16)} vs ${got[i].toString(16)}`)
    }`,
  );
  x.dispose();
  assert(compared > 500, `compared ${compared} values`);
});

Deno.test("max-pooling gradient: the qgt kernel matches the cpu backend; ties go to the first maximum", async () => {
  const r = rng(41);
  const cfgs: [number[], number, number, "valid" | "same"][] = [
    [[2, 8, 8, 3], 2, 2, "valid"],
    [[3, 7, 9, 4], 3, 2, "same"],
    [[1, 6, 6, 5], 3, 1, "same"],
    [[2, 5, 5, 2], 2, 1, "valid"],
  ];
  const grad = (
    shape: number[],
    k: number,
    s: number,
    pad: "valid" | "same",
    xs: Float32Array,
    ws: Float32Array,
  ) =>
    tf.tidy(() => {
      const x = tf.tensor4d(xs, shape as [number, number, number, number]);
      const f = (v: tf.Tensor) => {
        const y = tf.maxPool(v as tf.Tensor4D, k, s, pad);
        return tf.sum(tf.mul(y, tf.tensor(ws.subarray(0, y.size), y.shape)));
      };
      return tf.grad(f)(x).dataSync().slice() as Float32Array;
    });
  const calls = gradKernelCalls();
  for (const [shape, k, s, pad] of cfgs) {
    const n = shape.reduce((a, b) => a * b, 1);
    // signed values: windows whose maximum is negative are where tfjs-wasm's own kernel fails
    const xs = Float32Array.from({ length: n }, () => r.normal());
    const ws = Float32Array.from({ length: n }, () => r.normal());
    await initBackend("cpu");
    const want = grad(shape, k, s, pad, xs, ws);
    await initBackend("wasm");
    setGradKernels("qgt");
    try {
      const got = grad(shape, k, s, pad, xs, ws);
      assert.ok(maxRelErr(got, want) < 1e-6, `${shape} k${k} s${s} ${pad}`);
    } finally {
      setGradKernels("tfjs");
    }
  }
  assert.equal(gradKernelCalls() - calls, cfgs.length, "the qgt kernel ran once per configuration");
  // a window of equal values: the gradient goes to its first position
  setGradKernels("qgt");
  try {
    const g = grad(
      [1, 2, 2, 1],
      2,
      2,
      "valid",
      new Float32Array([1, 1, 1, 1]),
      new Float32Array([7]),
    );
    assert.deepStrictEqual([...g], [7, 0, 0, 0]);
  } finally {
    setGradKernels("tfjs");
  }
});

Deno.test("the default max-pooling gradient kernel gives tfjs-wasm's own MaxPoolGrad bits, quirks included", async () => {
  const { stockWasmKernel } = await import("../lib/backend/wasm_kernels.ts");
  await initBackend("wasm");
  const stock = stockWasmKernel("MaxPoolGrad")!;
  const mine = tf.getKernel("MaxPoolGrad", "wasm")!.kernelFunc;
  const r = rng(53);
  const FLT_MIN = 2 ** -126;
  // ties (small integers), zeros and negatives (windows tfjs's kernel mishandles), values at
  // and around FLT_MIN (its starting value), NaN; dy with -0, infinities and NaN now and then
  const xValue = () => {
    const u = r.uniform(0, 1);
    if (u < 0.3) return r.int(-2, 2);
    if (u < 0.35) return [FLT_MIN, FLT_MIN * 2, 1e-45, -1e-45, -0, NaN][r.int(0, 5)];
    return r.normal();
  };
  const dyValue = () => {
    const u = r.uniform(0, 1);
    return u < 0.02 ? [-0, Infinity, -Infinity, NaN][r.int(0, 3)] : r.normal();
  };
  const bits = (t: tf.TensorInfo) =>
    new Uint32Array(
      (tf.engine().makeTensorFromTensorInfo(t).dataSync() as Float32Array).slice().buffer,
    );
  const calls = gradKernelCalls();
  let values = 0, cases = 0;
  for (let t = 0; t < 60; t++) {
    // the last case: the small CNN's first pool (2x2, stride 2 on 28x28x32)
    const last = t === 59;
    const kh = last ? 2 : r.int(1, 4), kw = last || t % 2 ? kh : r.int(1, 4);
    const n = r.int(1, 3), h = last ? 28 : r.int(kh, 13), w = last ? 28 : r.int(kw, 13);
    const c = last ? 32 : r.int(1, 9);
    const strides: [number, number] = last ? [2, 2] : [r.int(1, 3), r.int(1, 3)];
    const pad = t % 3 === 0 || last ? "valid" : "same";
    const x = tf.tensor4d(Float32Array.from({ length: n * h * w * c }, xValue), [n, h, w, c]);
    const info = tf.backend_util.computePool2DInfo(x.shape, [kh, kw], strides, 1, pad);
    const dyShape = [n, info.outHeight, info.outWidth, c];
    const dy = tf.tensor4d(
      Float32Array.from({ length: tf.util.sizeFromShape(dyShape) }, dyValue),
      dyShape as [number, number, number, number],
    );
    const args = {
      inputs: { input: x, dy },
      attrs: { filterSize: [kh, kw], strides, pad },
      backend: tf.backend(),
    };
    const want = bits(stock(args as never) as tf.TensorInfo);
    const got = bits(mine(args as never) as tf.TensorInfo);
    const nan = (b: number) => (b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0;
    const bad = [...want.keys()].filter((i) =>
      want[i] !== got[i] && !(nan(want[i]) && nan(got[i]))
    );
    assert.equal(
      bad.length,
      0,
      `${n}x${h}x${w}x${c} k${kh}x${kw} s${strides} ${pad}: ${bad.length} of ${want.length} differ`,
    );
    values += want.length;
    cases++;
    tf.dispose([x, dy]);
  }
  assert.equal(gradKernelCalls() - calls, cases, "the wasm kernel ran, not the stock one");
  assert.ok(values > 10000, `${values} values`);
  // the quirk itself, worked by hand: a window of zeros gives its gradient to flat offset 0 when
  // it covers it, and to nowhere otherwise; ties among positive values go to the last position
  const x = tf.tensor4d([0, 0, 5, 5, 0, 0, 5, 5], [1, 2, 4, 1]);
  const dy = tf.tensor4d([7, 9], [1, 1, 2, 1]);
  const out = mine(
    {
      inputs: { input: x, dy },
      attrs: { filterSize: 2, strides: 2, pad: "valid" },
      backend: tf.backend(),
    } as never,
  ) as tf.TensorInfo;
  assert.deepStrictEqual([...tf.engine().makeTensorFromTensorInfo(out).dataSync()], [
    7,
    0,
    0,
    0,
    0,
    0,
    0,
    9,
  ]);
  tf.dispose([x, dy]);
});

Deno.test("after ReLU, max pooling's gradient kernels give the small CNN the same parameter gradients", async () => {
  // tfjs-wasm's MaxPoolGrad drops windows whose maximum is <= 0; behind a ReLU those
  // positions have zero gradient anyway, so qgt's small CNN trains the same with either
  await initBackend("wasm");
  const m = createModel(smallCnn({ inputShape: [12, 12, 1], channels: [4, 4, 8, 8] }), 2);
  const r = rng(5);
  const b = {
    x: Float32Array.from({ length: 6 * 144 }, () => r.normal()),
    y: Int32Array.from({ length: 6 }, () => r.int(0, 9)),
    n: 6,
  };
  const calls = gradKernelCalls();
  const run = (mode: "tfjs" | "qgt") => {
    setGradKernels(mode);
    try {
      return computeGrads(m, {}, b, {}).grads.map((g) => new Uint32Array(g.slice().buffer));
    } finally {
      setGradKernels("tfjs");
    }
  };
  const a = run("tfjs"), q = run("qgt");
  assert.equal(gradKernelCalls() - calls, 4, "both pools ran a wasm kernel in either mode");
  a.forEach((g, i) => assert.deepStrictEqual(q[i], g, `gradient ${i}`));
  for (const v of m.params.values()) v.dispose();
});

Deno.test("the pointwise filter-gradient kernel gives the matrix product's bits (the default path)", async () => {
  const { conv2dFilterGrad } = await import("../lib/backend/grad_math.ts");
  await initBackend("wasm");
  const r = rng(43);
  let values = 0;
  for (let t = 0; t < 40; t++) {
    const n = r.int(1, 4), h = r.int(1, 12), w = r.int(1, 12);
    const cin = r.int(1, 40), cout = r.int(1, 40);
    const x = tf.tensor4d(Float32Array.from({ length: n * h * w * cin }, () => r.normal()), [
      n,
      h,
      w,
      cin,
    ]);
    const dy = tf.tensor4d(Float32Array.from({ length: n * h * w * cout }, () => r.normal()), [
      n,
      h,
      w,
      cout,
    ]);
    const ci = tf.backend_util.computeConv2DInfo(x.shape, [1, 1, cin, cout], 1, 1, "same");
    const want = tf.tidy(() => conv2dFilterGrad(x, dy, ci).dataSync().slice());
    const got = tf.tidy(() =>
      (tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
        strides: 1,
        pad: "same",
        dataFormat: "NHWC",
        filterShape: [1, 1, cin, cout],
      }) as tf.Tensor).dataSync().slice()
    );
    const a = new Uint32Array(want.buffer), b = new Uint32Array(got.buffer);
    const bad = [...a.keys()].filter((i) => a[i] !== b[i]).length;
    assert.equal(bad, 0, `n${n} ${h}x${w} cin ${cin} cout ${cout}: ${bad} of ${a.length} differ`);
    values += a.length;
    tf.dispose([x, dy]);
  }
  assert.ok(values > 5000, `${values} values`);
});

Deno.test("the convolution filter-gradient kernel gives the XNNPACK convolution's bits (the default path)", async () => {
  const { conv2dFilterGrad } = await import("../lib/backend/grad_math.ts");
  await initBackend("wasm");
  const r = rng(47);
  let values = 0;
  for (let t = 0; t < 40; t++) {
    const n = r.int(1, 5), h = r.int(3, 14), w = r.int(3, 14);
    const cin = r.int(1, 13), cout = r.int(1, 20);
    const k = r.int(2, 5), s = r.int(1, 3);
    const kw = r.int(0, 3) ? k : r.int(1, 4); // some non-square kernels
    const pad = r.int(0, 1) ? "same" : "valid";
    const x = tf.tensor4d(
      Float32Array.from({ length: n * h * w * cin }, () => r.normal()),
      [n, h, w, cin],
    );
    const ci = tf.backend_util.computeConv2DInfo(x.shape, [k, kw, cin, cout], s, 1, pad);
    if (ci.outHeight < 1 || ci.outWidth < 1) {
      x.dispose();
      continue;
    }
    const dy = tf.tensor4d(
      Float32Array.from({ length: n * ci.outHeight * ci.outWidth * cout }, () => r.normal()),
      [n, ci.outHeight, ci.outWidth, cout],
    );
    const want = tf.tidy(() => conv2dFilterGrad(x, dy, ci).dataSync().slice());
    const got = tf.tidy(() =>
      (tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
        strides: s,
        pad,
        dataFormat: "NHWC",
        filterShape: [k, kw, cin, cout],
      }) as tf.Tensor).dataSync().slice()
    );
    const a = new Uint32Array(want.buffer), b = new Uint32Array(got.buffer);
    const bad = [...a.keys()].filter((i) => a[i] !== b[i]).length;
    assert.equal(
      bad,
      0,
      `n${n} ${h}x${w} cin ${cin} cout ${cout} kernel ${k}x${kw} stride ${s} ${pad}: ${bad} of ${a.length} differ`,
    );
    values += a.length;
    tf.dispose([x, dy]);
  }
  assert.ok(values > 5000, `${values} values`);
});

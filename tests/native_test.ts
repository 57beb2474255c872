// The native (oneDNN) backend: its kernels against tfjs's cpu backend (the reference) on random
// shapes of every kind, forward and both gradients; its selection and fallback. Skipped, saying
// why, where libdnnl-dev or a C compiler is missing.
import * as tf from "@tensorflow/tfjs";
import { initBackend, nativeUnavailableReason } from "../lib/backend/mod.ts";
import { BN_ACT_BACKWARD, BN_ACT_FORWARD, nativeCalls } from "../lib/backend/native_kernels.ts";
import { batchNormActTrain } from "../lib/models/bn_act.ts";
import { rng } from "../lib/util/random.ts";
import { assert } from "./assert.ts";

const reason = await nativeUnavailableReason();
// skipped only for a missing piece (library, header, compiler); a failed self-check fails them
const why = reason.includes("self-check") ? "" : reason;
if (why) console.error(`native backend tests skipped: ${why}`);

/** One layer's problem: its input, kernel, stride, padding, and whether it is depthwise / dense. */
interface Problem {
  kind: "conv" | "depthwise" | "dense";
  x: number[];
  k: number[];
  stride: number;
  pad: "same" | "valid";
  bias: boolean;
  act: "linear" | "relu" | "relu6";
}

/** Random problems of every kind: odd sizes, both paddings, strides 1 and 2. */
function problems(seed: number, n: number): Problem[] {
  const r = rng(seed);
  const out: Problem[] = [];
  for (let i = 0; i < n; i++) {
    const kind = (["conv", "depthwise", "dense"] as const)[i % 3];
    const b = r.int(1, 4), h = r.int(3, 11), w = r.int(3, 11), c = r.int(1, 9);
    const kk = [1, 3, 5][r.int(0, 2)], oc = r.int(1, 12);
    const pad = r.next() < 0.5 ? "same" : "valid";
    const acts = ["linear", "relu", "relu6"] as const;
    if (kind === "dense") {
      out.push({
        kind,
        x: [b * 3, c * 4],
        k: [c * 4, oc],
        stride: 1,
        pad,
        bias: r.next() < 0.5,
        act: acts[r.int(0, 2)],
      });
      continue;
    }
    const kh = Math.min(kk, pad === "valid" ? Math.min(h, w) : kk);
    out.push({
      kind,
      x: [b, h, w, c],
      k: kind === "conv" ? [kh, kh, c, oc] : [kh, kh, c, r.int(1, 2)],
      stride: r.int(1, 2),
      pad,
      bias: r.next() < 0.5,
      act: acts[r.int(0, 2)],
    });
  }
  return out;
}

/** The layer's output and its gradients with respect to input, kernel and bias, as arrays. */
function forwardAndGrads(
  p: Problem,
  data: { x: Float32Array; k: Float32Array; b: Float32Array; dy?: Float32Array },
) {
  return tf.tidy(() => {
    const x = tf.tensor(data.x, p.x), k = tf.tensor(data.k, p.k);
    const outC = p.kind === "dense" ? p.k[1] : p.kind === "conv" ? p.k[3] : p.k[2] * p.k[3];
    const b = tf.tensor1d(data.b.subarray(0, outC));
    const f = (x: tf.Tensor, k: tf.Tensor, b: tf.Tensor) => {
      const bias = p.bias ? b : undefined;
      if (p.kind === "dense") {
        return tf.fused.matMul({
          a: x as tf.Tensor2D,
          b: k as tf.Tensor2D,
          bias,
          activation: p.act,
        });
      }
      const args = {
        x: x as tf.Tensor4D,
        filter: k as tf.Tensor4D,
        strides: p.stride,
        pad: p.pad,
        bias,
        activation: p.act,
      };
      return p.kind === "conv" ? tf.fused.conv2d(args) : tf.fused.depthwiseConv2d(args);
    };
    const y = f(x, k, b);
    const dy = data.dy ? tf.tensor(data.dy.subarray(0, y.size), y.shape) : tf.onesLike(y);
    const g = p.bias
      ? tf.grads((x, k, b) => tf.sum(tf.mul(f(x, k, b), dy)))([x, k, b])
      : tf.grads((x, k) => tf.sum(tf.mul(f(x, k, b), dy)))([x, k]);
    return [y, ...g].map((t) => t.dataSync() as Float32Array);
  });
}

/** max |a - b| over max |b| (relative to the tensor's scale). */
function rel(a: Float32Array, b: Float32Array): number {
  let e = 0, s = 1e-6;
  for (let i = 0; i < b.length; i++) {
    e = Math.max(e, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return a.length === b.length ? e / s : Infinity;
}

/** A pooling's output and input gradient (times `dy`), as arrays. */
function poolAndGrad(
  x: Float32Array,
  shape: number[],
  max: boolean,
  size: number,
  stride: number,
  pad: "same" | "valid",
  dy: Float32Array,
) {
  return tf.tidy(() => {
    const f = (t: tf.Tensor) =>
      (max ? tf.maxPool : tf.avgPool)(t as tf.Tensor4D, size, stride, pad) as tf.Tensor;
    const xt = tf.tensor(x, shape), y = f(xt);
    const d = tf.tensor(dy.subarray(0, y.size), y.shape);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(f(t), d)))(xt);
    return [y, g].map((t) => t.dataSync() as Float32Array);
  });
}

Deno.test({
  name:
    "native backend: max pooling (both paddings) and average pooling (valid), forward and gradient, agree with tfjs's cpu backend",
  ignore: why !== "",
  fn: async () => {
    const r = rng(13);
    const kernels = ["MaxPool", "MaxPoolGrad", "AvgPool", "AvgPoolGrad"];
    const before = kernels.map((k) => nativeCalls.get(k)?.calls ?? 0);
    for (let i = 0; i < 24; i++) {
      const max = i % 2 === 0;
      const pad = max && i % 4 === 0 ? "same" : "valid";
      const size = r.int(1, 3), stride = r.int(1, 3);
      const shape = [r.int(1, 3), r.int(size, 9), r.int(size, 9), r.int(1, 12)];
      const n = shape.reduce((a, b) => a * b, 1);
      // distinct values: no ties, so the argmax (and the max's gradient) is unique
      const x = Float32Array.from({ length: n }, (_, j) => j + r.next() * 0.5);
      for (let j = n - 1; j > 0; j--) {
        const k = r.int(0, j);
        [x[j], x[k]] = [x[k], x[j]];
      }
      const dy = Float32Array.from({ length: n }, () => r.next() * 2 - 1);
      await initBackend("cpu");
      const want = poolAndGrad(x, shape, max, size, stride, pad, dy);
      await initBackend("native");
      const got = poolAndGrad(x, shape, max, size, stride, pad, dy);
      for (const [j, what] of ["output", "input gradient"].entries()) {
        const e = rel(got[j], want[j]);
        const c = `case ${i} ${max ? "max" : "avg"} ${shape} size ${size} stride ${stride} ${pad}`;
        assert.ok(e <= 1e-5, `${c}: ${what} relative error ${e}`);
      }
    }
    const after = kernels.map((k) => nativeCalls.get(k)?.calls ?? 0);
    for (const [i, k] of kernels.entries()) {
      assert.ok(after[i] > before[i], `${k} never ran natively`);
    }
    await initBackend("wasm");
  },
});

/** BatchNorm + activation's output, batch statistics and gradients (x, gamma, beta) as arrays. */
function bnActAndGrads(
  shape: number[],
  act: "none" | "relu" | "relu6",
  data: { x: Float32Array; g: Float32Array; b: Float32Array; dz: Float32Array },
) {
  return tf.tidy(() => {
    const ch = shape[shape.length - 1];
    const x = tf.tensor(data.x, shape);
    const g = tf.tensor1d(data.g.subarray(0, ch)), b = tf.tensor1d(data.b.subarray(0, ch));
    const dz = tf.tensor(data.dz.subarray(0, x.size), shape);
    const stats: tf.Tensor[] = [];
    const z = batchNormActTrain(x, g, b, act, 1e-3, (m, v) => stats.push(m, v));
    const grads = tf.grads((x, g, b) => tf.sum(tf.mul(batchNormActTrain(x, g, b, act, 1e-3), dz)))(
      [x, g, b],
    );
    const out = [z, ...stats, ...grads].map((t) => t.dataSync() as Float32Array);
    tf.dispose(stats);
    return out;
  });
}

Deno.test({
  name:
    "native backend: training BatchNorm + activation (one call each way) agrees with tfjs's cpu backend: output, statistics, gradients (relative 1e-4)",
  ignore: why !== "",
  fn: async () => {
    const r = rng(11);
    const before = [BN_ACT_FORWARD, BN_ACT_BACKWARD].map((k) => nativeCalls.get(k)?.calls ?? 0);
    for (let i = 0; i < 18; i++) {
      const shape = i % 6 === 5
        ? [r.int(2, 40), r.int(1, 9)]
        : [r.int(1, 4), r.int(1, 9), r.int(1, 9), r.int(1, 17)];
      const act = (["none", "relu", "relu6"] as const)[i % 3];
      const n = shape.reduce((a, b) => a * b, 1);
      // a spread that puts y on both sides of 0 and 6
      const data = {
        x: Float32Array.from({ length: n }, () => (r.next() * 2 - 1) * 3 + 0.5),
        g: Float32Array.from({ length: 17 }, () => 1 + r.next() * 3),
        b: Float32Array.from({ length: 17 }, () => r.next() * 6 - 1),
        dz: Float32Array.from({ length: n }, () => r.next() * 2 - 1),
      };
      await initBackend("cpu");
      const want = bnActAndGrads(shape, act, data);
      await initBackend("native");
      const got = bnActAndGrads(shape, act, data);
      const names = [
        "output",
        "mean",
        "variance",
        "input gradient",
        "gamma gradient",
        "beta gradient",
      ];
      for (let j = 0; j < want.length; j++) {
        const e = rel(got[j], want[j]);
        assert.ok(e <= 1e-4, `case ${i} ${shape} ${act}: ${names[j]} relative error ${e}`);
      }
    }
    const after = [BN_ACT_FORWARD, BN_ACT_BACKWARD].map((k) => nativeCalls.get(k)?.calls ?? 0);
    assert.ok(after[0] > before[0] && after[1] > before[1], "the native BatchNorm never ran");
    await initBackend("wasm");
  },
});

Deno.test({
  name:
    "native backend: forward, input and weight gradients of every kernel kind agree with tfjs's cpu backend (relative 1e-4)",
  ignore: why !== "",
  fn: async () => {
    const r = rng(5);
    const before = new Map([...nativeCalls].map(([k, v]) => [k, v.calls]));
    for (const [i, p] of problems(3, 36).entries()) {
      const n = (s: number[]) => s.reduce((a, b) => a * b, 1);
      const data = {
        x: Float32Array.from({ length: n(p.x) }, () => r.next() * 2 - 1),
        k: Float32Array.from({ length: n(p.k) }, () => r.next() * 2 - 1),
        b: Float32Array.from({ length: 64 }, () => r.next() - 0.5),
        dy: Float32Array.from({ length: 20000 }, () => r.next() * 2 - 1),
      };
      await initBackend("cpu");
      const want = forwardAndGrads(p, data);
      await initBackend("native");
      const got = forwardAndGrads(p, data);
      const names = ["output", "input gradient", "kernel gradient", "bias gradient"];
      for (let j = 0; j < want.length; j++) {
        if (j === 3 && !p.bias) continue;
        const e = rel(got[j], want[j]);
        assert.ok(e <= 1e-4, `problem ${i} ${JSON.stringify(p)}: ${names[j]} relative error ${e}`);
      }
    }
    // the native kernels ran (not their wasm fallbacks)
    for (
      const k of [
        "FusedConv2D",
        "FusedDepthwiseConv2D",
        "Conv2DBackpropInput",
        "Conv2DBackpropFilter",
        "DepthwiseConv2dNativeBackpropInput",
        "DepthwiseConv2dNativeBackpropFilter",
        "_FusedMatMul",
      ]
    ) {
      assert.ok((nativeCalls.get(k)?.calls ?? 0) > (before.get(k) ?? 0), `${k} never ran natively`);
    }
    await initBackend("wasm");
  },
});

Deno.test({
  name:
    "native backend: the same smoke run twice gives byte-identical tables and model bytes, and run.json says what trained it",
  ignore: why !== "",
  fn: async () => {
    const { cli, SMALL } = await import("./helpers.ts");
    const { tempDir } = await import("./tmp.ts");
    const { join } = await import("node:path");
    const outs: string[] = [];
    for (let i = 0; i < 2; i++) {
      const out = await tempDir();
      const r = await cli([
        "lib/cli/run.ts",
        "experiments/smoke.ts",
        "--backend",
        "native",
        "--variants",
        "float,qat-4",
        "--quiet",
        "--out",
        out,
        ...SMALL.flatMap((s) => ["--set", s]),
      ]);
      assert.equal(r.code, 0, r.stderr);
      const [run] = [...Deno.readDirSync(join(out, "smoke"))].map((e) => e.name);
      outs.push(join(out, "smoke", run));
    }
    for (
      const f of ["summary.csv", "metrics.csv", "layers.csv", "variants/qat-4/export/model.qgt"]
    ) {
      const [a, b] = await Promise.all(outs.map((d) => Deno.readFile(join(d, f))));
      assert.deepStrictEqual(a, b, `${f} differs between two native runs`);
    }
    const rec = JSON.parse(await Deno.readTextFile(join(outs[0], "run.json")));
    assert.equal(rec.versions.backend, "native");
    assert.match(rec.versions.onednn, /^\d+\.\d+\.\d+$/);
    assert.ok(rec.versions.isa, JSON.stringify(rec.versions));
  },
});

Deno.test("native backend: asked for and missing is a usage error naming the piece; auto falls back to wasm with one line", async () => {
  const { tempDir } = await import("./tmp.ts");
  const out = await tempDir();
  const run = (backend: string) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "lib/cli/run.ts",
        "experiments/smoke.ts",
        "--backend",
        backend,
        "--variants",
        "float",
        "--quiet",
        "--out",
        out,
        "--set",
        "dataset.options.trainCount=160",
        "--set",
        "dataset.options.valCount=64",
        "--set",
        "train.epochs=1",
        "--set",
        "train.batchSize=16",
      ],
      // no C compiler: the shim cannot be built (whether or not the library is installed)
      env: { NO_COLOR: "1", CC: "/no/such/cc" },
      stdout: "piped",
      stderr: "piped",
    }).output();
  const asked = await run("native");
  const err = new TextDecoder().decode(asked.stderr).trim();
  assert.equal(asked.code, 2, err);
  assert.match(
    err,
    /^qgt: --backend native: (no C compiler \(cc or \$CC\) to build the oneDNN shim|libdnnl\.so\.2 not found|the oneDNN header)/,
  );
  const auto = await run("auto");
  const lines = new TextDecoder().decode(auto.stderr).trim().split("\n");
  assert.equal(auto.code, 0, lines.join("\n"));
  assert.ok(
    lines.some((l) => /^note: training on wasm: .*(apt-get install)/.test(l)),
    lines.join("\n"),
  );
  await Deno.remove(out, { recursive: true });
});

Deno.test({
  name:
    "native backend: more shapes than the primitive cache holds evict the least recently used, and results stay right",
  ignore: why !== "",
  fn: async () => {
    const { loadOneDnn } = await import("../lib/backend/onednn.ts");
    const d = await loadOneDnn();
    if (!d.ok) throw new Error(d.why);
    // a 1x1 convolution of n images of 1x1x2 to 1 channel: y = x0 * w0 + x1 * w1, for n = 1..600 (more than
    // any cache size: the old fixed cache failed with "primitive cache full")
    for (let n = 1; n <= 600; n++) {
      const x = Float32Array.from({ length: 2 * n }, (_, i) => i % 7);
      const w = new Float32Array([0.5, -2]), y = new Float32Array(n);
      const p = new Int32Array([n, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
      assert.equal(d.lib.qn_conv(0, p, x, w, null, y), 0);
      for (let i = 0; i < n; i++) assert.equal(y[i], x[2 * i] * 0.5 - 2 * x[2 * i + 1]);
    }
    const cached = d.lib.qn_cached();
    assert.ok(cached > 0 && cached <= 256, `${cached} primitives cached`);
  },
});

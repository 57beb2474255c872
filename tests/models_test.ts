import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend/mod.ts";
import {
  countParams,
  createModel,
  foldBatchNorm,
  forward,
  getWeights,
  layerShapes,
  mobilenetV1,
  setWeights,
  smallCnn,
} from "../lib/models/mod.ts";
import { rng } from "../lib/util/random.ts";
import { batchNormActTrain } from "../lib/models/bn_act.ts";
import { assert, maxRelErr } from "./assert.ts";
import { tinyArch } from "./helpers.ts";

await initBackend("wasm");

Deno.test("parameter counts match the reference networks", () => {
  // PyTorch peer: MobileNetV1-0.25 96x96x1 has 213,442 trainable parameters
  // (218,914 with BatchNorm running statistics); the Fashion-MNIST CNN 65,834.
  const m = createModel(mobilenetV1(), 1);
  assert.equal(countParams(m), 213442);
  let all = 0;
  for (const v of m.params.values()) all += v.size;
  assert.equal(all, 218914);
  assert.equal(countParams(createModel(smallCnn(), 1)), 65834);
});

Deno.test("same seed gives the same weights; another seed differs", () => {
  const a = getWeights(createModel(tinyArch(), 3)), b = getWeights(createModel(tinyArch(), 3));
  const c = getWeights(createModel(tinyArch(), 4));
  assert.deepStrictEqual(a, b);
  assert.notDeepStrictEqual(a["c1/kernel"], c["c1/kernel"]);
});

Deno.test("impossible architectures are rejected with the layer named", () => {
  const arch = tinyArch();
  assert.throws(() => layerShapes({ ...arch, classes: 3 }), /output shape \[2\] != \[3\]/);
  assert.throws(
    () =>
      layerShapes({ ...arch, layers: [arch.layers[0], arch.layers[0], ...arch.layers.slice(1)] }),
    /duplicate layer name c1/,
  );
});

Deno.test("BatchNorm folding: folded and unfolded outputs agree to 1e-5", async () => {
  await initBackend("wasm");
  for (const arch of [tinyArch(), mobilenetV1({ inputShape: [32, 32, 1] })]) {
    const m = createModel(arch, 7);
    // give BatchNorm non-trivial statistics and affine parameters
    const r = rng(1);
    const w = getWeights(m);
    for (const [k, v] of Object.entries(w)) {
      if (k.endsWith("/gamma")) v.forEach((_, i) => (v[i] = r.uniform(0.5, 1.5)));
      if (k.endsWith("/beta") || k.endsWith("/mean")) {
        v.forEach((_, i) => (v[i] = r.uniform(-0.5, 0.5)));
      }
      if (k.endsWith("/variance")) v.forEach((_, i) => (v[i] = r.uniform(0.2, 2)));
    }
    setWeights(m, w);
    const f = foldBatchNorm(m);
    assert.ok(![...f.params.keys()].some((k) => /gamma|beta|mean|variance/.test(k)));
    const [h, ww, c] = arch.inputShape;
    const x = tf.tensor4d(Float32Array.from({ length: 4 * h * ww * c }, () => r.uniform(-1, 1)), [
      4,
      h,
      ww,
      c,
    ]);
    const y0 = tf.tidy(() => forward(m, x).dataSync());
    const y1 = tf.tidy(() => forward(f, x).dataSync());
    assert.ok(maxRelErr(y1, y0) < 1e-5, `${arch.name}: ${maxRelErr(y1, y0)}`);
    x.dispose();
  }
});

Deno.test("fused training BatchNorm+activation: value and gradients equal tfjs's stock ops (cpu)", async () => {
  await initBackend("cpu");
  const r = rng(5);
  const shape = [3, 5, 4, 6];
  const xs = Float32Array.from({ length: 3 * 5 * 4 * 6 }, () => r.uniform(-3, 9));
  const gs = Float32Array.from({ length: 6 }, () => r.uniform(0.5, 2));
  const bs = Float32Array.from({ length: 6 }, () => r.uniform(-1, 3));
  const ws = Float32Array.from({ length: xs.length }, () => r.uniform(-1, 1));
  for (const act of ["relu6", "relu", "none"] as const) {
    const run = (fused: boolean) =>
      tf.tidy(() => {
        const x = tf.tensor(xs, shape),
          g = tf.tensor(gs),
          b = tf.tensor(bs),
          w = tf.tensor(ws, shape);
        const f = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          let z: tf.Tensor;
          if (fused) z = batchNormActTrain(x, g, b, act, 1e-3);
          else {
            const { mean, variance } = tf.moments(x, [0, 1, 2]);
            const y = tf.batchNorm(x as tf.Tensor4D, mean, variance, b, g, 1e-3);
            z = act === "relu6" ? tf.clipByValue(y, 0, 6) : act === "relu" ? tf.relu(y) : y;
          }
          return tf.sum(tf.mul(z, w));
        };
        const { value, grads } = tf.valueAndGrads(f)([x, g, b]);
        return [value.dataSync(), ...grads.map((t) => t.dataSync())];
      });
    const [v0, ...g0] = run(false), [v1, ...g1] = run(true);
    assert.ok(maxRelErr(v1, v0) < 1e-5, `${act} value`);
    g0.forEach((g, i) =>
      assert.ok(maxRelErr(g1[i], g) < 1e-4, `${act} grad ${i}: ${maxRelErr(g1[i], g)}`)
    );
  }
  await initBackend("wasm");
});

Deno.test("BatchNorm+activation wasm kernel: the tensor ops' bits (values, batch statistics, gradients)", async () => {
  await initBackend("wasm");
  const r = rng(31);
  let values = 0;
  for (const [t, shape] of [[4, 6, 6, 8], [2, 5, 5, 3], [8, 3, 3, 16], [3, 1, 1, 5]].entries()) {
    for (const act of ["none", "relu", "relu6"] as const) {
      const n = shape.reduce((a, b) => a * b, 1), c = shape[3];
      // values around 0 and 6 (the activations' kinks), some exact zeros and repeats
      const x = tf.tensor(
        Float32Array.from({ length: n }, (_, i) => i % 11 === 0 ? 0 : r.normal() * 3 + (t % 2) * 2),
        shape,
      );
      const g = tf.tensor1d(Float32Array.from({ length: c }, () => r.normal() * 2));
      const b = tf.tensor1d(Float32Array.from({ length: c }, () => r.normal() * 3));
      const dz = tf.tensor(Float32Array.from({ length: n }, () => r.normal()), shape);
      const run = (reference: boolean) => {
        const stats: tf.Tensor[] = [];
        const f = (xv: tf.Tensor, gv: tf.Tensor, bv: tf.Tensor) =>
          tf.sum(tf.mul(
            batchNormActTrain(xv, gv, bv, act, 1e-3, (m, v) => stats.push(m, v), reference),
            dz,
          ));
        const z = batchNormActTrain(x, g, b, act, 1e-3, undefined, reference);
        const grads = tf.grads(f)([x, g, b]);
        const out = [z, ...grads, ...stats].map((v) =>
          new Uint32Array(v.dataSync().slice().buffer)
        );
        tf.dispose([z, ...grads, ...stats]);
        return out;
      };
      const fused = run(false), ref = run(true);
      ref.forEach((want, i) => {
        const bad = [...want.keys()].filter((j) => want[j] !== fused[i][j]).length;
        assert(
          bad === 0,
          `shape ${shape} ${act}, output ${i}: ${bad} of ${want.length} values differ`,
        );
        values += want.length;
      });
      tf.dispose([x, g, b, dz]);
    }
  }
  assert(values > 10000, `${values} values compared`);
});

// Whole-model gradients, determinism, data parallelism and memory of the training loop.
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend/mod.ts";
import { createModel, getWeights, mobilenetV1, setWeights, smallCnn } from "../lib/models/mod.ts";
import { fakeQuantOp, type QuantSpec } from "../lib/quant/mod.ts";
import { reestimateBatchNorm } from "../lib/train/bn_reestimate.ts";
import { combineResults, computeGrads } from "../lib/train/step.ts";
import { train, type TrainConfig } from "../lib/train/loop.ts";
import { makeBatch, splitBatch } from "../lib/data/dataset.ts";
import { consoleProgress } from "../lib/util/progress.ts";
import { rng } from "../lib/util/random.ts";
import { assert, maxRelErr } from "./assert.ts";
import { tinyArch, toyDataset, trainToy } from "./helpers.ts";

const quiet = consoleProgress({ quiet: true });

function randomBatch(shape: number[], n: number, classes: number, seed: number) {
  const r = rng(seed);
  const per = shape.reduce((a, b) => a * b, 1);
  return {
    x: Float32Array.from({ length: n * per }, () => r.uniform(-1, 1)),
    y: Int32Array.from({ length: n }, () => r.int(0, classes - 1)),
    n,
  };
}

for (
  const [label, arch, n] of [
    ["MobileNetV1-0.25 96x96", mobilenetV1(), 2],
    ["small CNN 28x28", smallCnn(), 4],
  ] as const
) {
  Deno.test(`whole-model gradients on wasm match cpu: ${label}`, async () => {
    const batch = randomBatch(arch.inputShape, n, arch.classes, 3);
    const run = async (be: "cpu" | "wasm") => {
      await initBackend(be);
      const m = createModel(arch, 1);
      const r = computeGrads(m, {}, batch, {});
      for (const v of m.params.values()) v.dispose();
      return r;
    };
    const ref = await run("cpu");
    const got = await run("wasm");
    assert.ok(Math.abs(ref.loss - got.loss) < 1e-5, `loss ${got.loss} vs ${ref.loss}`);
    let worst = 0;
    ref.grads.forEach((g, i) => (worst = Math.max(worst, maxRelErr(got.grads[i], g))));
    // Each kernel is checked at 1e-4 in backend_grad_test.ts. Through a whole
    // network the wasm float32 reductions (XNNPACK pooling) and the cpu backend's
    // float64 JS accumulators differ by ~3e-5 spread evenly over all layers, the
    // final dense layer included: rounding in the forward pass, not a wrong kernel.
    assert.ok(worst <= 3e-4, `max relative gradient error ${worst}`);
  });
}

Deno.test("shards combined equal the whole batch (no BatchNorm)", async () => {
  await initBackend("wasm");
  const m = createModel(tinyArch(12, false), 5);
  const b = randomBatch([12, 12, 1], 6, 2, 9);
  const whole = computeGrads(m, {}, b, {});
  const parts = splitBatch(b, 2).map((s) => computeGrads(m, {}, s, {}));
  const comb = combineResults(parts);
  assert.ok(Math.abs(comb.loss - whole.loss) < 1e-6);
  whole.grads.forEach((g, i) => assert.ok(maxRelErr(comb.grads[i], g) < 1e-5));
});

const cfg = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  epochs: 1,
  batchSize: 8,
  optimizer: { type: "adam" },
  schedule: { type: "cosine", lr: 3e-3, warmupSteps: 2 },
  augment: { flip: true, shift: 0.1 },
  seed: 11,
  ...over,
});

async function fiveSteps(threads: number) {
  const m = createModel(tinyArch(), 4);
  await train({ model: m, train: toyDataset(40, 1), config: cfg({ threads }), progress: quiet });
  const w = getWeights(m);
  for (const v of m.params.values()) v.dispose();
  return w;
}

Deno.test("two 5-step runs from one seed give bit-identical weights (1 and 2 threads)", async () => {
  await initBackend("wasm");
  for (const threads of [1, 2]) {
    const a = await fiveSteps(threads), b = await fiveSteps(threads);
    const init = getWeights(createModel(tinyArch(), 4));
    for (const k of Object.keys(a)) {
      assert.deepStrictEqual(a[k], b[k], `${k} differs between runs (threads=${threads})`);
    }
    assert.notDeepStrictEqual(a["c1/kernel"], init["c1/kernel"], "weights did not move");
  }
});

Deno.test("fewer training images than one batch: an error naming train.batchSize", async () => {
  await initBackend("wasm");
  const m = createModel(tinyArch(), 4);
  await assert.rejects(
    () => train({ model: m, train: toyDataset(7, 1), config: cfg(), progress: quiet }),
    /^Error: train: 7 training images are fewer than one batch \(train\.batchSize 8\)$/,
  );
  for (const v of m.params.values()) v.dispose();
});

Deno.test("no tensor leak over 50 training steps; loss decreases on a learnable task", async () => {
  await initBackend("wasm");
  const m = createModel(tinyArch(), 2);
  const counts: number[] = [];
  const before = tf.memory().numTensors;
  const res = await train({
    model: m,
    train: toyDataset(200, 3),
    val: toyDataset(64, 4),
    config: cfg({ epochs: 2, batchSize: 8, schedule: { type: "constant", lr: 3e-3 } }),
    stepVars: (step, _epoch, total) => {
      if (step < total) counts.push(tf.memory().numTensors); // step == total: evaluation
      return {};
    },
    progress: quiet,
  });
  assert.equal(counts.length, 50);
  assert.equal(Math.max(...counts), Math.min(...counts), "tensor count grew during training");
  assert.equal(tf.memory().numTensors, before);
  assert.ok(res.history[1].trainLoss < res.history[0].trainLoss);
  assert.ok(res.history[1].val!.accuracy > 0.7, `val acc ${res.history[1].val!.accuracy}`);
});

Deno.test("extra loss terms and gradient transforms act on training", async () => {
  await initBackend("wasm");
  const ds = toyDataset(16, 1);
  const m = createModel(tinyArch(), 4);
  const k0 = getWeights(m)["c1/kernel"];
  // an L2 term on c1's kernel with a huge weight drives that kernel towards 0;
  // freezing d1 via a gradient transform keeps its kernel exactly where it was
  const d0 = getWeights(m)["d1/kernel"];
  const res = await train({
    model: m,
    train: ds,
    config: cfg({
      epochs: 3,
      optimizer: { type: "sgd", momentum: 0 },
      schedule: { type: "constant", lr: 0.05 },
    }),
    setup: {
      extraLoss: {
        l2: ({ model, vars }) =>
          tf.mul(vars.lambda, tf.sum(tf.square(model.params.get("c1/kernel")!))),
      },
    },
    stepVars: () => ({ lambda: 5 }),
    gradTransforms: [(name, g) => name === "d1/kernel" && g.fill(0)],
    progress: quiet,
  });
  const w = getWeights(m);
  const norm = (a: Float32Array) => Math.hypot(...a);
  assert.ok(norm(w["c1/kernel"]) < 0.2 * norm(k0), `${norm(w["c1/kernel"])} vs ${norm(k0)}`);
  assert.deepStrictEqual(w["d1/kernel"], d0);
  assert.ok(res.history[0].terms.l2 > res.history[2].terms.l2);
  assert.ok("ce" in res.history[0].terms);
});

Deno.test("augmentation is seeded per sample and changes images", () => {
  const ds = toyDataset(4, 1);
  const a = makeBatch(ds, [0, 1, 2, 3], {
    augment: { flip: true, shift: 0.2, brightness: 0.1 },
    seed: 1,
    epoch: 0,
  });
  const b = makeBatch(ds, [3, 2, 1, 0], {
    augment: { flip: true, shift: 0.2, brightness: 0.1 },
    seed: 1,
    epoch: 0,
  });
  const c = makeBatch(ds, [0, 1, 2, 3], {
    augment: { flip: true, shift: 0.2, brightness: 0.1 },
    seed: 2,
    epoch: 0,
  });
  const plain = makeBatch(ds, [0, 1, 2, 3]);
  const per = 144;
  // sample 0 augmented identically whatever its position in the batch
  assert.deepStrictEqual(a.x.subarray(0, per), b.x.subarray(3 * per, 4 * per));
  assert.notDeepStrictEqual(a.x, c.x);
  assert.notDeepStrictEqual(a.x, plain.x);
});

Deno.test("reestimateBatchNorm: moving statistics become those of the whole set under the fake-quantized kernels (first layer over unequal batches, second layer by hand)", async () => {
  await initBackend("wasm");
  const { m } = await trainToy(64, 8, 1);
  const spec: QuantSpec = {
    bits: 2,
    symmetric: true,
    perChannel: true,
    narrowRange: true,
    scale: "mse",
  };
  const kt = (_l: string, k: tf.Tensor) => fakeQuantOp(k, spec);
  const data = toyDataset(50, 11);
  const keep = getWeights(m);
  // stale statistics, as after fine-tuning under flipping weights
  setWeights(m, {
    ...keep,
    ...Object.fromEntries(
      ["c1", "d1", "p1"].map((l) => [`${l}/mean`, keep[`${l}/mean`].map((v) => v + 3)]),
    ),
  });
  const r = reestimateBatchNorm(m, data, { batchSize: 16, kernelTransform: kt }); // batches 16, 16, 16, 2
  assert.equal(r.images, 50);
  assert.deepStrictEqual(r.changes.map((c) => c.layer), ["c1", "d1", "p1"]);
  assert.ok(r.changes.every((c) => c.meanChange > 1), JSON.stringify(r.changes));

  // by hand: the first layer's pre-BatchNorm output over all 50 images, unbiased variance
  const p = m.params;
  const all = makeBatch(data, Uint32Array.from({ length: 50 }, (_, i) => i));
  const [want1, want2] = tf.tidy(() => {
    const x = tf.tensor4d(all.x, [50, 12, 12, 1]);
    const y1 = tf.conv2d(x, kt("c1", p.get("c1/kernel")!) as tf.Tensor4D, 2, "same");
    const m1 = tf.moments(y1, [0, 1, 2]);
    const n1 = 50 * 6 * 6;
    // the second layer's input in training mode with one batch of all images: batch-normalized, ReLU6
    const z1 = tf.clipByValue(
      tf.add(
        tf.mul(tf.div(tf.sub(y1, m1.mean), tf.sqrt(tf.add(m1.variance, 1e-3))), p.get("c1/gamma")!),
        p.get("c1/beta")!,
      ),
      0,
      6,
    );
    const y2 = tf.depthwiseConv2d(
      z1 as tf.Tensor4D,
      kt("d1", p.get("d1/kernel")!) as tf.Tensor4D,
      1,
      "same",
    );
    const m2 = tf.moments(y2, [0, 1, 2]);
    return [
      [m1.mean.dataSync(), tf.mul(m1.variance, n1 / (n1 - 1)).dataSync()],
      [m2.mean.dataSync(), tf.mul(m2.variance, n1 / (n1 - 1)).dataSync()],
    ];
  });
  assert.ok(maxRelErr(p.get("c1/mean")!.dataSync(), want1[0]) < 1e-4);
  assert.ok(maxRelErr(p.get("c1/variance")!.dataSync(), want1[1]) < 1e-4);
  // deeper layers see batch-normalized inputs, so their statistics depend on the batches: one batch of all
  reestimateBatchNorm(m, data, { batchSize: 50, kernelTransform: kt });
  assert.ok(maxRelErr(p.get("c1/mean")!.dataSync(), want1[0]) < 1e-4);
  assert.ok(maxRelErr(p.get("d1/mean")!.dataSync(), want2[0]) < 1e-4);
  assert.ok(maxRelErr(p.get("d1/variance")!.dataSync(), want2[1]) < 1e-4);
  // trainable parameters untouched
  const after = getWeights(m);
  for (const k of Object.keys(keep).filter((k) => !/\/(mean|variance)$/.test(k))) {
    assert.deepStrictEqual(after[k], keep[k], k);
  }
  assert.throws(
    () => reestimateBatchNorm(m, toyDataset(0, 1)),
    /BatchNorm re-estimation: dataset toy has no images/,
  );
});

Deno.test('train.gradKernels "qgt" reaches the worker: a 2-thread step equals its two shards computed here', async () => {
  const { Trainer } = await import("../lib/train/loop.ts");
  const { setGradKernels } = await import("../lib/backend/mod.ts");
  await initBackend("wasm");
  const arch = mobilenetV1({ alpha: 0.25, inputShape: [32, 32, 1] });
  const b = randomBatch([32, 32, 1], 4, 2, 21);
  const stepGrads = async (threads: number, gradKernels: "tfjs" | "qgt") => {
    const m = createModel(arch, 3);
    const t = await Trainer.create({ model: m, optimizer: { type: "sgd" }, threads, gradKernels });
    const r = await t.step(b, 0, {}); // lr 0: only the gradients matter
    await t.close();
    for (const v of m.params.values()) v.dispose();
    return r;
  };
  const m = createModel(arch, 3);
  try {
    for (const mode of ["qgt", "tfjs"] as const) {
      const two = await stepGrads(2, mode);
      setGradKernels(mode);
      const here = combineResults(splitBatch(b, 2).map((s) => computeGrads(m, {}, s, {})));
      here.grads.forEach((g, i) =>
        assert.deepStrictEqual(two.grads[i], g, `${mode}: gradient ${i} differs`)
      );
    }
    // the two kernel sets sum in different orders: some gradient bits differ
    const [q, f] = [await stepGrads(1, "qgt"), await stepGrads(1, "tfjs")];
    assert.ok(q.grads.some((g, i) => g.some((v, j) => v !== f.grads[i][j])), "no bit differs");
    q.grads.forEach((g, i) => assert.ok(maxRelErr(g, f.grads[i]) < 1e-3, `gradient ${i}`));
  } finally {
    setGradKernels("tfjs");
    for (const v of m.params.values()) v.dispose();
  }
});

Deno.test("training gives the event loop a turn every step (so Ctrl-C acts within a step)", async () => {
  await initBackend("wasm");
  const m = createModel(tinyArch(), 2);
  // a timer set during step s fires before step s + 1 starts: as a signal listener would
  const fired: number[] = [];
  let timerOf = -1;
  await train({
    model: m,
    train: toyDataset(64, 3),
    config: cfg({ epochs: 1, batchSize: 8 }),
    stepVars: (step, _epoch, total) => {
      if (step >= total) return {};
      if (timerOf >= 0) fired.push(timerOf);
      timerOf = -1;
      setTimeout(() => (timerOf = step), 0);
      return {};
    },
    progress: quiet,
  });
  assert.deepStrictEqual(fired, [0, 1, 2, 3, 4, 5, 6]);
  for (const v of m.params.values()) v.dispose();
});

// QGT regularizers, the quantized step setup, PTQ, bottleneck analysis and the summary.
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend/mod.ts";
import { createModel, foldBatchNorm, getWeights, setWeights, smallCnn } from "../lib/models/mod.ts";
import {
  fakeQuantOp,
  layerBytes,
  quantizeToInt,
  type QuantSpec,
  resolveLayerSpecs,
} from "../lib/quant/mod.ts";
import {
  assignMixedPrecision,
  binRegularizer,
  createStepSetup,
  freezeStep,
  gridRegularizer,
  lambdaAt,
  layerErrors,
  layerSensitivity,
  OscillationTracker,
  quantizeModel,
  regularizationLoss,
  regularizer,
  sinRegularizer,
  snapWeights,
  TRAINING_SETUP_MODULE,
  weightLayerSizes,
} from "../lib/methods/mod.ts";
import { formatSummary, modelSummary } from "../lib/quant/summary.ts";
import { train } from "../lib/train/loop.ts";
import { evaluate } from "../lib/eval/evaluate.ts";
import { consoleProgress } from "../lib/util/progress.ts";
import { rng } from "../lib/util/random.ts";
import { assert, assertAlmostEquals } from "./assert.ts";
import { tinyArch, toyDataset, trainToy } from "./helpers.ts";

await initBackend("wasm");
const quiet = consoleProgress({ quiet: true });

const specs: [string, QuantSpec][] = [
  ["sym 2-bit narrow", {
    bits: 2,
    symmetric: true,
    perChannel: false,
    narrowRange: true,
    steps: 0.5,
  }],
  ["sym 4-bit", { bits: 4, symmetric: true, perChannel: false, steps: 0.1 }],
  ["asym 3-bit", { bits: 3, symmetric: false, perChannel: false, scale: "maxabs" }],
  ["per-channel 2-bit", { bits: 2, symmetric: true, perChannel: true, axis: 1, scale: "maxabs" }],
  ["binary", { bits: 1, symmetric: true, perChannel: false }],
];

// explicit scales: the regularizers' documented gradient holds the grid fixed
const fdSpecs: [string, QuantSpec, number[]][] = [
  ["sym 2-bit narrow", {
    bits: 2,
    symmetric: true,
    perChannel: false,
    narrowRange: true,
    steps: 0.5,
  }, [0.5]],
  ["sym 4-bit", { bits: 4, symmetric: true, perChannel: false, steps: 0.1 }, [0.1]],
  [
    "per-channel 3-bit",
    { bits: 3, symmetric: true, perChannel: true, axis: 1, steps: [0.3, 0.2] },
    [0.3, 0.2],
  ],
  ["binary", { bits: 1, symmetric: true, perChannel: false, steps: 0.4 }, [0.4]],
];

for (const kind of ["grid", "sin", "bin"] as const) {
  Deno.test(`${kind} regularizer: zero on grid points, positive between`, () => {
    const reg = regularizer(kind);
    const r = rng(4);
    for (const [label, spec] of specs) {
      // grid points: values snapped with the same spec (explicit, max-abs and binary
      // scales are unchanged by snapping)
      const raw = tf.tensor2d(Float32Array.from({ length: 12 }, () => r.uniform(-1, 1)), [6, 2]);
      const onGrid = fakeQuantOp(raw, spec);
      assertAlmostEquals(reg(onGrid, spec).dataSync()[0], 0, 1e-10, `${kind} ${label} on grid`);
      assert.ok(reg(raw, spec).dataSync()[0] > 1e-6, `${kind} ${label} between grid points`);
      tf.dispose([raw, onGrid]);
    }
  });

  Deno.test(`${kind} regularizer: gradient matches central finite differences`, async () => {
    await initBackend("cpu"); // float64 sums for clean differences
    const reg = regularizer(kind);
    const r = rng(5);
    const h = 1e-3;
    let checked = 0;
    for (const [label, spec, scales] of fdSpecs) {
      const x0 = Float32Array.from({ length: 12 }, () => r.uniform(-1.2, 1.2));
      const g = tf.tidy(() =>
        tf.grad((w: tf.Tensor) => reg(w, spec))(tf.tensor2d(x0, [6, 2])).dataSync()
      );
      const f = (x: Float32Array) => tf.tidy(() => reg(tf.tensor2d(x, [6, 2]), spec).dataSync()[0]);
      for (let i = 0; i < x0.length; i++) {
        const s = scales[i % scales.length];
        // grid and bin are piecewise: skip points within h of a level boundary
        const u = spec.bits === 1 ? (x0[i] / s + 1) / 2 : x0[i] / s;
        const boundary = Math.abs(Math.abs(u - Math.floor(u)) - 0.5) < (2 * h) / s;
        if (kind !== "sin" && boundary) continue;
        const a = x0.slice(), b = x0.slice();
        a[i] += h;
        b[i] -= h;
        assertAlmostEquals(g[i], (f(a) - f(b)) / (2 * h), 2e-3, `${kind} ${label} dR/dw[${i}]`);
        checked++;
      }
    }
    assert.ok(checked >= 36, `only ${checked} points checked`);
    await initBackend("wasm");
  });
}

/** 2-bit narrow-range levels {-1, 0, 1} with a unit step. */
const TERNARY: QuantSpec = {
  bits: 2,
  symmetric: true,
  perChannel: false,
  narrowRange: true,
  steps: 1,
};

Deno.test("regularizers against hand-worked values", () => {
  const spec = TERNARY;
  // u = [0.25, 1, -0.5]: distances 0.25, 0, 0.5 -> mean of squares (0.0625 + 0 + 0.25)/3
  assertAlmostEquals(
    gridRegularizer(tf.tensor1d([0.25, 1, -0.5]), spec).dataSync()[0],
    0.3125 / 3,
    1e-7,
  );
  // sin^2(pi/4)/pi^2 = 0.5/pi^2 for 0.25; outside part for 1.5: (1.5 - 1)^2
  const s = sinRegularizer(tf.tensor1d([0.25, 1.5]), spec).dataSync()[0];
  assertAlmostEquals(s, (0.5 / Math.PI ** 2 + (1 / Math.PI ** 2 + 0.25)) / 2, 1e-6);
  // bins: level 1 {0.8, 1.2}: mean 1, var 0.04; level 0 {0.1}: 0.01 -> (0.04 + 0.01) / 2
  assertAlmostEquals(binRegularizer(tf.tensor1d([0.8, 1.2, 0.1]), spec).dataSync()[0], 0.025, 1e-6);
});

Deno.test("regularization loss: mean over weights or over layers, per-layer multipliers", () => {
  const spec = TERNARY;
  // layer a: u = [0.5, 0] -> R = 0.125 (2 weights); layer b: four 0.25 -> R = 0.0625 (4 weights)
  const params = new Map<string, tf.Tensor>([
    ["a/kernel", tf.tensor1d([0.5, 0])],
    ["b/kernel", tf.tensor1d([0.25, 0.25, 0.25, 0.25])],
  ]);
  const model = { params } as unknown as Parameters<typeof regularizationLoss>[0];
  const specs = { a: spec, b: spec };
  const v = (o: Partial<Parameters<typeof regularizationLoss>[1]>) =>
    regularizationLoss(model, { specs, regularizer: "grid", ...o }).total.dataSync()[0];
  assertAlmostEquals(v({}), (2 * 0.125 + 4 * 0.0625) / 6, 1e-7); // default: every weight counts once
  assertAlmostEquals(v({ reduction: "layers" }), (0.125 + 0.0625) / 2, 1e-7);
  assertAlmostEquals(v({ layerLambda: { a: 2 } }), (2 * 2 * 0.125 + 4 * 0.0625) / 6, 1e-7);
  assertAlmostEquals(
    regularizationLoss(model, { specs, regularizer: "grid" }).perLayer.a.dataSync()[0],
    0.125,
    1e-7,
  );
});

Deno.test("lambda schedules", () => {
  assert.equal(lambdaAt({ type: "constant", lambda: 0.3 }, 0.7), 0.3);
  assert.equal(lambdaAt({ type: "linear", to: 1, start: 0.5 }, 0.25), 0);
  assertAlmostEquals(
    lambdaAt({ type: "linear", from: 1, to: 3, start: 0.5, end: 1 }, 0.75),
    2,
    1e-12,
  );
  assertAlmostEquals(lambdaAt({ type: "exp", from: 1e-3, to: 1e-1 }, 0.5), 1e-2, 1e-12);
  assert.equal(lambdaAt({ type: "exp", from: 1e-3, to: 1e-1 }, 2), 1e-1);
});

Deno.test("QGT training pulls weights onto the grid (setup built in workers too)", async () => {
  const arch = tinyArch();
  const layerSpecs = resolveLayerSpecs(arch, { bits: 2 }, { fc: { bits: "float" } });
  const before = createModel(arch, 3);
  const m = createModel(arch, 3);
  const e0 = layerErrors(before, layerSpecs);
  await train({
    model: m,
    train: toyDataset(64, 2),
    config: {
      epochs: 4,
      batchSize: 16,
      optimizer: { type: "adam" },
      schedule: { type: "constant", lr: 3e-3 },
      seed: 1,
      threads: 2,
    },
    setup: { module: TRAINING_SETUP_MODULE, options: { specs: layerSpecs, regularizer: "grid" } },
    stepVars: () => ({ lambda: 20 }),
    progress: quiet,
  });
  const e1 = layerErrors(m, layerSpecs);
  e0.forEach((r, i) =>
    assert.ok(
      e1[i].gridError < 0.5 * r.gridError,
      `${r.layer}: ${r.gridError} -> ${e1[i].gridError}`,
    )
  );
  assert.equal(e0.length, 3); // fc left in float
});

Deno.test("fake-quant setup: training loss uses quantized weights", () => {
  const m = createModel(tinyArch(), 1);
  const layerSpecs = resolveLayerSpecs(m.arch, { bits: 1, perChannel: false });
  const setup = createStepSetup(m, { specs: layerSpecs, fakeQuant: true });
  const k = m.params.get("c1/kernel")!;
  const q = setup.kernelTransform!("c1", k, {}).dataSync();
  const mean = (k.dataSync() as Float32Array).reduce((a, v) => a + Math.abs(v), 0) / k.size;
  assert.ok(q.every((v) => Math.abs(Math.abs(v) - mean) < 1e-6));
});

Deno.test("PTQ folds BatchNorm, snaps the folded kernels, and keeps accuracy at 8 bits", async () => {
  const { m, ds, val, arch } = await trainToy(200, 100);
  const floatAcc = evaluate(m, val).accuracy;
  const q = quantizeModel(foldBatchNorm(m), resolveLayerSpecs(arch, { bits: 8 }), {
    calibration: ds,
  });
  assert.ok(!q.model.params.has("c1/gamma"));
  assert.deepStrictEqual(Object.keys(q.weights), ["c1", "d1", "p1", "fc"]);
  const qAcc = evaluate(q.model, val).accuracy;
  assert.ok(Math.abs(qAcc - floatAcc) <= 0.02, `${floatAcc} -> ${qAcc}`);
  assert.deepStrictEqual(q.activationRanges.c1, [0, 6]); // ReLU6: fixed range
  assert.ok(q.activationRanges.p1[1] > 0); // ReLU: calibrated
  // codes are what the model now holds
  const k = q.model.params.get("p1/kernel")!.dataSync();
  const w = q.weights.p1;
  for (let i = 0; i < k.length; i++) {
    assertAlmostEquals(k[i], w.codes[i] * w.scales[i % w.scales.length], 1e-7);
  }
});

Deno.test("snapping keeps the training codes; only the stored scales become float16", () => {
  const m = createModel(tinyArch(), 1);
  const k = m.params.get("fc/kernel")!;
  // scale 0.1 is 0.0999755859375 in float16: 0.04999 is below half a step of the
  // float32 grid (code 0, what fake quantization trained with) but above half a
  // step of the float16 one (code 1 if the codes were recomputed)
  const vals = new Float32Array(k.size);
  vals[0] = 0.04999;
  vals[1] = -0.2;
  vals[2] = 0.1;
  k.assign(tf.tensor(vals, k.shape));
  const spec: QuantSpec = { bits: 2, symmetric: true, perChannel: false, steps: 0.1 };
  const fq = fakeQuantOp(k, spec).dataSync();
  assert.deepStrictEqual([fq[0], fq[1], fq[2]].map((v) => Math.round(v * 10)), [0, -2, 1]);
  const q = snapWeights(m, { fc: spec }).fc;
  assert.deepStrictEqual([...q.codes.slice(0, 3)], [0, -2, 1]);
  assert.strictEqual(q.scales[0], 0.0999755859375);
  const snapped = k.dataSync();
  assert.deepStrictEqual([...snapped.slice(0, 3)], [0, -0.199951171875, 0.0999755859375]);
});

Deno.test("sensitivity and mixed precision on a toy model respect the budget", async () => {
  const { m, val, arch } = await trainToy(128, 64, 2);
  const layerSpecs = resolveLayerSpecs(arch, { bits: 8 });
  const sens = layerSensitivity(
    layerSpecs,
    [1, 2, 4, 8],
    (kt) => evaluate(m, val, { kernelTransform: kt }),
  );
  assert.equal(sens.length, 4 * 4);
  const sizes = weightLayerSizes(arch);
  const base = layerSpecs.c1;
  const all8 = sizes.reduce(
    (a, l) => a + layerBytes(l.params, l.channels, { ...base, bits: 8 }).total,
    0,
  );
  const all1 = sizes.reduce(
    (a, l) => a + layerBytes(l.params, l.channels, { ...base, bits: 1 }).total,
    0,
  );
  for (const budget of [all8, Math.round((all8 + all1) / 2), all1 + 10]) {
    const mp = assignMixedPrecision(
      sizes,
      sens.map((s) => ({ layer: s.layer, bits: s.bits, score: s.lossIncrease })),
      budget,
      base,
    );
    assert.ok(mp.withinBudget && mp.bytes <= budget, `budget ${budget}: ${mp.bytes}`);
    const recount = sizes.reduce(
      (a, l) => a + layerBytes(l.params, l.channels, { ...base, bits: mp.bits[l.name] }).total,
      0,
    );
    assert.equal(recount, mp.bytes);
  }
  const impossible = assignMixedPrecision(
    sizes,
    sens.map((s) => ({ layer: s.layer, bits: s.bits, score: 0 })),
    all1 - 1,
    base,
  );
  assert.ok(!impossible.withinBudget);
  assert.ok(Object.values(impossible.bits).every((b) => b === 1));
});

Deno.test("model summary: per-layer bytes and the reduction factor", () => {
  const arch = smallCnn();
  const s = modelSummary(arch, resolveLayerSpecs(arch, { bits: 2 }));
  // conv1: 288 weights -> 72 bytes of codes, 32 float16 scales, 32 int32 biases
  assert.deepStrictEqual(s.rows[0], {
    layer: "conv1",
    params: 288,
    bits: 2,
    bytes: 72 + 64 + 128,
    float32Bytes: 288 * 4 + 128,
  });
  assert.equal(s.float32Bytes, (65440 + 32 + 32 + 64 + 64 + 10) * 4);
  assertAlmostEquals(s.reduction, s.float32Bytes / s.quantizedBytes, 1e-12);
  assert.ok(formatSummary(s).includes("reduction vs float32"));
});

Deno.test("decoupled grid pull: lr * lambda = 1 puts every kernel on its grid in one step; lambda 0 is plain training", async () => {
  const arch = tinyArch();
  const specs = resolveLayerSpecs(arch, { bits: 2, scale: "maxabs", narrowRange: true }, {
    fc: { bits: "float" },
  });
  const config = {
    epochs: 1,
    batchSize: 16,
    optimizer: { type: "adam" as const },
    schedule: { type: "constant" as const, lr: 1e-3 },
    seed: 1,
  };
  const run = async (lambda: number | null, threads = 1) => {
    const m = createModel(arch, 3);
    await train({
      model: m,
      train: toyDataset(32, 2),
      config: { ...config, threads },
      setup: lambda === null ? undefined : {
        module: TRAINING_SETUP_MODULE,
        options: { specs, regularizer: "grid", decoupled: true },
      },
      stepVars: () => ({ lambda: lambda ?? 0 }),
      progress: quiet,
    });
    return m;
  };
  const plain = await run(null), zero = await run(0), snapped = await run(1000, 2);
  for (const [name, v] of plain.params) {
    assert.deepStrictEqual(zero.params.get(name)!.dataSync(), v.dataSync(), name);
  }
  // on the grid: per channel (the spec's axis), w / (max|w| / qmax) is an integer
  for (const layer of Object.keys(specs)) {
    const k = snapped.params.get(`${layer}/kernel`)!;
    const w = k.dataSync(), spec = specs[layer];
    const axis = spec.axis ?? k.shape.length - 1;
    const inner = k.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const channel = (i: number) => spec.perChannel ? Math.floor(i / inner) % k.shape[axis] : 0;
    const mx = new Map<number, number>();
    w.forEach((x, i) => mx.set(channel(i), Math.max(mx.get(channel(i)) ?? 0, Math.abs(x))));
    const qmax = 2 ** (spec.bits - 1) - 1;
    let off = 0, changed = 0;
    w.forEach((x, i) => {
      const u = (x / mx.get(channel(i))!) * qmax;
      off = Math.max(off, Math.abs(u - Math.round(u)));
    });
    const p = plain.params.get(`${layer}/kernel`)!.dataSync();
    for (let i = 0; i < w.length; i++) if (w[i] !== p[i]) changed++;
    assert.ok(off < 1e-5, `${layer}: ${off} steps off the grid`);
    assert.ok(changed > w.length / 2, `${layer}: only ${changed} weights moved`);
  }
});

Deno.test("oscillation tracker against a hand-worked sequence (Nagel et al. 2022, Algorithm 1)", () => {
  // m = 0.25, threshold 0.3. Weight 0 moves 0,1,1,2,1,2,0; weight 1 stays at 0; weight 2 0,-1,-2,-2,-1,-1,-2.
  const t = new OscillationTracker(3, { momentum: 0.25, threshold: 0.3 });
  const seq = [[0, 0, 0], [1, 0, -1], [1, 0, -2], [2, 0, -2], [1, 0, -1], [2, 0, -1], [0, 0, -2]];
  const stats = seq.map((x) => t.update(new Float32Array(x)));
  // weight 0: the first change (t1) and a change in the same direction (t3) are no oscillation;
  // t4 (down after up): f = 0.25; t5 (up after down): f = 0.25 + 0.75 * 0.25 = 0.4375 > 0.3 -> frozen
  // at round(a_5), a = 0, .25, .4375, .828125, .87109375, 1.1533203125 -> level 1; t6's 0 is ignored.
  // weight 2: t4 up after downs (f = 0.25), t5 no change (f = 0.1875), t6 down after up (f = 0.25 + 0.75 * 0.1875 = 0.390625)
  // -> frozen at round(a_6): a = 0, -.25, -.6875, -1.015625, -1.01171875, -1.0087890625, -1.256591796875 -> -1
  assert.deepStrictEqual(stats.map((s) => s.oscillated), [0, 0, 0, 0, 2, 1, 1]);
  assert.deepStrictEqual(stats.map((s) => s.newlyFrozen), [0, 0, 0, 0, 0, 1, 1]);
  assert.deepStrictEqual(stats.map((s) => s.frozen), [0, 0, 0, 0, 0, 1, 2]);
  assertAlmostEquals(t.frequencyOf(0), 0.4375, 1e-7);
  assertAlmostEquals(t.frequencyOf(2), 0.390625, 1e-7);
  assert.equal(t.frequencyOf(1), 0);
  assert.deepStrictEqual([t.isFrozen(0), t.isFrozen(1), t.isFrozen(2)], [true, false, true]);
  assert.equal(t.frozenLevel(0), 1);
  assert.equal(t.frozenLevel(2), -1);
  // state round trip: a restored tracker continues exactly as the original
  const u = new OscillationTracker(3, { momentum: 0.25, threshold: 0.3 });
  u.setState(t.state());
  const next = new Float32Array([3, 1, 0]);
  assert.deepStrictEqual(u.update(next), t.update(next));
  assert.deepStrictEqual(u.state(), t.state());
  assert.throws(() => t.update(new Float32Array(2)), /freeze: 2 levels for a tracker of 3 weights/);
  assert.throws(() => new OscillationTracker(1, { momentum: 0, threshold: 0.1 }), /momentum/);
  assert.throws(() => new OscillationTracker(1, { momentum: 0.1, threshold: 1 }), /threshold/);
});

Deno.test("freezeStep: weights frozen at their current levels land where fakeQuantOp puts them (per-channel MSE, 2-3 bits, symmetric and not)", () => {
  const r = rng(5);
  const shape = [3, 3, 4, 6];
  const w0 = Float32Array.from({ length: 3 * 3 * 4 * 6 }, () => r.normal() * 0.2 + 0.05);
  for (const bits of [2, 3]) {
    for (const symmetric of [true, false]) {
      const spec: QuantSpec = { bits, symmetric, perChannel: true, axis: 3, scale: "mse" };
      const codes = quantizeToInt(tf.tensor(w0, shape), spec).codes;
      const t = new OscillationTracker(w0.length, { momentum: 0.01, threshold: 0.02 });
      const n = w0.length;
      // every weight frozen at the level it has now
      t.setState([
        Float32Array.from(codes),
        new Float32Array(n),
        new Float32Array(n),
        Float32Array.from(codes),
        new Float32Array(n).fill(1),
      ]);
      const w = w0.slice();
      assert.equal(freezeStep(w, shape, spec, t).frozen, n);
      const q = tf.tidy(() => fakeQuantOp(tf.tensor(w0, shape), spec).dataSync());
      for (let i = 0; i < n; i++) assertAlmostEquals(w[i], q[i], 1e-6, `${bits} ${symmetric} ${i}`);
    }
  }
  assert.throws(
    () =>
      freezeStep(
        new Float32Array(1),
        [1],
        { bits: 1, symmetric: true, perChannel: false },
        new OscillationTracker(1, { momentum: 0.1, threshold: 0.1 }),
      ),
    /freeze: needs a multi-bit quantizer/,
  );
});

Deno.test("weight freezing in training: frozen weights stay on their level; resuming with the saved tracker state reproduces the uninterrupted run", async () => {
  const arch = tinyArch();
  const specs = resolveLayerSpecs(arch, { bits: 2 }, { fc: { bits: "float" } });
  const layers = Object.keys(specs);
  const options = { specs, fakeQuant: true, freeze: { momentum: 0.5, threshold: 0.3 } };
  const data = toyDataset(64, 2);
  const config = {
    epochs: 2,
    batchSize: 16,
    optimizer: { type: "adam" as const },
    schedule: { type: "constant" as const, lr: 3e-2 },
    seed: 1,
  };
  // a setup object, so the trackers can be inspected afterwards
  const m = createModel(arch, 3);
  const setup = createStepSetup(m, options);
  const res = await train({ model: m, train: data, config, setup, progress: quiet });
  const st = setup.state!();
  assert.equal(st.length, 5 * layers.length);
  let nFrozen = 0, nWeights = 0;
  layers.forEach((layer, li) => {
    const [level, , , , frozen] = st.slice(5 * li, 5 * li + 5);
    const k = m.params.get(`${layer}/kernel`)!;
    const levels = quantizeToInt(k, specs[layer]).codes;
    nWeights += k.size;
    for (let i = 0; i < k.size; i++) {
      if (!frozen[i]) continue;
      nFrozen++;
      assert.equal(levels[i], level[i], `${layer}[${i}] left its frozen level`);
    }
  });
  assert.ok(nFrozen > 0 && nFrozen < nWeights, `${nFrozen} of ${nWeights} frozen`);
  // the reported term is the epoch's mean over steps of a fraction that only grows
  const [f1, f2] = res.history.map((h) => h.terms.frozen);
  assert.ok(0 < f1 && f1 <= f2 && f2 < nFrozen / nWeights, `${f1} ${f2} ${nFrozen / nWeights}`);
  assert.ok(res.history[1].terms.oscillating > 0);

  // interrupted after epoch 1 and resumed (threads 2: the setup is built in workers too)
  const ref = { module: TRAINING_SETUP_MODULE, options };
  const a = createModel(arch, 3);
  let saved: Parameters<NonNullable<Parameters<typeof train>[0]["onEpochEnd"]>>[1] | undefined;
  let after1: Record<string, Float32Array> = {};
  await train({
    model: a,
    train: data,
    config: { ...config, threads: 2 },
    setup: ref,
    progress: quiet,
    onEpochEnd: (e, opt) => {
      if (e.epoch === 1) [saved, after1] = [opt, getWeights(a)];
    },
  });
  assert.equal(saved!.setup!.length, 5 * layers.length);
  const resume = async (state: typeof saved) => {
    const b = createModel(arch, 3);
    setWeights(b, after1);
    await train({
      model: b,
      train: data,
      config: { ...config, threads: 2 },
      setup: ref,
      progress: quiet,
      startEpoch: 1,
      optimizerState: state,
    });
    return getWeights(b);
  };
  const resumed = await resume(saved), full = getWeights(a);
  for (const k of Object.keys(full)) assert.deepStrictEqual(resumed[k], full[k], k);
  // without the tracker state, the resumed run diverges (so the state is what made it identical)
  const fresh = await resume({ ...saved!, setup: undefined });
  assert.ok(layers.some((l) => fresh[`${l}/kernel`].some((x, i) => x !== full[`${l}/kernel`][i])));
  // the step-level function: a frozen weight is reset to its level whatever the optimizer did
  const t = new OscillationTracker(1, { momentum: 1, threshold: 0.5 });
  const spec: QuantSpec = { bits: 3, symmetric: true, perChannel: false, steps: 0.25 };
  for (const v of [0.1, 0.2, 0.1]) freezeStep(new Float32Array([v]), [1], spec, t);
  const w = new Float32Array([-0.5]);
  assert.equal(freezeStep(w, [1], spec, t).frozen, 1);
  assert.equal(w[0], 0); // levels 0, 1, 0: oscillated on the third step, frozen at round(0.1 / 0.25) = 0
});

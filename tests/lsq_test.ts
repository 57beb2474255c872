// Learned step sizes (LSQ, Esser et al. 2020) as a training option: the steps are trained by the
// optimizer with LSQ's gradient, kept through BatchNorm folding, checkpointed exactly, and exported
// as the model's scales; settings LSQ cannot serve are refused before anything trains.
import * as tf from "@tensorflow/tfjs";
import { tempDir } from "./tmp.ts";
import { join } from "node:path";
import { initBackend } from "../lib/backend/mod.ts";
import { createModel, forward, type Model, tinyCnn } from "../lib/models/mod.ts";
import type { StepSetup } from "../lib/train/step.ts";
import { lsqQuantize } from "../lib/quant/quantizer.ts";
import { createStepSetup, lsqStepName } from "../lib/methods/training_setup.ts";
import { train } from "../lib/train/loop.ts";
import { RunAborted, runExperiment } from "../lib/experiment/runner.ts";
import { resolveExperiment } from "../lib/experiment/define.ts";
import { initialSteps } from "../lib/experiment/variant.ts";
import { readFinal } from "../lib/run/final.ts";
import { parseQgt } from "../lib/format/model_file.ts";
import { roundFloat16, toFloat16Bits } from "../lib/quant/fp16.ts";
import { consoleProgress } from "../lib/util/progress.ts";
import { assert } from "./assert.ts";
import { stopAfterEpochs, toyDataset } from "./helpers.ts";
import { readCsv, rowsOf } from "../lib/util/tables.ts";

/** One plain-SGD step (batch = the whole 8-image set) with `setup`; returns conv1's learned steps after it. */
async function sgdStep(model: Model, setup: StepSetup, lr: number): Promise<Float32Array> {
  let steps: Float32Array | undefined;
  await train({
    model,
    train: toyDataset(8, 1),
    setup,
    config: {
      epochs: 1,
      batchSize: 8,
      optimizer: { type: "sgd", momentum: 0 },
      schedule: { type: "constant", lr },
      seed: 1,
      augment: {},
      normalize: { mean: 0.5, std: 0.25 },
    },
    progress: consoleProgress({ quiet: true }),
    onEpochEnd: (_m, _o, extras) => {
      steps = extras[lsqStepName("conv1")];
    },
  });
  return steps!;
}

Deno.test("an LSQ step is trained by the optimizer with LSQ's gradient (SGD step checked against tf.grad)", async () => {
  await initBackend("wasm");
  const model = createModel(tinyCnn({ inputShape: [12, 12, 1] }), 3);
  const spec = { bits: 2, symmetric: true, perChannel: true, axis: 3, scale: "lsq" as const };
  const start = [0.05, 0.08, 0.11, 0.07, 0.06, 0.09, 0.1, 0.04]; // conv1's 8 filters
  const opts = { specs: { conv1: spec }, fakeQuant: true, lsq: { conv1: start } };
  const ds = toyDataset(8, 1);
  // the expected update: -lr dL/ds, with dL/ds from tf.grad through lsqQuantize on the same batch
  const lr = 0.5;
  const x = tf.tensor4d(ds.images, [8, 12, 12, 1]).div(255).sub(0.5).div(0.25) as tf.Tensor4D;
  const onehot = tf.oneHot(tf.tensor1d(ds.labels, "int32"), 2);
  const loss = (s: tf.Tensor) =>
    tf.losses.softmaxCrossEntropy(
      onehot,
      forward(model, x, {
        training: true,
        kernelTransform: (l, k) => (l === "conv1" ? lsqQuantize(k, s, spec) : k),
      }),
    ) as tf.Scalar;
  const g = tf.grad(loss)(tf.tensor1d(start)).dataSync();
  const after = await sgdStep(model, createStepSetup(model, opts), lr);
  assert.ok(after && after.length === 8);
  for (let c = 0; c < 8; c++) {
    assert.ok(g[c] !== 0, `channel ${c}: no gradient`);
    const want = Math.fround(start[c] - lr * g[c]);
    assert.ok(
      Math.abs(after![c] - want) <= 1e-6 * Math.max(1, Math.abs(want)),
      `${after![c]} vs ${want}`,
    );
  }
  tf.dispose([x, onehot]);
});

/** A tiny experiment with LSQ variants; written to a temp file. */
async function lsqExperiment(dir: string): Promise<string> {
  const lsq = { scale: "lsq", bits: 2, epochs: 2, liveBatchNorm: true };
  const path = join(dir, "lsq-exp.ts");
  await Deno.writeTextFile(
    path,
    `export default ${
      JSON.stringify({
        id: "lsq-exp",
        version: 1,
        description: "LSQ variants at a tiny size",
        seed: 5,
        dataset: {
          name: "synthetic-person",
          options: { trainCount: 192, valCount: 64, size: 16 },
        },
        architecture: { name: "small_cnn", options: { channels: [4, 8, 8, 8] } },
        train: {
          epochs: 2,
          batchSize: 32,
          optimizer: { type: "adam" },
          schedule: { type: "cosine", lr: 3e-3 },
          threads: 1,
        },
        qgt: { mode: "float", lr: 1e-3 },
        variants: {
          float: {},
          "lsq-qat-2": { qgt: { mode: "qat", ...lsq } },
          // a live phase, then a folded fine-tuning: the steps cross the fold between phases
          "lsq-qgt-2": {
            qgt: {
              mode: "qgt",
              ...lsq,
              fakeQuant: true,
              decoupled: true,
              finetuneEpochs: 1,
              lambda: { type: "linear", from: 0, to: 30, start: 0.5 },
            },
          },
          "lsq-mixed": {
            qgt: {
              mode: "qat",
              ...lsq,
              epochs: 1,
              mixed: { budgetBytes: 3000, candidates: [2, 4, 8], sensitivitySamples: 64 },
            },
          },
        },
      })
    };\n`,
  );
  return path;
}

Deno.test("LSQ variants end to end: learned steps become the exported scales; a resumed run is byte-identical", async () => {
  const dir = await tempDir("qgt-lsq-");
  try {
    const path = await lsqExperiment(dir);
    const quiet = consoleProgress({ quiet: true });
    const full = await runExperiment({ path, outRoot: join(dir, "a"), progress: quiet });
    for (const v of ["lsq-qat-2", "lsq-qgt-2", "lsq-mixed"]) {
      const vdir = join(full.runDir, "variants", v);
      const fin = await readFinal(join(vdir, "final.qgtw"));
      const specs = fin.quantized!.specs;
      const file = parseQgt(await Deno.readFile(join(vdir, "export", "model.qgt")), v);
      for (const l of file.layers.filter((l) => l.scales !== undefined)) {
        const s = specs[l.name].steps;
        // the deployed grid is the learned one: explicit per-channel steps, not a search method
        assert.equal(specs[l.name].scale, "lsq", `${v} ${l.name}`);
        assert.ok(Array.isArray(s) && s.length === (l.channels ?? 0), `${v} ${l.name}: ${s}`);
        const stored = new DataView(file.payload.buffer, file.payload.byteOffset + l.scales!);
        const got = Array.from({ length: s.length }, (_, c) => stored.getUint16(2 * c, true));
        const want = (s as number[]).map((x) => roundFloat16(Math.max(x, 2 ** -24)));
        assert.deepStrictEqual(
          got,
          want.map(toFloat16Bits),
          `${v} ${l.name}: float16 of the learned steps`,
        );
      }
      const row = full.summary.find((r) => r.variant === v)!;
      assert.equal(
        row.prediction_agreement,
        1,
        `${v}: the integer model predicts what the simulation does`,
      );
    }
    assert.equal(full.summary.find((r) => r.variant === "lsq-mixed")!.bits, "mixed");
    // stopped inside lsq-qgt-2's first phase and resumed: the same tables and model bytes
    const out = join(dir, "b");
    await assert.rejects(
      () => runExperiment({ path, outRoot: out, ...stopAfterEpochs(5) }),
      RunAborted,
    );
    const resumed = await runExperiment({ path, outRoot: out, progress: quiet, resume: true });
    for (const f of ["summary.csv", "metrics.csv", "layer_epochs.csv"]) {
      assert.equal(
        await Deno.readTextFile(join(resumed.runDir, f)),
        await Deno.readTextFile(join(full.runDir, f)),
        f,
      );
    }
    for (const v of ["lsq-qat-2", "lsq-qgt-2"]) {
      const m = (d: string) => Deno.readFile(join(d, "variants", v, "export", "model.qgt"));
      const [a, b] = [await m(full.runDir), await m(resumed.runDir)];
      // the same bytes, except the provenance, which is the same here too (same commit)
      assert.deepStrictEqual(a, b, v);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("settings LSQ cannot serve are refused before training, naming the field", async () => {
  const dir = await tempDir("qgt-lsq-");
  try {
    const ex = (await import(`file://${await lsqExperiment(dir)}`)).default;
    const bad = (qgt: Record<string, unknown>, want: RegExp) => {
      const e = { ...ex, variants: { float: {}, x: { qgt } } };
      assert.throws(() => resolveExperiment(e), Error, undefined);
      try {
        resolveExperiment(e);
      } catch (err) {
        assert.match((err as Error).message, want);
      }
    };
    bad(
      { mode: "ptq", bits: 2, scale: "lsq" },
      /variants\.x\.qgt\.scale: "lsq" learns the step in fake-quantized training: needs mode "qat"/,
    );
    bad(
      { mode: "qgt", bits: 2, scale: "lsq" },
      /needs mode "qat", or "qgt" with fakeQuant true, got mode "qgt" without fakeQuant/,
    );
    bad({ mode: "qat", bits: 1, scale: "lsq" }, /variants\.x\.qgt\.scale: "lsq" needs 2-8 bits/);
    bad({ mode: "qat", bits: 2, scale: "lsq", symmetric: false }, /needs symmetric weights/);
    bad(
      { mode: "qat", bits: 2, scale: "lsq", freeze: { momentum: 0.01, threshold: 0.5 } },
      /cannot be combined with freeze/,
    );
    bad(
      { mode: "qat", bits: 2, scale: "lsq", liveBatchNorm: true, perChannel: false },
      /needs perChannel/,
    );
    bad(
      { mode: "qat", bits: 2, lsqInit: "mse" },
      /variants\.x\.qgt\.lsqInit: needs scale "lsq", got scale "mse"/,
    );
    bad(
      { mode: "qat", bits: 2, scale: "maxabs", lsqStepLr: 10 },
      /variants\.x\.qgt\.lsqStepLr: needs scale "lsq", got scale "maxabs"/,
    );
    bad({ mode: "qat", bits: 2, scale: "lsq", lsqInit: "median" }, /lsqInit/);
    bad({ mode: "qat", bits: 2, scale: "lsq", lsqStepLr: 0 }, /lsqStepLr/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lsqStepLr multiplies the learned steps' learning rate only (SGD step against the same run without it)", async () => {
  await initBackend("wasm");
  const spec = { bits: 2, symmetric: true, perChannel: true, axis: 3, scale: "lsq" as const };
  const start = [0.05, 0.08, 0.11, 0.07, 0.06, 0.09, 0.1, 0.04];
  // one SGD step from the same weights and steps: the gradients are the same in both runs, so
  // the steps move 10x as far with lsqStepLr 10 and every weight moves the same (a small lr
  // keeps every step above 0, where no projection acts)
  const oneStep = async (lsqStepLr?: number) => {
    const model = createModel(tinyCnn({ inputShape: [12, 12, 1] }), 3);
    const setup = createStepSetup(model, {
      specs: { conv1: spec },
      fakeQuant: true,
      lsq: { conv1: start },
      lsqStepLr,
    });
    const steps = await sgdStep(model, setup, 0.005);
    const kernel = model.params.get("conv1/kernel")!.dataSync().slice();
    return { steps, kernel };
  };
  const base = await oneStep(), fast = await oneStep(10);
  assert.deepStrictEqual(fast.kernel, base.kernel);
  for (let c = 0; c < 8; c++) {
    const moved = base.steps[c] - start[c];
    assert.ok(Math.abs(moved) > 1e-6, `channel ${c} did not move`);
    const want = start[c] + 10 * moved;
    assert.ok(
      Math.abs(fast.steps[c] - want) <= 1e-6 + 1e-3 * Math.abs(10 * moved),
      `channel ${c}: ${fast.steps[c]} vs ${want} (start ${start[c]}, without ${base.steps[c]})`,
    );
  }
});

Deno.test("lsqInit: the paper's 2 mean|w| / sqrt(qmax) per channel, or the fixed-scale MSE search's step", () => {
  const model = createModel(tinyCnn({ inputShape: [12, 12, 1] }), 3);
  const k = model.params.get("conv1/kernel")!;
  const spec = { bits: 3, symmetric: true, perChannel: true, axis: 3, scale: "lsq" as const };
  const paper = initialSteps(model, { conv1: spec }, "paper").conv1;
  const mse = initialSteps(model, { conv1: spec }, "mse").conv1;
  const [h, w, cin, cout] = k.shape, data = k.dataSync(), n = h * w * cin;
  // squared error of channel c's weights on the 3-bit grid {-4..3} s, computed here by hand
  const err = (c: number, s: number) => {
    let e = 0;
    for (let i = c; i < data.length; i += cout) {
      e += (data[i] - s * Math.min(3, Math.max(-4, Math.round(data[i] / s)))) ** 2;
    }
    return e;
  };
  for (let c = 0; c < cout; c++) {
    let sum = 0;
    for (let i = c; i < data.length; i += cout) sum += Math.abs(data[i]);
    const want = (2 * sum) / n / Math.sqrt(3);
    assert.ok(Math.abs(paper[c] - want) <= 1e-6 * want, `paper ${c}: ${paper[c]} vs ${want}`);
    // the MSE step leaves no more error than the paper's, and no more than any nearby step
    assert.ok(err(c, mse[c]) <= err(c, paper[c]) * (1 + 1e-6), `channel ${c}`);
    for (const f of [0.5, 0.75, 1.25, 1.5]) {
      assert.ok(err(c, mse[c]) <= err(c, mse[c] * f) * (1 + 1e-6), `channel ${c} x${f}`);
    }
  }
});

Deno.test("lsqInit mse in a mixed-precision variant: each layer's sensitivity is measured at the fixed-scale MSE step", async () => {
  const dir = await tempDir("qgt-lsq-");
  try {
    const ex = (await import(`file://${await lsqExperiment(dir)}`)).default;
    const mixed = { budgetBytes: 3000, candidates: [2, 4, 8], sensitivitySamples: 64 };
    const common = { mode: "qat", bits: 2, epochs: 1, liveBatchNorm: true, mixed };
    const path = join(dir, "mixed-exp.ts");
    const e = {
      ...ex,
      train: { ...ex.train, epochs: 1 },
      variants: {
        float: {},
        "mse-mixed": { qgt: { ...common, scale: "mse" } },
        "lsq-mse-mixed": { qgt: { ...common, scale: "lsq", lsqInit: "mse" } },
        "lsq-paper-mixed": { qgt: { ...common, scale: "lsq" } },
      },
    };
    await Deno.writeTextFile(path, `export default ${JSON.stringify(e)};\n`);
    const res = await runExperiment({
      path,
      outRoot: join(dir, "out"),
      progress: consoleProgress({ quiet: true }),
    });
    const rows = rowsOf(await readCsv(join(res.runDir, "sensitivity.csv")));
    const of = (v: string) =>
      rows.filter((r) => r.variant === v).map((r) => [r.layer, r.bits, r.loss_increase]);
    assert.ok(of("mse-mixed").length >= 3 * 3, "every layer at every candidate width");
    // the same float network and probe images: the same starting grid gives the same table
    assert.deepStrictEqual(of("lsq-mse-mixed"), of("mse-mixed"));
    // the paper's start is a different grid (about 1.5x the MSE step at 2 bits): different losses
    const paper = of("lsq-paper-mixed"), mse = of("mse-mixed");
    assert.equal(paper.length, mse.length);
    assert.ok(
      paper.some((r, i) => r[1] === 2 && r[2] !== mse[i][2]),
      "paper start differs at 2 bits",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

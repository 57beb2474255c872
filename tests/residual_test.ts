// Residual connections: layers naming their inputs and `add` layers, as a ResNet-8-style network
// declares them (MLPerf Tiny's image-classification reference, scaled down): shapes, training,
// BatchNorm folding and 8-bit post-training quantization in the float simulation.
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../lib/backend/mod.ts";
import { createModel, foldBatchNorm, forward } from "../lib/models/mod.ts";
import { type ArchSpec, completeLayer, type LayerInput, layerShapes } from "../lib/models/spec.ts";
import { train } from "../lib/train/loop.ts";
import { evaluate } from "../lib/eval/evaluate.ts";
import { calibrateActivations, quantizeModel } from "../lib/methods/ptq.ts";
import { consoleProgress } from "../lib/util/progress.ts";
import { assert } from "./assert.ts";
import { toyDataset } from "./helpers.ts";

/** A ResNet-8-style network: a stem, an identity block, a strided block with a 1x1 shortcut. */
export function resnetLayers(c = 8): LayerInput[] {
  const conv = (name: string, filters: number, extra: Partial<LayerInput> = {}) =>
    ({ type: "conv2d", name, filters, kernel: 3, bn: true, act: "relu", ...extra }) as LayerInput;
  return [
    conv("stem", c),
    conv("b1a", c),
    conv("b1b", c, { act: "none" }),
    { type: "add", name: "b1", inputs: ["stem", "b1b"], act: "relu" },
    conv("b2a", 2 * c, { stride: 2 }),
    conv("b2b", 2 * c, { act: "none" }),
    conv("b2s", 2 * c, { kernel: 1, stride: 2, act: "none", inputs: ["b1"] }),
    { type: "add", name: "b2", inputs: ["b2b", "b2s"], act: "relu" },
    { type: "gap", name: "gap" },
    { type: "dense", name: "fc", units: 2 },
  ];
}

const arch = (layers: LayerInput[], size = 12): ArchSpec => ({
  name: "resnet_toy",
  inputShape: [size, size, 1],
  classes: 2,
  layers: layers.map(completeLayer),
});

Deno.test("residual shapes: branches, the 1x1 shortcut, and errors naming the layer", () => {
  const s = layerShapes(arch(resnetLayers()));
  assert.deepStrictEqual(s.get("b2s")!.in, [12, 12, 8]); // reads b1, not b2b
  assert.deepStrictEqual(s.get("b2s")!.out, [6, 6, 16]);
  assert.deepStrictEqual(s.get("b2b")!.in, [6, 6, 16]);
  const bad = resnetLayers();
  (bad[7] as { inputs: string[] }).inputs = ["b2b", "b1"]; // 6x6x16 + 12x12x8
  assert.throws(
    () => layerShapes(arch(bad)),
    /^Error: layer b2: inputs: adds two outputs of the same shape, got \[6,6,16\] and \[12,12,8\]$/,
  );
  const later = resnetLayers();
  (later[3] as { inputs: string[] }).inputs = ["stem", "b2a"];
  assert.throws(() => layerShapes(arch(later)), /layer b1: inputs: "b2a" is not an earlier layer/);
});

Deno.test("a residual network trains, folds and quantizes: the sum is computed, not skipped", async () => {
  await initBackend("wasm");
  const a = arch(resnetLayers());
  const m = createModel(a, 3);
  // the add layer really adds: the identity block's output is relu(stem + b1b)
  const x = tf.randomNormal([2, 12, 12, 1], 0, 1, "float32", 5);
  const seen: Record<string, tf.Tensor> = {};
  tf.tidy(() => {
    forward(m, x, { onLayerOutput: (n, y) => (seen[n] = tf.keep(y.clone())) });
  });
  const want = tf.relu(tf.add(seen.stem, seen.b1b));
  assert.deepStrictEqual(seen.b1.dataSync(), want.dataSync());
  tf.dispose([x, want, ...Object.values(seen)]);

  const ds = toyDataset(320, 8), val = toyDataset(128, 9);
  await train({
    model: m,
    train: ds,
    config: {
      epochs: 6,
      batchSize: 16,
      optimizer: { type: "adam" },
      schedule: { type: "constant", lr: 3e-3 },
      seed: 2,
    },
    progress: consoleProgress({ quiet: true }),
  });
  const fl = evaluate(m, val).accuracy;
  assert(fl >= 0.85, `float ${fl}`);
  const folded = foldBatchNorm(m);
  const foldedAcc = evaluate(folded, val).accuracy;
  assert(Math.abs(foldedAcc - fl) <= 0.01, `folded ${foldedAcc} vs ${fl}`);
  // the residual sums and the convolutions before them get activation ranges of their own
  const ranges = calibrateActivations(folded, ds);
  for (const n of ["stem", "b1a", "b1b", "b1", "b2a", "b2b", "b2s", "b2"]) {
    assert(ranges[n] && ranges[n][1] > ranges[n][0], `${n}: ${ranges[n]}`);
  }
  assert(ranges.b1b[0] < 0, "b1b has no activation, so negative values"); // before the add
  const specs = Object.fromEntries(
    ["stem", "b1a", "b1b", "b2a", "b2b", "b2s", "fc"].map((n) => [
      n,
      { bits: 8, symmetric: true, perChannel: true, axis: n === "fc" ? 1 : 3 },
    ]),
  );
  const q = quantizeModel(folded, specs, { calibration: ds });
  const { activationTransform } = await import("../lib/quant/activation.ts");
  const sim =
    evaluate(q.model, val, { activationTransform: activationTransform(8, q.activationRanges) })
      .accuracy;
  assert(Math.abs(sim - fl) <= 0.03, `8-bit simulation ${sim} vs float ${fl}`);
  for (const mm of [m, folded]) for (const v of mm.params.values()) v.dispose();
});

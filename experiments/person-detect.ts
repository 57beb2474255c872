/**
 * The paper's headline experiment: a MobileNetV1 person detector trained
 * towards 2-bit weights. Default data: synthetic-person (96x96 grayscale);
 * `--data DIR` switches to Visual Wake Words in the MLPerf Tiny layout.
 *
 * Width alpha = 0.33 makes the float32 network (BatchNorm folded) 1,433,192
 * bytes, i.e. 81 KB x 17.7 as in the paper.
 */
import { defineExperiment } from "../lib/experiment/define.ts";

export default defineExperiment({
  id: "person-detect",
  version: 1,
  description:
    "MobileNetV1 (alpha 0.33, 96x96x1) person detection: float, PTQ, QAT and QGT at 8/4/2 bits and a " +
    "bottleneck-guided mixed-precision QGT model within 81 KB.",
  seed: 1,
  dataset: {
    name: "synthetic-person",
    options: { trainCount: 8000, valCount: 2000 },
    withDir: "vww",
  },
  architecture: { name: "mobilenet_v1", options: { alpha: 0.33 } },
  train: {
    epochs: 8,
    batchSize: 32,
    optimizer: { type: "adam" },
    schedule: { type: "cosine", lr: 2e-3, warmupSteps: 100 },
    augment: { flip: true, shift: 0.1, zoom: 0.1, brightness: 0.1, contrast: 0.2 },
    threads: 2,
  },
  qgt: { mode: "float" },
  variants: {
    float: {},
  },
});

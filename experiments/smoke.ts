/**
 * Smoke: a tiny network on a small synthetic person set, all four modes at
 * 4 bits. Runs in well under a minute; the tests use it.
 */
import { defineExperiment } from "../lib/experiment/define.ts";

export default defineExperiment({
  id: "smoke",
  version: 1,
  description:
    "Tiny CNN on 32x32 synthetic-person: float, PTQ, QAT and QGT at 4 bits (a pipeline check, not a result).",
  seed: 7,
  dataset: { name: "synthetic-person", options: { trainCount: 2000, valCount: 500, size: 32 } },
  architecture: { name: "small_cnn", options: { channels: [8, 16, 16, 32] } },
  train: {
    epochs: 8,
    batchSize: 32,
    optimizer: { type: "adam" },
    schedule: { type: "cosine", lr: 3e-3 },
    augment: { flip: true },
    threads: 1,
  },
  qgt: { mode: "float" },
  variants: {
    float: {},
    "ptq-4": { qgt: { mode: "ptq", bits: 4 } },
    "qat-4": { qgt: { mode: "qat", bits: 4, epochs: 1 } },
    "qgt-4": {
      qgt: {
        mode: "qgt",
        bits: 4,
        epochs: 1,
        finetuneEpochs: 1,
        lambda: { type: "linear", to: 1 },
      },
    },
  },
  profiles: {
    quick: { train: { epochs: 3 } }, // enough to learn (float about 70 %)
  },
});

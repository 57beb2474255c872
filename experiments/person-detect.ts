/**
 * The paper's headline experiment: a MobileNetV1 person detector trained
 * towards 2-bit weights. Default data: synthetic-person (96x96 grayscale,
 * 8,000 training and 2,000 validation images); `--data DIR` switches to Visual
 * Wake Words in the MLPerf Tiny layout.
 *
 * Width alpha = 0.33 makes the float32 network (BatchNorm folded) 1,433,192
 * bytes, i.e. 81 KB x 17.7 as in the paper.
 *
 * Budget: the quantized variants all fine-tune the float variant with
 * BatchNorm live (folded at the end): QAT with fake quantization (STE), QGT
 * with fake quantization plus the decoupled grid pull (applied after each
 * optimizer step), whose lambda stays 0 for the first half and then ramps to
 * 30 (version 3: the setting chosen on the Fashion-MNIST holdout,
 * experiments/fashion-mnist-tuning.ts; version 2 had lambda 3 in the loss).
 * Both get 2 epochs at 2 bits and 1 epoch at 4 and 8 bits, on the same
 * batches, so each QAT / QGT pair differs only by the pull.
 *
 * Version 4 adds lsq-qat-2 and lsq-qgt-2: qat-2 and qgt-2 with learned step
 * sizes (`scale: "lsq"`, docs/lsq.md), every other setting unchanged (written
 * down before any reported run; nothing LSQ-specific is tuned). A mixed LSQ
 * model is left out of the budget.
 *
 * Version 5 adds lsq-qat-2-mse-lr10 and lsq-qgt-2-mse-lr10: the same pair with
 * the learned steps starting at the MSE step (`lsqInit: "mse"`) and learning
 * 10x faster (`lsqStepLr: 10`). Version 4's LSQ pair fell behind QAT-2 on the
 * fresh images with its steps still about 1.3x the MSE step after the 500
 * fine-tuning updates; of four LSQ settings compared on the tuning images
 * (experiments/person-detect-tuning.ts v5, seeds 1-2), this one was the only
 * one ahead of QAT-2 on both seeds. Version 4's variants are unchanged.
 */
import { defineExperiment } from "../lib/experiment/define.ts";

const epochsFor = (bits: number) => (bits <= 2 ? 2 : 1);
const qat = (bits: number) => ({
  qgt: { mode: "qat" as const, bits, epochs: epochsFor(bits), liveBatchNorm: true },
});
/** The QGT settings (shared with experiments/bottleneck.ts). */
export const qgtSettings = (bits: number) => ({
  mode: "qgt" as const,
  bits,
  epochs: epochsFor(bits),
  fakeQuant: true,
  liveBatchNorm: true,
  finetuneEpochs: 0,
  regularizer: "grid" as const,
  reduction: "weights" as const,
  decoupled: true,
  lambda: { type: "linear" as const, from: 0, to: 30, start: 0.5 },
});
const qgt = (bits: number) => ({ qgt: qgtSettings(bits) });
const lsq = (v: { qgt: Record<string, unknown> }) => ({ qgt: { ...v.qgt, scale: "lsq" as const } });
/** LSQ from the MSE step, learning 10x faster (chosen on the tuning images, version 5). */
const lsqMse = (v: { qgt: Record<string, unknown> }) => ({
  qgt: { ...lsq(v).qgt, lsqInit: "mse" as const, lsqStepLr: 10 },
});
/** The fine-tuned variants the profiles adjust. */
const TUNED = [
  "qat-8",
  "qat-4",
  "qat-2",
  "qgt-8",
  "qgt-4",
  "qgt-2",
  "qgt-mixed",
  "lsq-qat-2",
  "lsq-qgt-2",
  "lsq-qat-2-mse-lr10",
  "lsq-qgt-2-mse-lr10",
];

export default defineExperiment({
  id: "person-detect",
  version: 5,
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
    epochs: 10,
    batchSize: 32,
    optimizer: { type: "adam" },
    schedule: { type: "cosine", lr: 2e-3, warmupSteps: 100 },
    augment: { flip: true, shift: 0.05, brightness: 0.05 },
    threads: 2,
  },
  qgt: { mode: "float" },
  variants: {
    float: {},
    "ptq-8": { qgt: { mode: "ptq", bits: 8 } },
    "ptq-4": { qgt: { mode: "ptq", bits: 4 } },
    "ptq-2": { qgt: { mode: "ptq", bits: 2 } },
    "qat-8": qat(8),
    "qat-4": qat(4),
    "qat-2": qat(2),
    "qgt-8": qgt(8),
    "qgt-4": qgt(4),
    "qgt-2": qgt(2),
    "lsq-qat-2": lsq(qat(2)),
    "lsq-qgt-2": lsq(qgt(2)),
    "lsq-qat-2-mse-lr10": lsqMse(qat(2)),
    "lsq-qgt-2-mse-lr10": lsqMse(qgt(2)),
    "qgt-mixed": {
      qgt: {
        ...qgt(2).qgt,
        mixed: { budgetBytes: 80971, candidates: [1, 2, 3, 4, 8], sensitivitySamples: 512 },
      },
    },
  },
  profiles: {
    // --quick: the whole pipeline on a small set, enough to learn (float about 70 %): 2,000
    // images for 5 epochs at a higher learning rate; quantized variants fine-tune 1 epoch in
    // batches of 64 (the tests use it)
    quick: {
      dataset: { options: { trainCount: 2000, valCount: 400 } },
      train: { epochs: 5, schedule: { type: "cosine", lr: 4e-3, warmupSteps: 100 } },
      variants: Object.fromEntries(
        TUNED.map((n) => [n, {
          train: { batchSize: 64 },
          qgt: {
            epochs: 1,
            ...(n === "qgt-mixed"
              ? { mixed: { budgetBytes: 80971, candidates: [1, 2, 4], sensitivitySamples: 128 } }
              : {}),
          },
        }]),
      ),
    },
    // --full: the paper-scale schedule
    full: {
      dataset: { options: { trainCount: 40000, valCount: 4000 } },
      train: { epochs: 30 },
      variants: Object.fromEntries(
        TUNED.map((n) => [n, {
          qgt: { epochs: 6 },
        }]),
      ),
    },
  },
});

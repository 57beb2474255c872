/**
 * Fashion-MNIST bit sweep: the small CNN of the PyTorch anchors (conv 32, 32,
 * pool, 64, 64, pool, global average pooling, dense; 65,834 parameters) in
 * float and with PTQ, QAT and QGT at 2, 3, 4 and 8 bits. Run it with
 * `--seed 1`, `--seed 2` and `--seed 3` for the three-seed sweep; the figures
 * task aggregates the seeds (mean and spread).
 *
 * Schedule as the anchors: float Adam 1e-3, cosine, batch 128, random
 * horizontal flip; quantized variants fine-tune the float checkpoint at 2e-4
 * (QAT: fake quantization throughout; QGT: the regularizer first, then fake
 * quantization), the same number of steps for both.
 */
import { defineExperiment } from "../lib/experiment/define.ts";

const BITS = [2, 3, 4, 8] as const;
const variants: Record<string, { qgt: Record<string, unknown> }> = {};
for (const b of BITS) variants[`ptq-${b}`] = { qgt: { mode: "ptq", bits: b } };
for (const b of BITS) variants[`qat-${b}`] = { qgt: { mode: "qat", bits: b, epochs: 4 } };
for (const b of BITS) {
  variants[`qgt-${b}`] = {
    qgt: {
      mode: "qgt",
      bits: b,
      epochs: 2,
      finetuneEpochs: 2,
      regularizer: "grid",
      lambda: { type: "linear", from: 0, to: 1 },
    },
  };
}

export default defineExperiment({
  id: "fashion-mnist",
  version: 1,
  description:
    "Small CNN on Fashion-MNIST: float and PTQ / QAT / QGT at 2, 3, 4 and 8 bits (per-channel weights, 8-bit activations).",
  seed: 1,
  dataset: { name: "fashion-mnist" },
  architecture: { name: "small_cnn" },
  train: {
    epochs: 10,
    batchSize: 128,
    optimizer: { type: "adam" },
    schedule: { type: "cosine", lr: 1e-3 },
    augment: { flip: true },
    threads: 2,
  },
  qgt: { mode: "float", lr: 2e-4 },
  variants: { float: {}, ...variants } as never,
  profiles: {
    quick: {
      train: { epochs: 1 },
      variants: Object.fromEntries(
        BITS.flatMap((
          b,
        ) => [[`qat-${b}`, { qgt: { epochs: 1 } }], [`qgt-${b}`, {
          qgt: { epochs: 1, finetuneEpochs: 0 },
        }]]),
      ),
    },
  },
});

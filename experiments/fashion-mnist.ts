/**
 * Fashion-MNIST bit sweep: the small CNN of the PyTorch anchors (conv 32, 32,
 * pool, 64, 64, pool, global average pooling, dense; 65,834 parameters) in
 * float and with PTQ, QAT and QGT at 2, 3, 4 and 8 bits. Run it with
 * `--seed 1`, `--seed 2` and `--seed 3` for the three-seed sweep; the figures
 * task aggregates the seeds (mean and spread).
 *
 * Budget (the three seeds within 2 hours on 2 cores, see the README): the
 * first 20,000 training images, float 5 epochs (Adam 1e-3, cosine, batch 128,
 * random horizontal flip); every quantized variant fine-tunes the float
 * checkpoint for 1 epoch at 5e-4 (cosine): QAT with fake quantization, QGT with
 * fake quantization plus the grid regularizer (lambda ramped from 0), so both
 * take the same steps. Evaluated on the full 10,000-image test set.
 */
export default defineExperiment({
  id: "fashion-mnist",
  version: 2,
  description:
    "Small CNN on Fashion-MNIST: float and PTQ / QAT / QGT at 2, 3, 4 and 8 bits (per-channel weights, 8-bit activations).",
  seed: 1,
  dataset: { name: "fashion-mnist", options: { trainCount: 20000 } },
  architecture: { name: "small_cnn" },
  train: {
    epochs: 5,
    batchSize: 128,
    optimizer: { type: "adam" },
    schedule: { type: "cosine", lr: 1e-3 },
    augment: { flip: true },
    threads: 2,
  },
  qgt: { mode: "float", lr: 5e-4 },
  variants: { float: {}, ...variants } as never,
  profiles: {
    quick: {
      dataset: { options: { trainCount: 2000 } },
      train: { epochs: 1 },
    },
  },
});

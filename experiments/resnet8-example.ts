/**
 * Your own network on your own images, as an example: a ResNet-8 in the
 * style of MLPerf Tiny's image-classification reference (a 3x3 stem, three
 * residual stacks of 16, 32 and 64 channels, the last two strided with 1x1
 * shortcuts, global average pooling, dense) declared here as a layer list,
 * on an image folder (one subfolder per class). Run it on yours with
 * `deno task run experiments/resnet8-example.ts --data DIR` (the images are
 * resized to 32x32 RGB; the classes are DIR's subfolders). Float, QAT-2,
 * QGT-2 and a mixed-precision QGT model within 32,000 bytes (version 2: the
 * 24,000 of version 1 was below the all-2-bit model of ten classes, 24,118).
 */
import { defineExperiment } from "../lib/experiment/define.ts";

/** A 3x3 convolution with BatchNorm (and ReLU unless a residual sum follows). */
const conv = (name: string, filters: number, more: Record<string, unknown> = {}) => ({
  type: "conv2d" as const,
  name,
  filters,
  kernel: 3,
  bn: true,
  act: "relu" as const,
  ...more,
});

/** A residual stack: two 3x3 convolutions, summed with its input (or a strided 1x1 of it). */
const stack = (name: string, input: string, filters: number, stride: number) => [
  conv(`${name}a`, filters, { stride }),
  conv(`${name}b`, filters, { act: "none" }),
  ...(stride > 1
    ? [conv(`${name}s`, filters, { kernel: 1, stride, act: "none", inputs: [input] as [string] })]
    : []),
  {
    type: "add" as const,
    name,
    inputs: [stride > 1 ? `${name}s` : input, `${name}b`] as [string, string],
    act: "relu" as const,
  },
];

const qgt2 = {
  mode: "qgt",
  bits: 2,
  epochs: 4,
  fakeQuant: true,
  liveBatchNorm: true,
  finetuneEpochs: 0,
  decoupled: true,
  lambda: { type: "linear", from: 0, to: 30, start: 0.5 },
} as const;

export default defineExperiment({
  id: "resnet8-example",
  version: 2,
  description:
    "A ResNet-8 declared in the experiment on an image folder: float, QAT-2, QGT-2 and mixed precision.",
  seed: 1,
  dataset: { name: "folder", options: { dir: "data/my-images", size: 32, channels: 3 } },
  architecture: {
    name: "resnet8",
    layers: [
      conv("stem", 16),
      ...stack("s1", "stem", 16, 1),
      ...stack("s2", "s1", 32, 2),
      ...stack("s3", "s2", 64, 2),
      { type: "gap", name: "gap" },
      { type: "dense", name: "fc", units: 10 },
    ],
  },
  train: {
    epochs: 30,
    batchSize: 32,
    optimizer: { type: "adam" },
    schedule: { type: "cosine", lr: 3e-3 },
    augment: { flip: true },
  },
  qgt: { mode: "float", lr: 5e-4 },
  variants: {
    float: {},
    "qat-2": { qgt: { mode: "qat", bits: 2, epochs: 4, liveBatchNorm: true } },
    "qgt-2": { qgt: qgt2 },
    "qgt-mixed": {
      qgt: {
        ...qgt2,
        mixed: { budgetBytes: 32000, candidates: [2, 4, 8], sensitivitySamples: 256 },
      },
    },
  },
  profiles: {
    // --quick: the pipeline on small images for a few epochs (the tests use it)
    quick: {
      dataset: { options: { size: 16 } },
      train: { epochs: 6 },
    },
  },
});

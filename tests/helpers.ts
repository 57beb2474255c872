/** Small data and models the tests make. */
import type { Dataset } from "../lib/data/dataset.ts";
import type { ArchSpec } from "../lib/models/spec.ts";
import { rng } from "../lib/util/random.ts";

/** A learnable 2-class set: class 1 has a bright square at a random place, on noise. */
export function toyDataset(n: number, seed: number, size = 12): Dataset {
  const r = rng(seed);
  const images = new Uint8Array(n * size * size);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    for (let p = 0; p < size * size; p++) images[i * size * size + p] = r.int(0, 120);
    if (labels[i]) {
      const y0 = r.int(0, size - 4), x0 = r.int(0, size - 4);
      for (let y = y0; y < y0 + 4; y++) {
        for (let x = x0; x < x0 + 4; x++) images[i * size * size + y * size + x] = 240;
      }
    }
  }
  return { name: "toy", shape: [size, size, 1], classNames: ["no", "yes"], images, labels };
}

/** A tiny conv net with every layer kind, for fast tests. */
export function tinyArch(size = 12, bn = true): ArchSpec {
  return {
    name: "tiny",
    inputShape: [size, size, 1],
    classes: 2,
    layers: [
      {
        type: "conv2d",
        name: "c1",
        filters: 4,
        kernel: 3,
        stride: 2,
        padding: "same",
        bias: !bn,
        bn,
        act: "relu6",
      },
      {
        type: "depthwise2d",
        name: "d1",
        kernel: 3,
        stride: 1,
        padding: "same",
        bias: !bn,
        bn,
        act: "relu6",
      },
      {
        type: "conv2d",
        name: "p1",
        filters: 6,
        kernel: 1,
        stride: 1,
        padding: "same",
        bias: !bn,
        bn,
        act: "relu",
      },
      { type: "maxpool", name: "mp", size: 2, stride: 2 },
      { type: "gap", name: "gap" },
      { type: "dense", name: "fc", units: 2, bias: true, act: "none" },
    ],
  };
}

/** Trains the tiny network on toy data for 4 epochs (Adam 3e-3), quietly; returns model and data. */
export async function trainToy(nTrain: number, nVal: number, epochs = 4) {
  const { createModel } = await import("../lib/models/model.ts");
  const { train } = await import("../lib/train/loop.ts");
  const { consoleProgress } = await import("../lib/util/progress.ts");
  const arch = tinyArch();
  const m = createModel(arch, 5);
  const ds = toyDataset(nTrain, 8), val = toyDataset(nVal, 9);
  await train({
    model: m,
    train: ds,
    config: {
      epochs,
      batchSize: 16,
      optimizer: { type: "adam" },
      schedule: { type: "constant", lr: 3e-3 },
      seed: 2,
    },
    progress: consoleProgress({ quiet: true }),
  });
  return { m, ds, val, arch };
}

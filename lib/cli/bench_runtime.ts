/**
 * `deno task bench`'s inference measurements: the exported person detector in the TypeScript
 * interpreter, the C runtime and tfjs (batch 1 and 32), and the Fashion-MNIST small CNN in the
 * C runtime.
 * @module
 */
import * as tf from "@tensorflow/tfjs";

import {
  type ArchSpec,
  createModel,
  foldBatchNorm,
  forward,
  mobilenetV1,
  type Model,
  smallCnn,
} from "../models/mod.ts";
import { rng } from "../util/random.ts";
import type { Batch } from "../data/dataset.ts";
import { resolveLayerSpecs } from "../quant/layers.ts";
import { quantizeModel } from "../methods/ptq.ts";
import { buildQgt } from "../format/model_file.ts";
import { exportSource } from "../export/export.ts";
import { loadInterpreter, runInterpreter } from "../engine/interpreter.ts";
import { loadNative, nativeUnavailable } from "../engine/native.ts";
import { disposeModel } from "../models/model.ts";
import { median, randomBatch } from "./bench_train.ts";

export function inferMs(model: Model, batch: Batch, warmup: number, iters: number): number {
  const x = tf.tensor4d(batch.x, [batch.n, 96, 96, 1]);
  const times: number[] = [];
  for (let i = 0; i < warmup + iters; i++) {
    const t0 = performance.now();
    tf.tidy(() => forward(model, x).dataSync());
    if (i >= warmup) times.push(performance.now() - t0);
  }
  x.dispose();
  return median(times);
}

/**
 * A random network with BatchNorm folded, exported as 2-bit model.qgt bytes
 * (activation ranges as given, else ReLU6's [0, 6]; speed does not depend on them).
 */
export function twoBitExport(
  arch: ArchSpec,
  classes: string[],
  ranges?: Record<string, [number, number]>,
): Uint8Array {
  const m = foldBatchNorm(createModel(arch, 1));
  const specs = resolveLayerSpecs(m.arch, { bits: 2 });
  const q = quantizeModel(m, specs, ranges ? { ranges } : {});
  const bytes = buildQgt(exportSource(m, q.weights, specs, q.activationRanges, classes));
  disposeModel(m);
  return bytes;
}

/**
 * Inference of the person detector (MobileNetV1 alpha 0.33, 96x96x1, BatchNorm
 * folded) one image at a time: the exported 2-bit model.qgt by the TypeScript
 * interpreter and by the C runtime (one thread, -O2), and the same folded
 * network in float by tfjs on the wasm backend (batch 1, and batch 32 per
 * image). Random weights: speed does not depend on them.
 */
export async function runtimeSpeed(warmup: number, iters: number) {
  const model = createModel(mobilenetV1({ alpha: 0.33 }), 1);
  const folded = foldBatchNorm(model);
  disposeModel(model);
  // a network of its own for the export: quantizeModel snaps the weights in place, and tfjs
  // measures the float network (every layer ReLU6: no data needed)
  const bytes = twoBitExport(mobilenetV1({ alpha: 0.33 }), ["no", "yes"]);
  const r = rng(3);
  const images = Array.from(
    { length: 8 },
    () => Int8Array.from({ length: 96 * 96 }, () => r.int(-128, 127)),
  );
  const perImage = (f: (x: Int8Array) => unknown, n: number) => {
    for (let i = 0; i < warmup; i++) f(images[i % images.length]);
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      f(images[i % images.length]);
      times.push(performance.now() - t0);
    }
    return median(times);
  };
  const it = loadInterpreter(bytes);
  const tsMs = perImage((x) => runInterpreter(it, x), Math.max(5, Math.round(iters / 4)));
  const native = await loadNative(bytes);
  const cMs = native ? perImage((x) => native.invoke(x), iters * 8) : NaN;
  // the Fashion-MNIST small CNN: 3x3 convolutions over 32-64 channels, the other kernel family
  // (random weights; ReLU ranges given, as speed does not depend on them)
  const cnnArch = smallCnn();
  const cnnBytes = twoBitExport(
    cnnArch,
    Array.from({ length: cnnArch.classes }, (_, i) => `c${i}`),
    Object.fromEntries(cnnArch.layers.map((l) => [l.name, [0, 4] as [number, number]])),
  );
  const cnnNative = await loadNative(cnnBytes);
  // its input: the first 28 x 28 values of each random image
  const cnnMs = cnnNative
    ? perImage((x) => cnnNative.invoke(x.subarray(0, 28 * 28)), iters * 8)
    : NaN;
  const one = randomBatch(1, 9);
  const tfjs1 = inferMs(folded, one, warmup, iters * 4);
  const tfjs32 = inferMs(folded, randomBatch(32, 10), warmup, iters) / 32;
  disposeModel(folded);
  return {
    model: "mobilenet_v1_0.33_96x96x1, 2-bit weights, BatchNorm folded",
    modelBytes: bytes.length,
    smallCnn: { modelBytes: cnnBytes.length, cRuntimeMs: cnnMs },
    msPerImage: {
      tsInterpreter: tsMs,
      cRuntime: cMs,
      tfjsWasmBatch1: tfjs1,
      tfjsWasmBatch32: tfjs32,
    },
    cRuntime: native ? "" : await nativeUnavailable(),
    ratios: {
      cVsTsInterpreter: tsMs / cMs,
      cVsTfjsBatch1: tfjs1 / cMs,
      cVsTfjsBatch32: tfjs32 / cMs,
    },
  };
}

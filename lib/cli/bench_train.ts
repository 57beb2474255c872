/**
 * What every training measurement of `deno task bench` shares: the two benched networks, random
 * batches, the QAT-2 / QGT-2 step settings, the timed training loop on a chosen backend, and the
 * PyTorch peer (`bench/torch_peer.py`) run as a separate process in the same bench run.
 * @module
 */
import { REPO_ROOT } from "../util/path.ts";
import { type BackendName, initBackend } from "../backend/mod.ts";
import { createModel, mobilenetV1, type Model, smallCnn } from "../models/mod.ts";
import { disposeModel } from "../models/model.ts";
import { type KernelTime, type Profile, startProfile, stopProfile } from "../backend/profile.ts";
import type { GradKernels } from "../backend/conv_grad_kernel.ts";
import { Trainer } from "../train/loop.ts";
import { rng } from "../util/random.ts";
import type { Batch } from "../data/dataset.ts";
import type { SetupRef } from "../train/step.ts";
import { TRAINING_SETUP_MODULE, type TrainingSetupOptions } from "../methods/training_setup.ts";
import { resolveLayerSpecs } from "../quant/layers.ts";

export function median(a: number[]): number {
  const b = [...a].sort((x, y) => x - y);
  return b.length % 2 ? b[b.length >> 1] : (b[b.length / 2 - 1] + b[b.length / 2]) / 2;
}

export function randomBatch(
  n: number,
  seed: number,
  shape: number[] = [96, 96, 1],
  classes = 2,
): Batch {
  const r = rng(seed);
  return {
    x: Float32Array.from({ length: n * shape[0] * shape[1] * shape[2] }, () => r.normal()),
    y: Int32Array.from({ length: n }, () => r.int(0, classes - 1)),
    n,
  };
}

/** The two benched networks: the person detector's MobileNet and Fashion-MNIST's small CNN. */
export const NETS = {
  mobilenet: {
    label: "MobileNetV1-0.25 96x96x1, 2 classes, batch 32",
    arch: () => mobilenetV1(),
    batch: 32,
    shape: [96, 96, 1],
    classes: 2,
  },
  "small-cnn": {
    label: "Fashion-MNIST small CNN (65,834 parameters) 28x28x1, 10 classes, batch 64",
    arch: () => smallCnn(),
    batch: 64,
    shape: [28, 28, 1],
    classes: 10,
  },
} as const;
export type Net = keyof typeof NETS;

/** QAT-2 / QGT-2 steps as person-detect fine-tunes: per-channel 2-bit MSE grids, BatchNorm live. */
export type Method = "float" | "qat-2" | "qgt-2";

export function setupFor(method: Method, model: Model): SetupRef | undefined {
  if (method === "float") return undefined;
  const options: TrainingSetupOptions = {
    specs: resolveLayerSpecs(model.arch, { bits: 2 }),
    fakeQuant: true,
    ...(method === "qgt-2" ? { regularizer: "grid" as const, decoupled: true } : {}),
  };
  return { module: TRAINING_SETUP_MODULE, options };
}

/**
 * Median training speed of `steps` steps after `warmup`; with `profile`, the
 * timed steps also record kernel and phase times (which slows them a little).
 */
export async function trainSpeed(
  threads: number,
  warmup: number,
  steps: number,
  batch: Batch,
  method: Method = "float",
  net: Net = "mobilenet",
  profile = false,
  gradKernels: GradKernels = "tfjs",
  backend: BackendName = "wasm",
) {
  await initBackend(backend);
  const model = createModel(NETS[net].arch(), 1);
  const t = await Trainer.create({
    model,
    optimizer: { type: "adam" },
    threads,
    setup: setupFor(method, model),
    gradKernels,
    backend,
  });
  const times: number[] = [];
  let prof: Profile | null = null;
  for (let i = 0; i < warmup + steps; i++) {
    if (profile && i === warmup) startProfile();
    const t0 = performance.now();
    await t.step(batch, 1e-3, { lambda: 30 });
    if (i >= warmup) times.push(performance.now() - t0);
  }
  if (profile) prof = stopProfile();
  await t.close();
  disposeModel(model);
  const ms = median(times);
  return {
    net,
    threads,
    method,
    gradKernels,
    backend,
    msPerStep: ms,
    samplesPerSecond: (batch.n * 1000) / ms,
    steps: times.length,
    ...(prof ? { profile: perStep(prof, times) } : {}),
  };
}

/** A profile as milliseconds per step; kernels under 1 % of the step folded into "other kernels". */
export function perStep(p: Profile, times: number[]) {
  const n = times.length, total = times.reduce((a, b) => a + b, 0) / n;
  const kernels: KernelTime[] = [];
  const small = new Map<string, KernelTime>();
  for (const k of p.kernels) {
    const row = { ...k, calls: k.calls / n, ms: k.ms / n };
    if (row.ms >= total / 100) kernels.push(row);
    else {
      const o = small.get(k.phase) ??
        { phase: k.phase, kernel: "(other kernels)", calls: 0, ms: 0 };
      o.calls += row.calls;
      o.ms += row.ms;
      small.set(k.phase, o);
    }
  }
  return {
    msPerStep: total,
    phases: p.phases.map((f) => ({
      ...f,
      calls: f.calls / n,
      ms: f.ms / n,
      kernelMs: f.kernelMs / n,
      otherMs: f.otherMs / n,
    })),
    kernels: [...kernels, ...small.values()],
  };
}

/** PyTorch's figures for one network at `threads` and 1 thread (fp32; 2-bit STE fake quantization). */
export type TorchFigures = {
  torch: string;
  params: number;
  threads: Record<
    string,
    { train_samples_per_s: number; train_2bit_samples_per_s?: number; infer_ms_per_batch: number }
  >;
};

export async function torchPeer(
  warmup: number,
  steps: number,
  threads: number,
  net: Net = "mobilenet",
): Promise<TorchFigures | { skipped: string }> {
  // Debian's python3-torch installs into the system python, which may not be first on PATH
  const py = (await Deno.stat("/usr/bin/python3").then(() => true, () => false))
    ? "/usr/bin/python3"
    : "python3";
  try {
    const probe = await new Deno.Command(py, { args: ["-c", "import torch"], stderr: "null" })
      .output();
    if (!probe.success) {
      return { skipped: "python3 has no torch (apt-get install -y python3-torch)" };
    }
  } catch {
    return { skipped: "no python3" };
  }
  const script = `${REPO_ROOT}bench/torch_peer.py`;
  const out = await new Deno.Command(py, {
    args: [
      script,
      "--threads",
      String(threads),
      "1",
      "--steps",
      String(steps),
      "--warmup",
      String(warmup),
      "--net",
      net,
    ],
    env: { MALLOC_MMAP_THRESHOLD_: "33554432", MALLOC_TRIM_THRESHOLD_: "4294967296" },
    stderr: "piped",
  }).output();
  if (!out.success) {
    return {
      skipped: `torch peer failed: ${
        new TextDecoder().decode(out.stderr).trim().split("\n").pop()
      }`,
    };
  }
  return JSON.parse(new TextDecoder().decode(out.stdout)) as TorchFigures;
}

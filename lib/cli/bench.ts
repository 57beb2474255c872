/**
 * `deno task bench`: training and inference speed of MobileNetV1-0.25,
 * 96x96x1, 2 classes, batch 32, Adam, on the wasm backend (1 and N threads;
 * float, and the QAT-2 / QGT-2 fine-tuning steps with fake quantization),
 * one cpu-backend step for reference, peak RSS, and, when python3 with torch
 * is installed, the PyTorch peer measured in the same run with ratios; and
 * how fast VWW-layout JPEGs load (decode and resize, then from the cache).
 * `--sweep` instead times the local sweep executor (`bench_sweep.ts`).
 * @module
 */
import * as tf from "@tensorflow/tfjs";

import { type BackendChoice, BACKENDS, chooseBackend, initBackend } from "../backend/mod.ts";
import { createModel, foldBatchNorm, mobilenetV1 } from "../models/mod.ts";
import { Trainer } from "../train/loop.ts";
import { intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { disposeModel } from "../models/model.ts";
import { benchSweep } from "./bench_sweep.ts";
import { benchNative } from "./bench_native.ts";
import { NETS, randomBatch, torchPeer, trainSpeed } from "./bench_train.ts";
import { vwwLoadSpeed } from "./bench_vww.ts";
import { inferMs, runtimeSpeed } from "./bench_runtime.ts";
import { profiles } from "./bench_profile.ts";

const USAGE =
  "usage: deno task bench [--json] [--steps N] [--warmup N] [--threads N] [--no-torch] [--no-cpu] [--vww-images N] [--runtime-only] [--profile [--backend B]] [--sweep] [--native]";

const native = (ms: number, why: string) => why ? `unavailable (${why})` : `${ms.toFixed(2)} ms`;

function peakRssMiB(): number {
  const m = Deno.readTextFileSync("/proc/self/status").match(/VmHWM:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The small CNN: float at 1 and `threads` threads, QAT-2 and QGT-2 at 1 thread (as the sweep trains). */
async function smallCnnSpeed(threads: number, warmup: number, steps: number) {
  const { batch, shape, classes } = NETS["small-cnn"];
  const b = randomBatch(batch, 5, [...shape], classes);
  const float1 = await trainSpeed(1, warmup, steps, b, "float", "small-cnn");
  const floatN = threads > 1
    ? await trainSpeed(threads, warmup, steps, b, "float", "small-cnn")
    : float1;
  const qat1 = await trainSpeed(1, warmup, steps, b, "qat-2", "small-cnn");
  const qgt1 = await trainSpeed(1, warmup, steps, b, "qgt-2", "small-cnn");
  // qgt's gradient kernels (its max-pooling gradient; the small CNN has no depthwise layer)
  const fast1 = await trainSpeed(1, warmup, steps, b, "float", "small-cnn", false, "qgt");
  return { float1, floatN, qat1, qgt1, fast1 };
}

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    json: { type: "boolean", help: "print one JSON object instead of text" },
    steps: {
      type: "string",
      arg: "N",
      default: "12",
      help: "timed training steps per measurement",
    },
    warmup: { type: "string", arg: "N", default: "3", help: "untimed steps first" },
    threads: {
      type: "string",
      arg: "N",
      default: "2",
      help: "the multi-threaded measurements' threads",
    },
    "no-torch": { type: "boolean", help: "skip the PyTorch peer" },
    "no-cpu": { type: "boolean", help: "skip tfjs's cpu backend" },
    "vww-images": {
      type: "string",
      arg: "N",
      default: "1000",
      help: "images for the VWW-folder loading measurement",
    },
    "runtime-only": { type: "boolean", help: "only the inference runtimes" },
    profile: { type: "boolean", help: "time per kernel instead (docs/performance.md)" },
    backend: {
      type: "string",
      arg: "NAME",
      default: "auto",
      help: "--profile's training backend: auto (native where it loads), native or wasm",
    },
    sweep: { type: "boolean", help: "time a small sweep at --jobs 1 and 2" },
    native: {
      type: "boolean",
      help: "only the native (oneDNN) backend's training against PyTorch (docs/performance.md)",
    },
  }, USAGE);
  if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}\n${USAGE}`);
  const steps = intFlag("--steps", f.steps, 10, 10000);
  const warmup = intFlag("--warmup", f.warmup, 1, 1000);
  const threads = intFlag("--threads", f.threads, 1, 16);
  const vwwImages = intFlag("--vww-images", f["vww-images"], 10, 100000);
  const log = (s: string) => !f.json && console.log(s);
  const batch = randomBatch(32, 5);

  if (f.native) {
    const r = await benchNative(threads, warmup, steps, log);
    if (f.json) console.log(JSON.stringify({ native: r }));
    return;
  }
  if (f.sweep) {
    const r = await benchSweep(log);
    if (f.json) console.log(JSON.stringify({ sweep: r }));
    return;
  }
  if (f.profile) {
    const choice = f.backend as BackendChoice;
    if (![...BACKENDS, "auto"].includes(choice)) {
      throw new UsageError(`--backend: expected auto, ${BACKENDS.join(", ")}; got ${choice}`);
    }
    const { name, note } = await chooseBackend(choice);
    if (note) console.error(note);
    log(`profile on the ${name} backend`);
    const p = await profiles(threads, warmup, steps, name, log);
    if (f.json) console.log(JSON.stringify({ profiles: p }));
    return;
  }
  await initBackend("wasm");
  const rt = await runtimeSpeed(warmup, steps);
  const ms = rt.msPerImage;
  log(
    `inference, person detector (${rt.model}, ${rt.modelBytes} bytes), one image at a time:\n` +
      `  TypeScript interpreter ${ms.tsInterpreter.toFixed(2)} ms; C runtime (1 thread, -O2) ${
        native(ms.cRuntime, rt.cRuntime)
      }; tfjs wasm float ${ms.tfjsWasmBatch1.toFixed(2)} ms (batch 1), ${
        ms.tfjsWasmBatch32.toFixed(2)
      } ms (batch 32, per image)\n` +
      `  C runtime: ${rt.ratios.cVsTsInterpreter.toFixed(1)}x the interpreter's speed, ${
        rt.ratios.cVsTfjsBatch1.toFixed(2)
      }x tfjs batch 1, ${rt.ratios.cVsTfjsBatch32.toFixed(2)}x tfjs batch 32\n` +
      `inference, Fashion-MNIST small CNN (2-bit weights, ${rt.smallCnn.modelBytes} bytes): C runtime ${
        native(rt.smallCnn.cRuntimeMs, rt.cRuntime)
      }`,
  );
  if (f["runtime-only"]) {
    if (f.json) console.log(JSON.stringify({ runtime: rt }));
    return;
  }
  log(
    `qgt bench: MobileNetV1-0.25 96x96x1, 2 classes, batch 32, Adam; tfjs ${tf.version.tfjs}, Deno ${Deno.version.deno}`,
  );
  const train1 = await trainSpeed(1, warmup, steps, batch);
  log(
    `wasm train, 1 thread : ${train1.samplesPerSecond.toFixed(1)} samples/s (median ${
      train1.msPerStep.toFixed(0)
    } ms/step of ${steps})`,
  );
  const trainN = threads > 1 ? await trainSpeed(threads, warmup, steps, batch) : train1;
  if (threads > 1) {
    log(
      `wasm train, ${threads} threads: ${trainN.samplesPerSecond.toFixed(1)} samples/s (median ${
        trainN.msPerStep.toFixed(0)
      } ms/step of ${steps})`,
    );
  }
  // the same float steps with qgt's wasm gradient kernels (train.gradKernels: "qgt")
  const fast1 = await trainSpeed(1, warmup, steps, batch, "float", "mobilenet", false, "qgt");
  const fastN = threads > 1
    ? await trainSpeed(threads, warmup, steps, batch, "float", "mobilenet", false, "qgt")
    : fast1;
  log(
    `wasm train, qgt gradient kernels: ${fast1.samplesPerSecond.toFixed(1)} samples/s (1 thread), ${
      fastN.samplesPerSecond.toFixed(1)
    } (${threads} threads)`,
  );
  const quant: Awaited<ReturnType<typeof trainSpeed>>[] = [];
  for (const method of ["qat-2", "qgt-2"] as const) {
    const q = await trainSpeed(threads, warmup, steps, batch, method);
    quant.push(q);
    log(
      `wasm train ${method}, ${threads} thr: ${q.samplesPerSecond.toFixed(1)} samples/s (median ${
        q.msPerStep.toFixed(0)
      } ms/step; ${(q.samplesPerSecond / trainN.samplesPerSecond * 100).toFixed(0)} % of float)`,
    );
  }
  const cnn = await smallCnnSpeed(threads, warmup, steps);
  log(
    `small CNN train     : float ${cnn.float1.samplesPerSecond.toFixed(0)} samples/s (1 thread), ${
      cnn.floatN.samplesPerSecond.toFixed(0)
    } (${threads} threads); 1 thread: QAT-2 ${cnn.qat1.samplesPerSecond.toFixed(0)} (${
      (cnn.qat1.samplesPerSecond / cnn.float1.samplesPerSecond * 100).toFixed(0)
    } % of float), QGT-2 ${cnn.qgt1.samplesPerSecond.toFixed(0)} (${
      (cnn.qgt1.samplesPerSecond / cnn.float1.samplesPerSecond * 100).toFixed(0)
    } %)`,
  );
  const model = createModel(mobilenetV1(), 1);
  const folded = foldBatchNorm(model);
  const inferFloat = inferMs(model, batch, warmup, steps);
  const inferFolded = inferMs(folded, batch, warmup, steps);
  disposeModel(model);
  disposeModel(folded);
  log(
    `wasm inference      : ${
      inferFolded.toFixed(1)
    } ms/batch of 32, BatchNorm folded (deployed form); ${inferFloat.toFixed(1)} ms unfolded`,
  );

  let cpu: { samplesPerSecond: number; msPerStep: number } | null = null;
  if (!f["no-cpu"]) {
    await initBackend("cpu");
    const m = createModel(mobilenetV1(), 1);
    const t = await Trainer.create({ model: m, optimizer: { type: "adam" } });
    const t0 = performance.now();
    await t.step(batch, 1e-3, {});
    const ms = performance.now() - t0;
    await t.close();
    disposeModel(m);
    cpu = { msPerStep: ms, samplesPerSecond: (32 * 1000) / ms };
    log(
      `cpu train (1 step)  : ${cpu.samplesPerSecond.toFixed(2)} samples/s (${
        (ms / 1000).toFixed(1)
      } s/step; tfjs's pure-JS reference backend)`,
    );
    await initBackend("wasm");
  }
  const vww = await vwwLoadSpeed(vwwImages);
  log(
    `VWW loading         : ${vww.decodedPerSecond.toFixed(0)} images/s decoded and resized ` +
      `(96x96 JPEG -> 96x96x1, ${vww.images} images, one thread), ${
        vww.cachedPerSecond.toFixed(0)
      } images/s from the cache`,
  );
  const rss = peakRssMiB();
  log(`peak RSS            : ${rss.toFixed(0)} MiB`);

  const torch = f["no-torch"] ? { skipped: "--no-torch" } : await torchPeer(warmup, steps, threads);
  let ratios: Record<string, number> | null = null;
  if ("threads" in torch) {
    const tN = torch.threads[String(threads)], t1 = torch.threads["1"];
    ratios = {
      trainVsTorchSameThreads: trainN.samplesPerSecond / tN.train_samples_per_s,
      trainVsTorch1Thread: trainN.samplesPerSecond / t1.train_samples_per_s,
      trainQgtKernelsVsTorchSameThreads: fastN.samplesPerSecond / tN.train_samples_per_s,
      trainQgtKernelsVsTorch1Thread1: fast1.samplesPerSecond / t1.train_samples_per_s,
      inferSpeedVsTorchSameThreads: tN.infer_ms_per_batch / inferFolded,
    };
    log(
      `PyTorch ${torch.torch} (same run): train ${
        tN.train_samples_per_s.toFixed(0)
      } samples/s with ${threads} threads, ${t1.train_samples_per_s.toFixed(0)} with 1; inference ${
        tN.infer_ms_per_batch.toFixed(1)
      } ms/batch`,
    );
    log(
      `ratios qgt/PyTorch: training ${
        ratios.trainVsTorchSameThreads.toFixed(2)
      }x (${threads} threads each), ${
        ratios.trainVsTorch1Thread.toFixed(2)
      }x (qgt ${threads} threads vs PyTorch 1); with qgt's gradient kernels ${
        ratios.trainQgtKernelsVsTorchSameThreads.toFixed(2)
      }x (${threads} threads each), ${
        ratios.trainQgtKernelsVsTorch1Thread1.toFixed(2)
      }x (1 thread each); inference speed ${ratios.inferSpeedVsTorchSameThreads.toFixed(2)}x`,
    );
  } else {
    log(`PyTorch peer skipped: ${torch.skipped}`);
  }
  const torchCnn = "threads" in torch
    ? await torchPeer(warmup, steps, threads, "small-cnn")
    : torch;
  let cnnRatios: Record<string, number> | null = null;
  if ("threads" in torchCnn) {
    const tN = torchCnn.threads[String(threads)], t1 = torchCnn.threads["1"];
    cnnRatios = {
      floatVsTorch1Thread: cnn.float1.samplesPerSecond / t1.train_samples_per_s,
      floatQgtKernelsVsTorch1Thread: cnn.fast1.samplesPerSecond / t1.train_samples_per_s,
      floatVsTorchSameThreads: cnn.floatN.samplesPerSecond / tN.train_samples_per_s,
      qat2VsTorchSte2Bit1Thread: cnn.qat1.samplesPerSecond / (t1.train_2bit_samples_per_s ?? NaN),
    };
    log(
      `PyTorch small CNN   : float ${t1.train_samples_per_s.toFixed(0)} samples/s (1 thread), ${
        tN.train_samples_per_s.toFixed(0)
      } (${threads}); 2-bit STE ${t1.train_2bit_samples_per_s?.toFixed(0)} (1 thread)`,
    );
    log(
      `ratios small CNN    : float ${
        cnnRatios.floatVsTorch1Thread.toFixed(2)
      }x PyTorch (1 thread; ${
        cnnRatios.floatQgtKernelsVsTorch1Thread.toFixed(2)
      }x with qgt's gradient kernels), ${
        cnnRatios.floatVsTorchSameThreads.toFixed(2)
      }x (${threads} threads each); QAT-2 ${
        cnnRatios.qat2VsTorchSte2Bit1Thread.toFixed(2)
      }x PyTorch's 2-bit STE (1 thread)`,
    );
  }
  if (f.json) {
    console.log(JSON.stringify({
      model: "mobilenet_v1_0.25_96x96x1",
      batch: 32,
      tfjs: tf.version.tfjs,
      deno: Deno.version.deno,
      train: {
        threads1: train1,
        threadsN: trainN,
        qgtKernels: { threads1: fast1, threadsN: fastN },
        quantized: quant,
      },
      inferMsPerBatch: { folded: inferFolded, unfolded: inferFloat },
      cpu,
      vwwLoad: vww,
      peakRssMiB: rss,
      runtime: rt,
      torch,
      ratios,
      smallCnn: { train: cnn, torch: torchCnn, ratios: cnnRatios },
    }));
  }
});

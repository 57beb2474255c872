/**
 * `deno task bench --native`: float, QAT-2 and QGT-2 training steps of both benched networks on
 * the native (oneDNN) backend and, for scale, float on wasm, at 1 and N threads, with the
 * PyTorch peer measured in the same run, as ratios (the machine's other load moves absolute
 * figures; ratios measured together move less). N threads on native are N data-parallel
 * workers, each running oneDNN on one thread (measured faster than oneDNN's own OpenMP threads
 * in one worker: docs/performance.md).
 * @module
 */
import { nativeUnavailableReason } from "../backend/mod.ts";
import { loadOneDnn, setOneDnnThreads } from "../backend/onednn.ts";
import { type Net, NETS, randomBatch, torchPeer, trainSpeed } from "./bench_train.ts";

type Speed = Awaited<ReturnType<typeof trainSpeed>>;

/** One network's figures. */
export interface NativeNetFigures {
  net: Net;
  native: { float1: Speed; floatN: Speed; qat2N: Speed; qgt2N: Speed };
  /** Float with the threads inside the kernels: 1 worker at N, and N workers at N each. */
  kernelThreads: { oneWorker: Speed; nWorkers: Speed };
  wasm: { floatN: Speed };
  torch: { float1: number; floatN: number; ste2bitN?: number } | { skipped: string };
  ratios?: Record<string, number>;
}

/**
 * Measures the native backend against PyTorch (see the module doc); `{ skipped }` without it.
 *
 * @example
 * ```ts ignore
 * const r = await benchNative(2, 3, 12, console.log);
 * ```
 */
export async function benchNative(
  threads: number,
  warmup: number,
  steps: number,
  log: (s: string) => void,
): Promise<{ skipped: string } | { onednn: string; isa: string; nets: NativeNetFigures[] }> {
  const why = await nativeUnavailableReason();
  if (why) {
    log(`native backend skipped: ${why}`);
    return { skipped: why };
  }
  const d = await loadOneDnn();
  if (!d.ok) return { skipped: d.why };
  log(
    `native backend: oneDNN ${d.version} (${d.isa}); ${threads} threads = ${threads} data-parallel workers`,
  );
  const nets: NativeNetFigures[] = [];
  for (const net of Object.keys(NETS) as Net[]) {
    const { batch, shape, classes } = NETS[net];
    const b = randomBatch(batch, 5, [...shape], classes);
    const run = (th: number, method: "float" | "qat-2" | "qgt-2", backend: "native" | "wasm") =>
      trainSpeed(th, warmup, steps, b, method, net, false, "tfjs", backend);
    const native = {
      float1: await run(1, "float", "native"),
      floatN: await run(threads, "float", "native"),
      qat2N: await run(threads, "qat-2", "native"),
      qgt2N: await run(threads, "qgt-2", "native"),
    };
    await setOneDnnThreads(threads);
    const kernelThreads = {
      oneWorker: await run(1, "float", "native"),
      nWorkers: await run(threads, "float", "native"),
    };
    await setOneDnnThreads(1);
    const wasm = { floatN: await run(threads, "float", "wasm") };
    const peer = await torchPeer(warmup, steps, threads, net);
    const torch = "threads" in peer
      ? {
        float1: peer.threads["1"].train_samples_per_s,
        floatN: peer.threads[String(threads)].train_samples_per_s,
        ste2bitN: peer.threads[String(threads)].train_2bit_samples_per_s,
      }
      : peer;
    const sps = (s: Speed) => s.samplesPerSecond;
    const ratios = "float1" in torch
      ? {
        float1VsTorch1: sps(native.float1) / torch.float1,
        floatNVsTorchN: sps(native.floatN) / torch.floatN,
        qat2OfFloat: sps(native.qat2N) / sps(native.floatN),
        qgt2OfFloat: sps(native.qgt2N) / sps(native.floatN),
        nativeVsWasmN: sps(native.floatN) / sps(wasm.floatN),
        kernelThreadsVsTorchN: sps(kernelThreads.oneWorker) / torch.floatN,
        bothVsTorchN: sps(kernelThreads.nWorkers) / torch.floatN,
      }
      : undefined;
    log(
      `${NETS[net].label}: native float ${sps(native.float1).toFixed(0)} samples/s (1 thread), ${
        sps(native.floatN).toFixed(0)
      } (${threads}); QAT-2 ${sps(native.qat2N).toFixed(0)}, QGT-2 ${
        sps(native.qgt2N).toFixed(0)
      } (${threads}); wasm float ${sps(wasm.floatN).toFixed(0)} (${threads})\n` +
        `  threads inside the kernels: 1 worker at ${threads} ${
          sps(kernelThreads.oneWorker).toFixed(0)
        } samples/s; ${threads} workers at ${threads} each ${
          sps(kernelThreads.nWorkers).toFixed(0)
        }`,
    );
    if (ratios && "float1" in torch) {
      log(
        `  PyTorch (same run): ${torch.float1.toFixed(0)} samples/s (1 thread), ${
          torch.floatN.toFixed(0)
        } (${threads}); native/PyTorch ${ratios.float1VsTorch1.toFixed(2)}x (1 thread), ${
          ratios.floatNVsTorchN.toFixed(2)
        }x (${threads}); QAT-2 ${(ratios.qat2OfFloat * 100).toFixed(0)} %, QGT-2 ${
          (ratios.qgt2OfFloat * 100).toFixed(0)
        } % of float; native/wasm ${ratios.nativeVsWasmN.toFixed(2)}x; kernel threads/PyTorch ${
          ratios.kernelThreadsVsTorchN.toFixed(2)
        }x, both ${ratios.bothVsTorchN.toFixed(2)}x (${threads})`,
      );
    } else log(`  PyTorch peer skipped: ${(torch as { skipped: string }).skipped}`);
    nets.push({ net, native, kernelThreads, wasm, torch, ...(ratios ? { ratios } : {}) });
  }
  return { onednn: d.version, isa: d.isa, nets };
}

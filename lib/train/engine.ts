/**
 * Gradient engines: where `computeGrads` runs. `LocalEngine` runs it on the
 * calling thread; `ParallelEngine` splits each batch into shards computed at
 * once by the calling thread and by worker threads (one tfjs instance each),
 * then combines them with `combineResults`. With k shards BatchNorm sees k
 * smaller batches in training (as in data-parallel PyTorch without SyncBN);
 * moving statistics are combined exactly. A given worker count is
 * deterministic; different counts give slightly different numbers.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import type { ArchSpec } from "../models/spec.ts";
import type { Model } from "../models/model.ts";
import { type Batch, splitBatch } from "../data/dataset.ts";
import type { BackendName } from "../backend/mod.ts";
import { addPhaseTime, profilePhase, profiling } from "../backend/profile.ts";
import type { GradKernels } from "../backend/conv_grad_kernel.ts";
import {
  combineResults,
  computeGrads,
  type GradResult,
  type SetupRef,
  stateVariables,
  type StepSetup,
} from "./step.ts";

/** Computes gradients for a batch given all state values. */
export interface GradEngine {
  /** `weights` are all state variables' values in {@link stateVariables} order. */
  compute(batch: Batch, weights: Float32Array[], vars: Record<string, number>): Promise<GradResult>;
  close(): Promise<void>;
}

/**
 * Copies state values into the model's variables.
 *
 * @example
 * ```ts
 * import { createModel, smallCnn } from "../models/mod.ts";
 * import { stateVariables } from "./step.ts";
 * import { assignState } from "./engine.ts";
 * const m = createModel(smallCnn(), 1);
 * const zeros = stateVariables(m, {}).map((s) => new Float32Array(s.v.size));
 * assignState(m, {}, zeros);
 * if (m.params.get("conv1/kernel")!.dataSync().some((x) => x !== 0)) throw new Error();
 * ```
 */
export function assignState(model: Model, setup: StepSetup, weights: Float32Array[]): void {
  const state = stateVariables(model, setup);
  if (weights.length !== state.length) {
    throw new Error(`internal: ${weights.length} weight arrays for ${state.length} variables`);
  }
  tf.tidy(() => state.forEach((s, i) => s.v.assign(tf.tensor(weights[i], s.v.shape))));
}

/**
 * Runs on the calling thread's active backend.
 *
 * @example
 * ```ts ignore
 * const engine = new LocalEngine(model, setup);
 * const r = await engine.compute(batch, weights, {});
 * ```
 */
export class LocalEngine implements GradEngine {
  constructor(private model: Model, private setup: StepSetup) {}
  compute(
    batch: Batch,
    weights: Float32Array[],
    vars: Record<string, number>,
  ): Promise<GradResult> {
    profilePhase("upload", () => assignState(this.model, this.setup, weights));
    return Promise.resolve(computeGrads(this.model, this.setup, batch, vars));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Messages to a worker. */
export type WorkerRequest =
  | {
    type: "init";
    arch: ArchSpec;
    backend: BackendName;
    setup?: SetupRef;
    stateNames: string[];
    gradKernels: GradKernels;
  }
  | { type: "step"; batch: Batch; weights: Float32Array[]; vars: Record<string, number> };

/** Messages from a worker. */
export type WorkerReply =
  | { type: "ready" }
  | { type: "result"; result: GradResult; /** the worker's time in computeGrads */ ms: number }
  | { type: "error"; message: string };

class WorkerClient {
  private worker: Worker;
  private pending: ((r: WorkerReply) => void) | null = null;
  private failed: string | null = null;
  constructor() {
    this.worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
    this.worker.onmessage = (e: MessageEvent<WorkerReply>) => {
      const p = this.pending;
      this.pending = null;
      p?.(e.data);
    };
    this.worker.onerror = (e) => {
      e.preventDefault();
      this.failed = e.message;
      const p = this.pending;
      this.pending = null;
      p?.({ type: "error", message: e.message });
    };
  }
  request(msg: WorkerRequest, transfer: Transferable[] = []): Promise<WorkerReply> {
    if (this.failed) return Promise.reject(new Error(`training worker failed: ${this.failed}`));
    if (this.pending) throw new Error("internal: worker request while another is pending");
    return new Promise((resolve, reject) => {
      this.pending = (r) =>
        r.type === "error" ? reject(new Error(`training worker: ${r.message}`)) : resolve(r);
      this.worker.postMessage(msg, transfer);
    });
  }
  terminate(): void {
    this.worker.terminate();
  }
}

/**
 * Data parallelism over `workers` threads: shard 0 of each batch runs on the
 * calling thread, shards 1..k-1 on worker threads.
 *
 * @example
 * ```ts ignore
 * const engine = await ParallelEngine.create(model, setup, setupRef, 2, "wasm");
 * const r = await engine.compute(batch, weights, {});
 * await engine.close();
 * ```
 */
export class ParallelEngine implements GradEngine {
  private constructor(
    private local: LocalEngine,
    private workers: WorkerClient[],
  ) {}

  static async create(
    model: Model,
    setup: StepSetup,
    setupRef: SetupRef | undefined,
    threads: number,
    backend: BackendName,
    gradKernels: GradKernels = "tfjs",
  ): Promise<ParallelEngine> {
    const stateNames = stateVariables(model, setup).map((s) => s.name);
    const workers = Array.from({ length: threads - 1 }, () => new WorkerClient());
    try {
      await Promise.all(
        workers.map((w) =>
          w.request({
            type: "init",
            arch: model.arch,
            backend,
            setup: setupRef,
            stateNames,
            gradKernels,
          })
        ),
      );
    } catch (e) {
      workers.forEach((w) => w.terminate());
      throw e;
    }
    return new ParallelEngine(new LocalEngine(model, setup), workers);
  }

  async compute(
    batch: Batch,
    weights: Float32Array[],
    vars: Record<string, number>,
  ): Promise<GradResult> {
    const shards = splitBatch(batch, this.workers.length + 1);
    const remote = this.workers.map((w, i) => {
      const s = shards[i + 1];
      const copy: Batch = { x: s.x.slice(), y: s.y.slice(), n: s.n };
      return w.request({ type: "step", batch: copy, weights, vars }, [
        copy.x.buffer as ArrayBuffer,
        copy.y.buffer as ArrayBuffer,
      ]);
    });
    const mine = await this.local.compute(shards[0], weights, vars);
    const t0 = profiling() ? performance.now() : 0;
    const replies = await Promise.all(remote);
    if (profiling()) addPhaseTime("wait-for-worker", performance.now() - t0);
    const parts = [mine];
    for (const r of replies) {
      if (r.type !== "result") throw new Error(`internal: unexpected worker reply ${r.type}`);
      // concurrent with the calling thread's phases: not part of the step's wall time
      addPhaseTime("worker: upload + gradients (in parallel)", r.ms);
      parts.push(r.result);
    }
    return profilePhase("combine-shards", () => combineResults(parts));
  }

  close(): Promise<void> {
    this.workers.forEach((w) => w.terminate());
    return Promise.resolve();
  }
}

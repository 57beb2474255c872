/**
 * The training loop: epochs of seeded shuffled, augmented batches; loss =
 * cross-entropy + the setup's extra terms; gradients from a local or
 * data-parallel engine; per-variable gradient transforms; a host-side
 * optimizer with a learning-rate schedule; BatchNorm moving statistics; and
 * per-epoch evaluation and callbacks (for checkpoints and tables).
 * @module
 */
import { type Model } from "../models/model.ts";
import {
  type AugmentSpec,
  type Batch,
  type Dataset,
  datasetSize,
  epochOrder,
  makeBatch,
  type Normalization,
} from "../data/dataset.ts";
import type { BackendName } from "../backend/mod.ts";
import { profilePhase } from "../backend/profile.ts";
import { type GradKernels, setGradKernels } from "../backend/conv_grad_kernel.ts";
import {
  createOptimizer,
  type Optimizer,
  type OptimizerSpec,
  type OptimizerState,
} from "./optim.ts";
import { learningRate, type ScheduleSpec } from "./schedule.ts";
import { assignState, type GradEngine, LocalEngine, ParallelEngine } from "./engine.ts";
import {
  bnLayers,
  boundTransforms,
  type GradResult,
  loadSetup,
  type SetupRef,
  stateVariables,
  type StepSetup,
} from "./step.ts";
import { BN_MOMENTUM, updateMovingStats } from "../models/model.ts";
import { layerShapes } from "../models/spec.ts";
import { consoleProgress, formatDuration, type ProgressSink } from "../util/progress.ts";
import { type EvalResult, evaluate } from "../eval/evaluate.ts";

/** Training hyper-parameters. */
export interface TrainConfig {
  epochs: number;
  batchSize: number;
  optimizer: OptimizerSpec;
  schedule: ScheduleSpec;
  augment?: AugmentSpec;
  normalize?: Normalization;
  /** Seeds shuffling and augmentation. */
  seed: number;
  /** Data-parallel threads (1 = the calling thread only). */
  threads?: number;
  /** BatchNorm moving-statistics momentum (default {@link BN_MOMENTUM}). */
  bnMomentum?: number;
  /** Drop the last incomplete batch (default true). */
  dropLast?: boolean;
  /**
   * Gradient kernels of the wasm backend (default "tfjs", the numbers of every
   * run before the option; "qgt": qgt's faster wasm kernels, see
   * `lib/backend/conv_grad_kernel.ts`).
   */
  gradKernels?: GradKernels;
}

/** A per-variable gradient transform, applied in place after combining shards. */
export type GradTransform = (name: string, grad: Float32Array, weight: Float32Array) => void;

/** Metrics of one finished epoch. */
export interface EpochMetrics {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  terms: Record<string, number>;
  lr: number;
  samplesPerSecond: number;
  seconds: number;
  val?: EvalResult;
}

/** Options of {@link train}. */
export interface TrainOptions {
  model: Model;
  train: Dataset;
  val?: Dataset;
  config: TrainConfig;
  backend?: BackendName;
  /** Step setup (transforms, extra loss terms); a `SetupRef` also works in workers. */
  setup?: StepSetup | SetupRef;
  gradTransforms?: GradTransform[];
  /** Per-step values passed to the setup (e.g. a regularizer's lambda). */
  stepVars?: (step: number, epoch: number, totalSteps: number) => Record<string, number>;
  /** Epoch to start from (resuming); the model must hold that epoch's weights. */
  startEpoch?: number;
  optimizerState?: OptimizerState;
  /**
   * Called after each epoch (after evaluation) with the optimizer state and the
   * values of the setup's extra variables by name (e.g. learned step sizes), for checkpoints.
   */
  onEpochEnd?: (
    m: EpochMetrics,
    optimizerState: OptimizerState,
    extraVars: Record<string, Float32Array>,
  ) => void | Promise<void>;
  progress?: ProgressSink;
  /** Label for progress lines (e.g. the variant). */
  label?: string;
}

/** Outcome of {@link train}. */
export interface TrainResult {
  history: EpochMetrics[];
  steps: number;
}

function isRef(s: StepSetup | SetupRef | undefined): s is SetupRef {
  return !!s && typeof (s as SetupRef).module === "string";
}

/** Options of {@link Trainer.create}. */
export interface TrainerOptions {
  model: Model;
  optimizer: OptimizerSpec;
  threads?: number;
  bnMomentum?: number;
  backend?: BackendName;
  setup?: StepSetup | SetupRef;
  gradTransforms?: GradTransform[];
  optimizerState?: OptimizerState;
  /** Gradient kernels of every thread's wasm backend (default "tfjs"). */
  gradKernels?: GradKernels;
}

/**
 * One model's training state: host copies of all variables, the optimizer and
 * the gradient engine. `step` runs one update; `syncModel` copies the host
 * weights into the model's tf variables (for evaluation and checkpoints).
 *
 * @example
 * ```ts ignore
 * const t = await Trainer.create({ model, optimizer: { type: "adam" } });
 * const r = await t.step(batch, 1e-3, {});
 * t.syncModel();
 * await t.close();
 * ```
 */
export class Trainer {
  private byName?: Map<string, Float32Array>;

  private constructor(
    readonly model: Model,
    readonly setup: StepSetup,
    private engine: GradEngine,
    private names: string[],
    private weights: Float32Array[],
    private trainIdx: number[],
    private opt: Optimizer,
    private bnIdx: [number, number, number][],
    private bnMomentum: number,
    private gradTransforms: GradTransform[],
    private ownsSetup: boolean,
  ) {}

  static async create(o: TrainerOptions): Promise<Trainer> {
    const setupRef = isRef(o.setup) ? o.setup : undefined;
    const setup: StepSetup = isRef(o.setup) ? await loadSetup(o.model, o.setup) : (o.setup ?? {});
    const state = stateVariables(o.model, setup);
    const weights = state.map((s) => s.v.dataSync().slice() as Float32Array);
    const trainIdx = state.flatMap((s, i) => (s.trainable ? [i] : []));
    const extra = new Set((setup.extraVars ?? []).map(([n]) => n));
    const extraLr = setup.extraLrScale ?? 1;
    const opt = createOptimizer(
      o.optimizer,
      trainIdx.map((i) => weights[i].length),
      extraLr === 1 ? undefined : trainIdx.map((i) => (extra.has(state[i].name) ? extraLr : 1)),
    );
    if (o.optimizerState) {
      opt.setState(o.optimizerState);
      if (o.optimizerState.setup?.length) {
        if (!setup.setState) throw new Error("train: saved setup state, but the setup keeps none");
        setup.setState(o.optimizerState.setup);
      }
    }
    const shapes = layerShapes(o.model.arch);
    const bnIdx = bnLayers(o.model).map((l): [number, number, number] => {
      const out = shapes.get(l)!.out;
      return [
        state.findIndex((s) => s.name === `${l}/mean`),
        state.findIndex((s) => s.name === `${l}/variance`),
        out[0] * out[1],
      ];
    });
    const threads = o.threads ?? 1;
    const kernels = o.gradKernels ?? "tfjs";
    setGradKernels(kernels);
    const engine: GradEngine = threads > 1
      ? await ParallelEngine.create(o.model, setup, setupRef, threads, o.backend ?? "wasm", kernels)
      : new LocalEngine(o.model, setup);
    return new Trainer(
      o.model,
      setup,
      engine,
      state.map((s) => s.name),
      weights,
      trainIdx,
      opt,
      bnIdx,
      o.bnMomentum ?? BN_MOMENTUM,
      o.gradTransforms ?? [],
      setupRef !== undefined,
    );
  }

  /** One update on `batch` with learning rate `lr`; returns the batch's loss, terms and accuracy. */
  async step(batch: Batch, lr: number, vars: Record<string, number>): Promise<GradResult> {
    const r = await this.engine.compute(batch, this.weights, vars);
    if (!isFinite(r.loss)) throw new Error(`train: loss became ${r.loss}`);
    profilePhase("optimizer", () => {
      for (const t of this.gradTransforms) {
        this.trainIdx.forEach((wi, gi) => t(this.names[wi], r.grads[gi], this.weights[wi]));
      }
      this.opt.step(this.trainIdx.map((i) => this.weights[i]), r.grads, lr);
    });
    const post = this.setup.postStep;
    if (post) {
      // the arrays are updated in place, never replaced, so one map serves every step
      this.byName ??= new Map(this.names.map((n, i) => [n, this.weights[i]]));
      const stats = profilePhase("post-step", () => post(this.byName!, lr, vars));
      if (stats) r.terms = { ...r.terms, ...stats };
    }
    profilePhase("bn-statistics", () =>
      this.bnIdx.forEach(([mi, vi, hw], k) =>
        updateMovingStats(
          this.weights[mi],
          this.weights[vi],
          r.bnStats[2 * k],
          r.bnStats[2 * k + 1],
          r.n * hw,
          this.bnMomentum,
        )
      ));
    return r;
  }

  /** Copies the host weights into the model's variables. */
  syncModel(): void {
    assignState(this.model, this.setup, this.weights);
  }

  /** Copies of the host values of the setup's extra variables, by name. */
  extraValues(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const [name] of this.setup.extraVars ?? []) {
      out[name] = this.weights[this.names.indexOf(name)].slice();
    }
    return out;
  }

  optimizerState(): OptimizerState {
    const s = this.opt.getState();
    const setup = this.setup.state?.();
    return setup?.length ? { ...s, setup } : s;
  }

  close(): Promise<void> {
    // a setup the trainer built from a reference is its own to free
    if (this.ownsSetup) this.setup.dispose?.();
    return this.engine.close();
  }
}

/**
 * Training steps in an epoch of `n` images in batches of `batchSize`: the last partial batch is
 * dropped unless `dropLast` is false.
 *
 * @example
 * ```ts
 * import { epochSteps } from "./loop.ts";
 * if (epochSteps(100, 32) !== 3 || epochSteps(100, 32, false) !== 4) throw new Error();
 * ```
 */
export function epochSteps(n: number, batchSize: number, dropLast = true): number {
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/**
 * Trains `model` in place: epochs of seeded shuffled and augmented batches,
 * the learning-rate schedule, per-epoch evaluation and callbacks.
 *
 * @example
 * ```ts ignore
 * const res = await train({ model, train: ds, config: { epochs: 1, batchSize: 32,
 *   optimizer: { type: "adam" }, schedule: { type: "constant", lr: 1e-3 }, seed: 1 } });
 * ```
 */
export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { model, config } = opts;
  const progress = opts.progress ?? consoleProgress();
  const trainer = await Trainer.create({
    model,
    optimizer: config.optimizer,
    threads: config.threads,
    bnMomentum: config.bnMomentum,
    backend: opts.backend,
    gradKernels: config.gradKernels,
    setup: opts.setup,
    gradTransforms: opts.gradTransforms,
    optimizerState: opts.optimizerState,
  });
  const setup = trainer.setup;
  const n = datasetSize(opts.train);
  const stepsPerEpoch = epochSteps(n, config.batchSize, config.dropLast ?? true);
  if (stepsPerEpoch < 1) {
    await trainer.close();
    throw new Error(
      `train: ${n} training images are fewer than one batch (train.batchSize ${config.batchSize})`,
    );
  }
  const totalSteps = stepsPerEpoch * config.epochs;
  const firstEpoch = opts.startEpoch ?? 0;
  const history: EpochMetrics[] = [];
  const label = opts.label ? `${opts.label} ` : "";
  const t0 = performance.now();
  let done = 0;
  try {
    for (let epoch = firstEpoch; epoch < config.epochs; epoch++) {
      const order = epochOrder(n, config.seed, epoch, true);
      const te = performance.now();
      let lossSum = 0, correct = 0, seen = 0, lr = 0;
      const termSums: Record<string, number> = {};
      for (let s = 0; s < stepsPerEpoch; s++) {
        const ts = performance.now();
        const step = epoch * stepsPerEpoch + s;
        const idx = order.subarray(s * config.batchSize, Math.min(n, (s + 1) * config.batchSize));
        const batch = makeBatch(opts.train, idx, {
          normalize: config.normalize,
          augment: config.augment,
          seed: config.seed,
          epoch,
        });
        const vars = opts.stepVars?.(step, epoch, totalSteps) ?? {};
        lr = learningRate(config.schedule, step, totalSteps);
        const r = await trainer.step(batch, lr, vars);
        // one turn of the event loop per step, so that Ctrl-C (a signal listener) acts within a
        // step, not at the end of the epoch (a one-thread step never waits on anything else)
        await new Promise((resolve) => setTimeout(resolve, 0));
        lossSum += r.loss * r.n;
        correct += r.correct;
        seen += r.n;
        for (const [k, v] of Object.entries(r.terms)) termSums[k] = (termSums[k] ?? 0) + v * r.n;
        done++;
        progress.tick?.((performance.now() - ts) / 1000);
        const elapsed = (performance.now() - t0) / 1000;
        const sps = seen / ((performance.now() - te) / 1000);
        const eta = (elapsed / done) * (totalSteps - (step + 1));
        progress.status(
          `${label}epoch ${epoch + 1}/${config.epochs} step ${s + 1}/${stepsPerEpoch} ` +
            `loss ${(lossSum / seen).toFixed(4)} acc ${(correct / seen * 100).toFixed(1)}% ` +
            `${sps.toFixed(0)} samples/s ETA ${formatDuration(eta)}`,
        );
      }
      trainer.syncModel();
      const seconds = (performance.now() - te) / 1000;
      const terms: Record<string, number> = {};
      for (const [k, v] of Object.entries(termSums)) terms[k] = v / seen;
      const m: EpochMetrics = {
        epoch: epoch + 1,
        trainLoss: lossSum / seen,
        trainAccuracy: correct / seen,
        terms,
        lr,
        samplesPerSecond: seen / seconds,
        seconds,
      };
      if (opts.val) {
        const vars = opts.stepVars?.(totalSteps, epoch, totalSteps) ?? {};
        m.val = evaluate(model, opts.val, {
          normalize: config.normalize,
          ...boundTransforms(setup, vars),
        });
      }
      history.push(m);
      progress.line(
        `${label}epoch ${epoch + 1}/${config.epochs} loss ${m.trainLoss.toFixed(4)} ` +
          `acc ${(m.trainAccuracy * 100).toFixed(2)}%` +
          (m.val ? ` val_acc ${(m.val.accuracy * 100).toFixed(2)}%` : "") +
          ` ${m.samplesPerSecond.toFixed(0)} samples/s ${formatDuration(seconds)}`,
      );
      await opts.onEpochEnd?.(m, trainer.optimizerState(), trainer.extraValues());
    }
  } finally {
    await trainer.close();
  }
  return { history, steps: done };
}

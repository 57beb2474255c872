/**
 * The training phases of a variant, planned from its resolved settings alone
 * (pure: no data, no tensors). Experiments stay plain data; this is the only
 * place that turns a variant's method (method.ts) into training phases.
 *
 * - `float`: train the float network (`train.epochs`, `train.schedule`).
 * - `ptq`: no training (fold, calibrate and snap happen when the variant ends).
 * - `qat`: fold the float network, then fine-tune with fake-quantized weights
 *   and activations (STE) for `epochs` at `lr` (cosine). With
 *   `liveBatchNorm` the unfolded network fine-tunes (BatchNorm live) and is
 *   folded at the end; `from: "scratch"` trains it for `train.epochs` on
 *   `train.schedule`.
 * - `qgt`: from the float network, train `epochs` with the QGT
 *   regularizer under the lambda schedule. With `fakeQuant` the network
 *   is folded first and weights and activations are fake-quantized (STE) as in
 *   QAT, the regularizer pulling the latent weights onto the grid they are
 *   quantized to; without it the phase trains the float network (BatchNorm
 *   live) and relies on the regularizer alone. Then fold and fine-tune
 *   `finetuneEpochs` with fake quantization and the regularizer at its
 *   final lambda; 0 snaps directly.
 * - `mixed`: the phases of the method it wraps.
 * @module
 */
import type { ScheduleSpec } from "../train/schedule.ts";
import type { TrainingSetupOptions } from "../methods/training_setup.ts";
import { lambdaAt, type LambdaSchedule } from "../methods/lambda.ts";
import type { Method, QatMethod, QgtMethod } from "./method.ts";
import type { TrainDef } from "./schema.ts";

/** One training phase. */
export interface Phase {
  name: string;
  /** Trains the BatchNorm-folded network (folded before the phase starts). */
  folded: boolean;
  epochs: number;
  schedule: ScheduleSpec;
  /** The quantized training step's options (fake quantization, regularizer), if any. */
  setup?: Omit<TrainingSetupOptions, "specs" | "activations"> & { activations?: boolean };
  lambda?: LambdaSchedule;
}

/** What planning reads of a variant. */
export interface PhaseSettings {
  train: TrainDef;
  method: Method;
}

/** The first phase's schedule: `train.schedule` from scratch, else a cosine fine-tuning at `lr`. */
function startSchedule(m: QatMethod | QgtMethod, train: TrainDef): ScheduleSpec {
  return m.from === "scratch" ? train.schedule : fineTuneSchedule(m, train);
}

function fineTuneSchedule(m: QatMethod | QgtMethod, train: TrainDef): ScheduleSpec {
  return { type: "cosine", lr: m.lr ?? train.schedule.lr / 10 };
}

function qatPhases(m: QatMethod, train: TrainDef): Phase[] {
  return [{
    name: "qat",
    folded: !m.liveBatchNorm,
    epochs: m.epochs ?? (m.from === "scratch" ? train.epochs : 2),
    schedule: startSchedule(m, train),
    setup: { fakeQuant: true, activations: !m.liveBatchNorm },
  }];
}

function qgtPhases(m: QgtMethod, train: TrainDef): Phase[] {
  const regularizer = m.regularizer;
  const phases: Phase[] = [{
    name: "qgt-reg",
    // with fake quantization the phase trains the folded network, as QAT does
    folded: m.fakeQuant && !m.liveBatchNorm,
    epochs: m.epochs ?? 2,
    schedule: startSchedule(m, train),
    setup: m.fakeQuant
      ? { fakeQuant: true, regularizer, activations: !m.liveBatchNorm }
      : { regularizer },
    lambda: m.lambda,
  }];
  if (m.finetuneEpochs > 0) {
    phases.push({
      name: "qgt-finetune",
      folded: true,
      epochs: m.finetuneEpochs,
      schedule: fineTuneSchedule(m, train),
      setup: { fakeQuant: true, regularizer, activations: true },
      lambda: { type: "constant", lambda: lambdaAt(m.lambda, 1) },
    });
  }
  return phases;
}

/**
 * The training phases of a variant.
 *
 * @example
 * ```ts
 * import { resolveExperiment } from "./define.ts";
 * import { planPhases } from "./phases.ts";
 * import smoke from "../../experiments/smoke.ts";
 * const [float, ptq] = resolveExperiment(smoke, { set: ["train.epochs=3"] }).variants;
 * // float trains for train.epochs in one phase; PTQ does not train
 * if (planPhases(float)[0].epochs !== 3 || planPhases(ptq).length !== 0) throw new Error();
 * ```
 */
export function planPhases(v: PhaseSettings): Phase[] {
  const m = v.method;
  switch (m.mode) {
    case "float":
      return [{ name: "float", folded: false, epochs: v.train.epochs, schedule: v.train.schedule }];
    case "ptq":
      return [];
    case "qat":
      return qatPhases(m, v.train);
    case "qgt":
      return qgtPhases(m, v.train);
    case "mixed":
      return planPhases({ train: v.train, method: m.base });
  }
}

/**
 * Whether a quantized variant's last training phase trains the unfolded
 * network (BatchNorm live, folded only at the end, so its statistics can be
 * re-estimated first): read off {@link planPhases}.
 *
 * @example
 * ```ts
 * import { endsWithLiveBatchNorm } from "./phases.ts";
 * import { methodOf } from "./method.ts";
 * const train = { epochs: 1, batchSize: 8, optimizer: { type: "adam" as const }, schedule: { type: "constant" as const, lr: 1e-3 } };
 * const qat = methodOf({ mode: "qat", liveBatchNorm: true }, "x");
 * if (!endsWithLiveBatchNorm({ train, method: qat })) throw new Error();
 * const qgt = methodOf({ mode: "qgt", liveBatchNorm: true, fakeQuant: false }, "x");
 * if (endsWithLiveBatchNorm({ train, method: qgt })) throw new Error();
 * ```
 */
export function endsWithLiveBatchNorm(v: PhaseSettings): boolean {
  if (v.method.mode === "float" || v.method.mode === "ptq") return false;
  const last = planPhases(v).at(-1);
  return last !== undefined && !last.folded;
}

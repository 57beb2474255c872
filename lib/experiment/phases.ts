/**
 * The training phases of a variant, planned from its resolved settings alone
 * (pure: no data, no tensors). Experiments stay plain data; this is the only
 * place that turns `qgt.mode` into a sequence of training phases.
 *
 * - `float`: train the float network (`train.epochs`, `train.schedule`).
 * - `ptq`: no training (fold, calibrate and snap happen when the variant ends).
 * - `qat`: fold the float network, then fine-tune with fake-quantized weights
 *   and activations (STE) for `qgt.epochs` at `qgt.lr` (cosine). With
 *   `liveBatchNorm` the unfolded network fine-tunes (BatchNorm live) and is
 *   folded at the end; `from: "scratch"` trains it for `train.epochs`.
 * - `qgt`: from the float network, train `qgt.epochs` with the QGT
 *   regularizer under the lambda schedule. With `qgt.fakeQuant` the network
 *   is folded first and weights and activations are fake-quantized (STE) as in
 *   QAT, the regularizer pulling the latent weights onto the grid they are
 *   quantized to; without it the phase trains the float network (BatchNorm
 *   live) and relies on the regularizer alone. Then fold and fine-tune
 *   `qgt.finetuneEpochs` (default 0 with `fakeQuant`, else 1) with fake
 *   quantization and the regularizer at its final lambda; 0 snaps directly.
 * @module
 */
import type { ScheduleSpec } from "../train/schedule.ts";
import type { TrainingSetupOptions } from "../methods/training_setup.ts";
import { lambdaAt, type LambdaSchedule } from "../methods/lambda.ts";
import type { QgtDef, TrainDef } from "./schema.ts";

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
  qgt: QgtDef;
}

function fineTuneSchedule(v: PhaseSettings): ScheduleSpec {
  return { type: "cosine", lr: v.qgt.lr ?? v.train.schedule.lr / 10 };
}

function qatPhases(v: PhaseSettings): Phase[] {
  const q = v.qgt;
  if (q.from === "scratch") {
    return [{
      name: "qat",
      folded: false,
      epochs: q.epochs ?? v.train.epochs,
      schedule: v.train.schedule,
      setup: { fakeQuant: true },
    }];
  }
  return [{
    name: "qat",
    folded: !q.liveBatchNorm,
    epochs: q.epochs ?? 2,
    schedule: fineTuneSchedule(v),
    setup: { fakeQuant: true, activations: !q.liveBatchNorm },
  }];
}

function qgtPhases(v: PhaseSettings): Phase[] {
  const q = v.qgt;
  const lam = q.lambda ?? { type: "linear", from: 0, to: 1 };
  const ste = q.fakeQuant ?? false;
  const regularizer = q.regularizer ?? "grid";
  // BatchNorm stays live (batch statistics) when asked, or when training from scratch
  const live = q.liveBatchNorm === true || q.from === "scratch";
  const phases: Phase[] = [{
    name: "qgt-reg",
    // with fake quantization the phase trains the folded network, as QAT does
    folded: ste && !live,
    epochs: q.epochs ?? 2,
    schedule: q.from === "scratch" ? v.train.schedule : fineTuneSchedule(v),
    setup: ste ? { fakeQuant: true, regularizer, activations: !live } : { regularizer },
    lambda: lam,
  }];
  const ft = q.finetuneEpochs ?? (ste ? 0 : 1);
  if (ft > 0) {
    phases.push({
      name: "qgt-finetune",
      folded: true,
      epochs: ft,
      schedule: fineTuneSchedule(v),
      setup: { fakeQuant: true, regularizer, activations: true },
      lambda: { type: "constant", lambda: lambdaAt(lam, 1) },
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
  switch (v.qgt.mode) {
    case "float":
      return [{ name: "float", folded: false, epochs: v.train.epochs, schedule: v.train.schedule }];
    case "ptq":
      return [];
    case "qat":
      return qatPhases(v);
    case "qgt":
      return qgtPhases(v);
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
 * const train = { epochs: 1, batchSize: 8, optimizer: { type: "adam" as const }, schedule: { type: "constant" as const, lr: 1e-3 } };
 * if (!endsWithLiveBatchNorm({ train, qgt: { mode: "qat", liveBatchNorm: true } })) throw new Error();
 * if (endsWithLiveBatchNorm({ train, qgt: { mode: "qgt", liveBatchNorm: true, fakeQuant: false } })) throw new Error();
 * ```
 */
export function endsWithLiveBatchNorm(v: PhaseSettings): boolean {
  if (v.qgt.mode !== "qat" && v.qgt.mode !== "qgt") return false;
  const last = planPhases(v).at(-1);
  return last !== undefined && !last.folded;
}

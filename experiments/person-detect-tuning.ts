/**
 * QGT settings for the person detector tuned without its validation images:
 * person-detect's float network, data and 2-bit fine-tuning, but validated on
 * 4,000 **tuning** images of the synthetic stream (images 20000..23999, the
 * `valOffset` option), which person-detect neither trains on (0..7999) nor
 * reports (8000..9999), and which `deno task seeds --val-count 10000`'s fresh
 * test images (10000..19999) do not overlap. Compared against QAT-2 on the
 * same batches: the version-3 setting (decoupled pull ramped to lambda 30
 * from half-way, 2 epochs), a weaker and a stronger pull, and 4 fine-tuning
 * epochs for both (the Fashion-MNIST holdout found QGT gaining from longer
 * fine-tuning while QAT did not). Run with `--seed 1` and `--seed 2`; the
 * README lists what each reached.
 *
 * Version 2 adds iterative weight freezing (Nagel et al. 2022, `qgt.freeze`):
 * weights whose 2-bit level keeps flipping back and forth are frozen at their
 * average level; with QAT alone, and with the version-3 pull (threshold 0.02
 * and 0.01, EMA momentum 0.01 as in the paper). Variants of version 1 keep
 * their settings, so their results are those of version 1's runs.
 *
 * Version 3 adds BatchNorm re-estimation (`qgt.bnReestimate`, Nagel et al.
 * 2022, §4.1): before folding, the moving statistics are recomputed on 4,096
 * training images with the final 2-bit weights; for QAT-2 and for the
 * version-3 QGT-2 setting. Earlier variants keep their settings (and results).
 *
 * Version 4 trains the 2-bit pair from scratch instead of fine-tuning the
 * float network: QAT-2 and QGT-2 each train 10 epochs (the float network's
 * schedule, BatchNorm live), QGT with the decoupled pull ramped from
 * half-way to lambda 3. The pull per step is lr x lambda, and the training
 * lr (2e-3) is 10x the fine-tuning lr, so lambda 3 here pulls as hard per
 * step as lambda 30 does in fine-tuning.
 *
 * Version 5 asks why person-detect v4's lsq-qat-2 (learned step sizes) fell
 * behind qat-2 on the fresh images while it was ahead on Fashion-MNIST. Its
 * exported steps ended about 1.3x the squared-error (MSE) step of the same
 * channels in qat-2 (Fashion-MNIST: 1.04-1.15x), starting from the paper's
 * 2 mean|w| / sqrt(qmax), about 1.55x: with Adam a step moves by at most
 * about the learning rate per update, and 500 updates at the fine-tuning lr
 * (2e-4, cosine) are too few to get there. Two remedies, on the paired
 * batches: start from the MSE step (`lsqInit: "mse"`), and let the steps
 * learn 10x faster (`lsqStepLr: 10`); both together; and the version-4
 * setting for reference.
 */
import { defineExperiment } from "../lib/experiment/define.ts";
import personDetect, { qgtSettings } from "./person-detect.ts";

const pd = personDetect;
const qgt2 = (to: number, epochs = 2) => ({
  qgt: {
    ...qgtSettings(2),
    epochs,
    lambda: { type: "linear" as const, from: 0, to, start: 0.5 },
  },
});
const qat2 = (epochs = 2) => ({
  qgt: { mode: "qat" as const, bits: 2, epochs, liveBatchNorm: true },
});
const freeze = (threshold: number) => ({ freeze: { momentum: 0.01, threshold } });
const bnre = { bnReestimate: { images: 4096 } };
const scratch = { from: "scratch" as const, epochs: pd.train.epochs };
/** person-detect's lsq-qat-2 (QAT-2 with learned step sizes) with `extra` LSQ settings. */
const lsq = (extra: { lsqInit?: "paper" | "mse"; lsqStepLr?: number } = {}) => ({
  qgt: { ...pd.variants["lsq-qat-2"].qgt, ...extra },
});

export default defineExperiment({
  id: "person-detect-tuning",
  version: 5,
  description:
    "2-bit QGT settings against QAT-2 for the person detector, validated on 4,000 tuning images (20000..23999) no other run uses.",
  seed: pd.seed,
  dataset: {
    name: "synthetic-person",
    options: { trainCount: 8000, valCount: 4000, valOffset: 20000 },
  },
  architecture: pd.architecture,
  train: pd.train,
  qgt: { mode: "float" },
  variants: {
    float: {},
    "qat-2": qat2(),
    // the version-3 setting
    "qgt-2-dec30": qgt2(30),
    "qgt-2-dec10": qgt2(10),
    "qgt-2-dec100": qgt2(100),
    "qat-2-e4": qat2(4),
    "qgt-2-dec30-e4": qgt2(30, 4),
    "qat-2-frz02": { qgt: { ...qat2().qgt, ...freeze(0.02) } },
    "qgt-2-dec30-frz02": { qgt: { ...qgt2(30).qgt, ...freeze(0.02) } },
    "qgt-2-dec30-frz01": { qgt: { ...qgt2(30).qgt, ...freeze(0.01) } },
    "qat-2-bnre": { qgt: { ...qat2().qgt, ...bnre } },
    "qgt-2-dec30-bnre": { qgt: { ...qgt2(30).qgt, ...bnre } },
    "qat-2-scratch": { qgt: { ...qat2().qgt, ...scratch } },
    "qgt-2-dec3-scratch": { qgt: { ...qgt2(3).qgt, ...scratch } },
    "lsq-qat-2": lsq(),
    "lsq-qat-2-mse": lsq({ lsqInit: "mse" }),
    "lsq-qat-2-lr10": lsq({ lsqStepLr: 10 }),
    "lsq-qat-2-mse-lr10": lsq({ lsqInit: "mse", lsqStepLr: 10 }),
  },
  profiles: {},
});

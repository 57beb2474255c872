/**
 * How the person-detect QGT settings were chosen: 2-bit fine-tuning of the
 * person-detect float network (reused) with plain STE QAT (BatchNorm folded
 * or live) and QGT variants that differ in lambda, its ramp and BatchNorm.
 * Every variant trains 2 epochs at the fine-tuning learning rate, as
 * person-detect's 2-bit variants do. Names: `g<lambda>` ramps lambda from the
 * start, `d<lambda>s50` from the middle of training; `bn` keeps BatchNorm live.
 * The README's results section lists what each reached.
 */
import { defineExperiment } from "../lib/experiment/define.ts";
import personDetect from "./person-detect.ts";

const pd = personDetect;
const qgt2 = (to: number, start: number, liveBatchNorm: boolean) => ({
  qgt: {
    mode: "qgt" as const,
    bits: 2,
    epochs: 2,
    fakeQuant: true,
    liveBatchNorm,
    finetuneEpochs: 0,
    regularizer: "grid" as const,
    reduction: "weights" as const,
    lambda: { type: "linear" as const, from: 0, to, start },
  },
});

export default defineExperiment({
  id: "qgt-tuning",
  version: 1,
  description:
    "2-bit QAT and QGT fine-tuning of the person detector: lambda, its ramp, BatchNorm folded or live.",
  seed: pd.seed,
  dataset: pd.dataset,
  architecture: pd.architecture,
  train: pd.train,
  qgt: { mode: "float" },
  variants: {
    float: {},
    "qat-2": { qgt: { mode: "qat", bits: 2, epochs: 2 } },
    g10: qgt2(10, 0, false),
    g100: qgt2(100, 0, false),
    g1000: qgt2(1000, 0, false),
    d3: qgt2(3, 0, false),
    d10s50: qgt2(10, 0.5, false),
    qatbn: { qgt: { mode: "qat", bits: 2, epochs: 2, liveBatchNorm: true } },
    gbn3s50: qgt2(3, 0.5, true),
  },
});

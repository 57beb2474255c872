/**
 * The compression-bottleneck study on the person detector: the same float
 * network, data and training as person-detect (its float baseline is reused
 * when that experiment ran first), then
 * - uniform 2-bit QAT and QGT with per-layer quantization error after every
 *   epoch (layer_epochs.csv),
 * - per-layer sensitivity at 1, 2, 3, 4 and 8 bits (sensitivity.csv), and
 * - the mixed-precision QGT assignment within 81 KB against uniform 2-bit
 *   (layers.csv: bits, bytes, error and sensitivity per layer).
 */
import { defineExperiment } from "../lib/experiment/define.ts";
import personDetect from "./person-detect.ts";

const pd = personDetect;

export default defineExperiment({
  id: "bottleneck",
  version: 3,
  description:
    "Compression bottlenecks of the person detector: per-layer error over training, sensitivity, and mixed precision within 81 KB against uniform 2-bit.",
  seed: pd.seed,
  dataset: pd.dataset,
  architecture: pd.architecture,
  train: pd.train,
  qgt: { mode: "float" },
  variants: {
    float: {},
    // person-detect's variants, so the study trains exactly its 2-bit models
    "qat-2": pd.variants["qat-2"],
    "qgt-2": pd.variants["qgt-2"],
    "qgt-mixed": pd.variants["qgt-mixed"],
  },
  profiles: {
    // as person-detect's quick profile: enough images and epochs to learn (float about 70 %)
    quick: {
      dataset: { options: { trainCount: 2000, valCount: 400 } },
      train: { epochs: 5, schedule: { type: "cosine", lr: 4e-3, warmupSteps: 100 } },
      variants: {
        "qat-2": { train: { batchSize: 64 }, qgt: { epochs: 1 } },
        "qgt-2": { train: { batchSize: 64 }, qgt: { epochs: 1 } },
        "qgt-mixed": {
          train: { batchSize: 64 },
          qgt: {
            epochs: 1,
            mixed: { budgetBytes: 80971, candidates: [1, 2, 4], sensitivitySamples: 128 },
          },
        },
      },
    },
  },
});

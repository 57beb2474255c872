/**
 * The paper's figure choices (`deno task figures`): the person detector as
 * the main experiment, its 2-bit QAT and QGT variants and layer `pw7` for the
 * weight histograms, the 81 KB budget, and the Fashion-MNIST seed sweep.
 * @module
 */
import type { FigureDefs } from "./figures.ts";

/** What `deno task figures` draws (see `writeFigures`). */
export const PAPER_FIGURES: FigureDefs = {
  main: {
    experiment: "person-detect",
    label: "person detection (synthetic)",
    histogram: { layer: "pw7", float: "float", qat: "qat-2", qgt: "qgt-2" },
    layerErrorVariants: ["qat-2", "qgt-2", "qgt-mixed"],
    sizeAccuracy: {
      budgetBytes: 80971,
      title: "Person detection: exported size against accuracy (81 KB budget dashed)",
      what:
        "Every person-detection variant: bytes of the exported model.qgt against the accuracy of those bytes run by the integer interpreter; the dashed line is the 81 KB (80,971-byte, 17.7x) budget.",
    },
    curves: {
      title: "Person detection: validation accuracy per epoch",
      what:
        "Validation accuracy after every epoch of every trained person-detection variant (quantized phases evaluated with their fake quantization).",
    },
    layerErrorWhat:
      "Relative quantization error of every layer's kernel after each epoch of QAT-2, QGT-2 and the mixed-precision QGT variant (log colour scale): the layers that stay bright are the compression bottlenecks.",
  },
  sweep: { experiment: "fashion-mnist", label: "Fashion-MNIST" },
  accuracyBitsWhat:
    "Validation accuracy of PTQ, QAT and QGT at 2, 3, 4 and 8 bits (float dashed), per dataset; Fashion-MNIST is the mean over its seeds with min-max bars, person detection one seed.",
};

/**
 * An export's `summary.md`: its bytes by part, accuracies, agreement and the `.tflite` figures.
 * @module
 */

import type { ExportSummary } from "./export.ts";

function tfliteMarkdown(s: Omit<ExportSummary, "interpreterSecondsPerImage">): string {
  const t = s.tflite;
  if ("skipped" in t) return `## model.tflite\n\nNot written: ${t.skipped}\n`;
  const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
  const weights = t.int4Layers.length
    ? `int8, packed INT4 weights in ${t.int4Layers.length} layers of 4 bits or fewer`
    : "int8 weights";
  const engine = s.evaluator === "c-runtime" ? "C runtime" : "TypeScript interpreter";
  return `## model.tflite (standard TFLite: int8 activations, int8 or INT4 weights)

| file | bytes |
| --- | ---: |
| the same with every weight in int8 (not written) | ${t.int8Bytes} |
| model.tflite (${weights}) | ${t.bytes} |
| model.qgt (bit-packed) | ${s.bytes.total} |

- model.qgt is ${(t.qgtFraction * 100).toFixed(1)} % of model.tflite and ${
    (100 * s.bytes.total / t.int8Bytes).toFixed(1)
  } % of the all-int8 TFLite model: what sub-byte packing saves against the standard
  deployment of the same integer weights
- ${t.output.type} output: logit = ${t.output.scale} * (q - ${t.output.zeroPoint}) (range calibrated on training images)
- on the first ${t.images} images: accuracy in ${t.runtime} ${pct(t.accuracy)} (model.qgt: ${
    pct(t.qgtAccuracy)
  }); the same predicted class as the ${engine} on ${
    pct(t.agreement)
  } (docs/tflite.md: where the two round differently)
`;
}

export function summaryMarkdown(s: Omit<ExportSummary, "interpreterSecondsPerImage">): string {
  const pct = (x: number | null) => (x === null ? "n/a" : `${(x * 100).toFixed(2)} %`);
  const warn = s.warnings?.length
    ? `${s.warnings.map((w) => `> **${w.replace(/^warning: /, "Warning:** ")}`).join("\n>\n")}\n\n`
    : "";
  return `# ${s.variant}: exported model

${warn}| part | bytes |
| --- | ---: |
| weight codes (bit-packed) | ${s.bytes.weightCodes} |
| per-channel scales (float16) | ${s.bytes.scales} |
| zero points (int32) | ${s.bytes.zeroPoints} |
| biases (int32, BatchNorm folded) | ${s.bytes.biases} |
| header (preamble + JSON, incl. activation parameters) | ${s.bytes.header} |
| **total deployable (model.qgt)** | **${s.bytes.total}** |

- float32 size of the same (folded) network: ${s.float32Bytes} bytes; reduction ${
    s.reduction.toFixed(2)
  }x
- float accuracy: ${pct(s.floatAccuracy)}
- exported-model accuracy (${
    s.evaluator === "c-runtime" ? "C runtime" : "TypeScript integer interpreter"
  } on ${s.images} validation images): ${pct(s.accuracy)}
- drop: ${s.dropPoints === null ? "n/a" : `${s.dropPoints.toFixed(2)} points`}
- fake-quantized simulation accuracy: ${
    pct(s.simulatedAccuracy)
  }; prediction agreement interpreter vs simulation: ${pct(s.agreement)}

${tfliteMarkdown(s)}`;
}

/**
 * The files a complete run ends with: its tidy tables (through the run
 * directory format), Vega-Lite specs with their SVG renderings, and a
 * self-contained `report.html`.
 * @module
 */
import { join } from "node:path";
import { writeJsonAtomic, writeTextAtomic } from "../util/fs.ts";
import { escapeXml } from "../util/xml.ts";
import {
  LAYER_COLUMNS,
  MODEL_SUMMARY_COLUMNS,
  RUN_FILES,
  type RunRecord,
  SUMMARY_COLUMNS,
  type VariantResult,
  type VariantSummaryRow,
  writeRunTables,
} from "../run/run_dir.ts";
import { renderSvg, type VegaLiteSpec } from "./vega.ts";
import {
  curvesSpec,
  htmlReport,
  htmlTable,
  layerEpochSpec,
  layerErrorSpec,
  sizeAccuracySpec,
} from "./run_report.ts";

type Rows = Record<string, unknown>[];

/**
 * The summary table: each variant's result with its accuracy drop (in
 * points) against the float variant `floatName`.
 *
 * @example
 * ```ts
 * import { summaryRows } from "./run_outputs.ts";
 * const r = (variant: string, accuracy: number) => ({ summary: { variant, accuracy } }) as never;
 * const [, q] = summaryRows([r("float", 0.9), r("q", 0.85)], "float");
 * if (Math.abs(q.accuracy_drop! - 5) > 1e-9) throw new Error();
 * ```
 */
export function summaryRows(
  results: VariantResult[],
  floatName: string | undefined,
): VariantSummaryRow[] {
  const floatAcc = results.find((r) => r.summary.variant === floatName)?.summary.accuracy;
  return results.map(({ summary: s }) => ({
    ...s,
    // each value rounded to what it measures: fractions to 1e-4, points and ratios to 0.01
    accuracy: round(s.accuracy, 4),
    loss: round(s.loss, 4),
    reduction: round(s.reduction, 2),
    accuracy_drop: floatAcc === undefined ? null : round((floatAcc - s.accuracy) * 100, 2),
    simulated_accuracy: round(s.simulated_accuracy, 4),
    prediction_agreement: round(s.prediction_agreement, 4),
    tflite_bytes: s.tflite_bytes ?? null,
    tflite_agreement: s.tflite_agreement == null ? null : round(s.tflite_agreement, 4),
  }));
}

/**
 * A run's summary in one line: each variant's accuracy (%) and size (KB, one decimal below 10 KB),
 * as `deno task runs` and the results site show it.
 *
 * @example
 * ```ts
 * import { summaryHeadline } from "./run_outputs.ts";
 * const h = summaryHeadline([{ variant: "qgt-2", accuracy: 0.9123, bytes: 8100 }]);
 * if (h !== "qgt-2 91.2% 8.1KB") throw new Error(h);
 * ```
 */
export function summaryHeadline(
  rows: readonly Pick<VariantSummaryRow, "variant" | "accuracy" | "bytes">[],
): string {
  const kb = (b: number) => (b / 1000).toFixed(b < 10000 ? 1 : 0);
  return rows.map((x) =>
    `${x.variant} ${(Number(x.accuracy) * 100).toFixed(1)}% ${kb(Number(x.bytes))}KB`
  )
    .join(" | ");
}

/**
 * x rounded to `digits` decimals, without float noise in its text (0.1 + 0.2 gives 0.3).
 *
 * @example
 * ```ts
 * import { round } from "./run_outputs.ts";
 * if (round(-3.8000000000000034, 2) !== -3.8 || String(round(0.82299999, 4)) !== "0.823") throw new Error();
 * ```
 */
export function round(x: number, digits: number): number {
  return Number.isFinite(x) ? Number(x.toFixed(digits)) : x;
}

/**
 * Writes the tables, plots and report of a complete run into `runDir`;
 * `results` are the variants in run order. Returns the summary rows.
 *
 * @example
 * ```ts ignore
 * const summary = await writeRunOutputs(runDir, record, results, "float", 80971);
 * ```
 */
export async function writeRunOutputs(
  runDir: string,
  record: RunRecord,
  results: VariantResult[],
  floatName: string | undefined,
  budgetBytes: number | undefined,
): Promise<VariantSummaryRow[]> {
  const summary = summaryRows(results, floatName);
  const metrics = results.flatMap((r) => r.metrics);
  const layers = results.flatMap((r) => r.layers);
  const layerEpochs = results.flatMap((r) => r.layerEpochs);
  const sensitivity = results.flatMap((r) => r.sensitivity ?? []);
  await writeRunTables(runDir, { summary, metrics, layers, layerEpochs, sensitivity });
  const plots: [string, string, VegaLiteSpec][] = [
    ["curves", "Training curves", curvesSpec(metrics as unknown as Rows)],
    [
      "size_accuracy",
      "Size against accuracy",
      sizeAccuracySpec(summary as unknown as Rows, budgetBytes),
    ],
  ];
  if (layers.length) {
    plots.push([
      "layers",
      "Per-layer quantization error",
      layerErrorSpec(layers as unknown as Rows),
    ]);
  }
  if (layerEpochs.length) {
    plots.push([
      "layer_epochs",
      "Per-layer quantization error across epochs",
      layerEpochSpec(layerEpochs as unknown as Rows),
    ]);
  }
  const svgs: string[] = [];
  for (const [name, , spec] of plots) {
    await writeJsonAtomic(join(runDir, `${name}.vl.json`), spec);
    const svg = await renderSvg(spec);
    await writeTextAtomic(join(runDir, `${name}.svg`), svg);
    svgs.push(svg);
  }
  const e = record.experiment;
  const html = htmlReport(`${e.id} v${e.version}: ${record.runId}`, [
    {
      title: "Run",
      html:
        `<p>${escapeXml(e.description)}</p><p>commit ${record.git.commit.slice(0, 12)}${
          record.git.dirty ? " (dirty tree)" : ""
        }, ` +
        `seed ${record.seed}, profile ${e.profile}, config hash ${
          e.hash.slice(0, 12)
        }; Deno ${record.versions.deno}, tfjs ${record.versions.tfjs} (${record.versions.backend})</p>`,
    },
    ...(record.warnings?.length
      ? [{
        title: "Warnings",
        html: `<ul class="warnings">${
          record.warnings.map((w) => `<li>${escapeXml(w.replace(/^warning: /, ""))}</li>`).join("")
        }</ul>`,
      }]
      : []),
    { title: "Summary", html: htmlTable(summary as unknown as Rows, SUMMARY_COLUMNS) },
    ...plots.map(([, title], i) => ({ title, html: `<div class="plot">${svgs[i]}</div>` })),
    ...(layers.length
      ? [{
        title: "Layers (bottleneck analysis)",
        html: htmlTable(layers as unknown as Rows, LAYER_COLUMNS),
      }]
      : []),
    ...results.filter((r) => r.summary.mode !== "float").map((r) => ({
      title: `Model summary: ${r.summary.variant} (parameters, bits and bytes per layer)`,
      html: htmlTable((r.modelSummary ?? []) as unknown as Rows, MODEL_SUMMARY_COLUMNS),
    })),
  ]);
  await writeTextAtomic(join(runDir, RUN_FILES.report), html);
  return summary;
}

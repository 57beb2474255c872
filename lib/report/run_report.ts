/**
 * The plots and the self-contained HTML report of a run.
 * @module
 */
import type { VegaLiteSpec } from "./vega.ts";
import { escapeXml } from "../util/xml.ts";

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

/**
 * Validation accuracy per epoch, one line per variant.
 *
 * @example
 * ```ts
 * import { curvesSpec } from "./run_report.ts";
 * const rows = [
 *   { variant: "float", epoch: 1, split: "val", metric: "accuracy", value: 0.8 },
 *   { variant: "float", epoch: 1, split: "train", metric: "loss", value: 0.5 },
 * ];
 * const spec = curvesSpec(rows) as { data: { values: unknown[] } };
 * if (spec.data.values.length !== 1) throw new Error(); // validation accuracy only
 * ```
 */
export function curvesSpec(
  metrics: Record<string, unknown>[],
  title = "Validation accuracy during training",
): VegaLiteSpec {
  return {
    $schema: SCHEMA,
    title,
    width: 420,
    height: 260,
    data: { values: metrics.filter((r) => r.split === "val" && r.metric === "accuracy") },
    mark: { type: "line", point: true },
    encoding: {
      x: {
        field: "epoch",
        type: "quantitative",
        title: "epoch (all phases of a variant)",
        axis: { tickMinStep: 1, format: "d" },
      },
      y: {
        field: "value",
        type: "quantitative",
        title: "validation accuracy (%)",
        axis: { format: ".0%" },
        scale: { zero: false },
      },
      color: { field: "variant", type: "nominal" },
      tooltip: [{ field: "variant" }, { field: "phase" }, { field: "epoch" }, {
        field: "value",
        format: ".4f",
      }],
    },
  };
}

/**
 * Size against accuracy, one point per variant, with an optional budget rule.
 *
 * @example
 * ```ts
 * import { sizeAccuracySpec } from "./run_report.ts";
 * const spec = sizeAccuracySpec([{ variant: "qgt-2", bytes: 80000, accuracy: 0.8 }], 81000) as {
 *   layer: unknown[];
 * };
 * if (spec.layer.length !== 3) throw new Error(); // points, labels, budget rule
 * ```
 */
export function sizeAccuracySpec(
  summary: Record<string, unknown>[],
  budgetBytes?: number,
  title = "Size against accuracy",
): VegaLiteSpec {
  const points = {
    mark: { type: "point", filled: true, size: 80 },
    encoding: {
      x: {
        field: "bytes",
        type: "quantitative",
        scale: { type: "log" },
        title: "model size (bytes, log scale)",
      },
      y: {
        field: "accuracy",
        type: "quantitative",
        scale: { zero: false },
        title: "accuracy (%)",
        axis: { format: ".1%" },
      },
      color: { field: "variant", type: "nominal" },
      shape: { field: "mode", type: "nominal" },
      tooltip: [{ field: "variant" }, { field: "bytes" }, { field: "accuracy", format: ".4f" }],
    },
  };
  const labels = {
    mark: { type: "text", dx: 6, align: "left", fontSize: 10 },
    encoding: {
      x: { field: "bytes", type: "quantitative", scale: { type: "log" } },
      y: { field: "accuracy", type: "quantitative" },
      text: { field: "variant" },
    },
  };
  const layers: unknown[] = [points, labels];
  if (budgetBytes) {
    layers.push({
      data: {
        values: [{ budget: budgetBytes, label: `budget ${(budgetBytes / 1000).toFixed(0)} KB` }],
      },
      layer: [
        {
          mark: { type: "rule", strokeDash: [4, 4], color: "gray" },
          encoding: { x: { field: "budget", type: "quantitative" } },
        },
        {
          mark: { type: "text", align: "left", dx: 3, dy: -120, color: "gray", fontSize: 10 },
          encoding: { x: { field: "budget", type: "quantitative" }, text: { field: "label" } },
        },
      ],
    });
  }
  return {
    $schema: SCHEMA,
    title,
    width: 420,
    height: 260,
    data: { values: summary },
    layer: layers,
  };
}

/**
 * Final per-layer quantization error of each quantized variant, layers in network order.
 *
 * @example
 * ```ts
 * import { layerErrorSpec } from "./run_report.ts";
 * const spec = layerErrorSpec([{ variant: "q", layer: "pw2", grid_error: 0.1 }, {
 *   variant: "q",
 *   layer: "conv0",
 *   grid_error: 0.2,
 * }]) as { encoding: { x: { sort: string[] } } };
 * if (spec.encoding.x.sort.join() !== "pw2,conv0") throw new Error(); // order as given
 * ```
 */
export function layerErrorSpec(layers: Record<string, unknown>[]): VegaLiteSpec {
  const order = [...new Set(layers.map((r) => r.layer as string))];
  return {
    $schema: SCHEMA,
    title: "Per-layer quantization error (squared distance to the grid, in steps)",
    width: 520,
    height: 240,
    data: { values: layers },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "layer", type: "ordinal", sort: order, title: "layer (network order)" },
      y: {
        field: "grid_error",
        type: "quantitative",
        title: "mean ((w - Q(w)) / s)^2 (grid steps squared)",
      },
      color: { field: "variant", type: "nominal" },
      tooltip: [{ field: "variant" }, { field: "layer" }, { field: "bits" }, {
        field: "grid_error",
        format: ".4f",
      }],
    },
  };
}

/**
 * Per-layer quantization error across epochs (heatmap per variant).
 *
 * @example
 * ```ts
 * import { layerEpochSpec } from "./run_report.ts";
 * const spec = layerEpochSpec([{ variant: "q", layer: "c1", epoch: 1, relative_error: 0.02 }], {
 *   field: "relative_error",
 *   log: true,
 * }) as { spec: { encoding: { color: { field: string; scale: { type?: string } } } } };
 * const color = spec.spec.encoding.color;
 * if (color.field !== "relative_error" || color.scale.type !== "log") throw new Error();
 * ```
 */
export function layerEpochSpec(
  rows: Record<string, unknown>[],
  o: { field?: "grid_error" | "relative_error"; log?: boolean; height?: number } = {},
): VegaLiteSpec {
  const order = [...new Set(rows.map((r) => r.layer as string))];
  const field = o.field ?? "grid_error";
  return {
    $schema: SCHEMA,
    title: "Where the bottlenecks are: per-layer quantization error across epochs",
    data: { values: rows },
    facet: { row: { field: "variant", type: "nominal", title: null } },
    spec: {
      width: 520,
      height: o.height ?? 120,
      mark: "rect",
      encoding: {
        x: { field: "layer", type: "ordinal", sort: order, title: "layer (network order)" },
        y: { field: "epoch", type: "ordinal", title: "epoch (all phases of a variant)" },
        color: {
          field,
          type: "quantitative",
          scale: { scheme: "viridis", ...(o.log ? { type: "log" } : {}) },
          title: field === "grid_error" ? "grid error" : "||w-Q(w)||²/||w||²",
        },
        tooltip: [{ field: "variant" }, { field: "layer" }, { field: "epoch" }, {
          field,
          format: ".4f",
        }],
      },
    },
  };
}

/** One section of the HTML report. */
export interface ReportSection {
  title: string;
  html: string;
}

/**
 * An HTML table of rows (numbers rounded for reading; the CSVs keep full precision).
 *
 * @example
 * ```ts
 * import { htmlTable } from "./run_report.ts";
 * if (!htmlTable([{ a: 1.23456 }]).includes("1.235")) throw new Error();
 * ```
 */
export function htmlTable(rows: Record<string, unknown>[], columns?: string[]): string {
  if (!rows.length) return "<p>(no rows)</p>";
  const cols = columns ?? Object.keys(rows[0]);
  const cell = (v: unknown) =>
    typeof v === "number"
      ? (Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 100 ? 1 : 3))
      : escapeXml(String(v ?? ""));
  return `<table><thead><tr>${
    cols.map((c) => `<th>${escapeXml(c)}</th>`).join("")
  }</tr></thead><tbody>` +
    rows.map((r) => `<tr>${cols.map((c) => `<td>${cell(r[c])}</td>`).join("")}</tr>`).join("") +
    `</tbody></table>`;
}

/**
 * A self-contained HTML page (inline CSS and SVG, no scripts).
 *
 * @example
 * ```ts
 * import { htmlReport } from "./run_report.ts";
 * if (!htmlReport("t", [{ title: "s", html: "<p>x</p>" }]).includes("<h2>s</h2>")) throw new Error();
 * ```
 */
export function htmlReport(title: string, sections: ReportSection[]): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title>
<style>
body{font-family:"DejaVu Sans",system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f3f3f3}
h1{font-size:22px}h2{font-size:17px;margin-top:1.6em}
.plot{margin:0.5em 0}
</style></head><body>
<h1>${escapeXml(title)}</h1>
${sections.map((s) => `<h2>${escapeXml(s.title)}</h2>\n${s.html}`).join("\n")}
</body></html>
`;
}

/**
 * The site's Vega-Lite plots: the run report's specs made interactive
 * (tooltips, zoom, a legend that picks variants) with the site's colour per
 * variant, and the per-experiment trends of a metric across commits.
 * @module
 */
import type { VegaLiteSpec } from "../report/vega.ts";

type Obj = Record<string, unknown>;

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

/** Clicking a legend entry shows that variant (shift-click adds more); others fade. */
const PICK = { name: "pick", select: { type: "point", fields: ["variant"] }, bind: "legend" };
const FADE = { condition: { param: "pick", value: 1 }, value: 0.12 };

/** A colour scale over `variants` with the site's colours. */
function colorScale(colors: Record<string, string>, variants: string[]): Obj {
  return { domain: variants, range: variants.map((v) => colors[v] ?? "#888") };
}

function variantsIn(values: unknown): string[] {
  if (!Array.isArray(values)) return [];
  return [
    ...new Set(values.map((r) => String((r as Obj).variant)).filter((v) => v !== "undefined")),
  ];
}

/**
 * Makes a unit or layered Vega-Lite spec interactive, in place: a variant
 * colour encoding gets the site's colours, a legend that picks variants, and
 * fading for the others; a quantitative x gets zoom and pan (drag, wheel).
 * Faceted specs keep their tooltips only.
 *
 * @example
 * ```ts
 * import { interactive } from "./plots.ts";
 * const s = interactive({ data: { values: [{ variant: "a", x: 1, y: 2 }] }, mark: "point",
 *   encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" },
 *     color: { field: "variant", type: "nominal" } } }, { a: "red" }) as never as
 *   { params: { name: string }[]; encoding: { color: { scale: { range: string[] } } } };
 * if (s.params.map((p) => p.name).join() !== "pick,zoom" || s.encoding.color.scale.range[0] !== "red") {
 *   throw new Error();
 * }
 * ```
 */
export function interactive(spec: VegaLiteSpec, colors: Record<string, string>): VegaLiteSpec {
  const variants = variantsIn((spec.data as Obj | undefined)?.values);
  const units = Array.isArray(spec.layer) ? spec.layer as Obj[] : spec.mark ? [spec] : [];
  let picked = false, zoomed = false;
  for (const u of units) {
    const enc = u.encoding as Obj | undefined;
    if (!enc) continue;
    const color = enc.color as Obj | undefined;
    const params = (u.params as Obj[] | undefined) ?? [];
    if (color?.field === "variant") {
      color.scale = colorScale(colors, variants);
      if (!picked) params.push(PICK);
      picked = true;
      enc.opacity = FADE;
    }
    const x = enc.x as Obj | undefined;
    if (!zoomed && x?.type === "quantitative") {
      params.push({ name: "zoom", select: "interval", bind: "scales" });
      zoomed = true;
    }
    if (params.length) u.params = params;
  }
  return spec;
}

/** One point of a trend: a variant's value in one run. */
export interface TrendRow {
  variant: string;
  /** Short commit (7 characters). */
  commit: string;
  date: string;
  run: string;
  seed: number;
  /** The experiment's version in that run. */
  version: number;
  value: number;
}

/**
 * A metric of each variant against commit order: one point per run (seed),
 * a line through each commit's mean and a rule over the seeds' range.
 *
 * @example
 * ```ts
 * import { trendSpec } from "./plots.ts";
 * const row = { variant: "q", commit: "abc1234", date: "2026-01-01", run: "r", seed: 1, version: 1, value: 90 };
 * const s = trendSpec([row], ["abc1234"], "accuracy (%)", { q: "red" }) as never as { layer: unknown[] };
 * if (s.layer.length !== 3) throw new Error();
 * ```
 */
export function trendSpec(
  rows: TrendRow[],
  commits: string[],
  yTitle: string,
  colors: Record<string, string>,
  o: { log?: boolean; title?: string } = {},
): VegaLiteSpec {
  const variants = [...new Set(rows.map((r) => r.variant))];
  const scale = o.log ? { type: "log" } : { zero: false };
  const y = { field: "value", type: "quantitative", title: yTitle, scale };
  return {
    $schema: SCHEMA,
    ...(o.title ? { title: o.title } : {}),
    width: Math.max(320, Math.min(900, 60 * commits.length)),
    height: 240,
    data: { values: rows },
    encoding: {
      x: {
        field: "commit",
        type: "ordinal",
        sort: commits,
        title: "commit (oldest to newest)",
        axis: { labelAngle: -40 },
      },
      color: { field: "variant", type: "nominal", scale: colorScale(colors, variants) },
      opacity: FADE,
    },
    layer: [
      { mark: { type: "line" }, encoding: { y: { ...y, aggregate: "mean" } } },
      {
        mark: { type: "rule", strokeWidth: 2 },
        encoding: {
          y: { ...y, aggregate: "min" },
          y2: { field: "value", aggregate: "max" },
        },
      },
      {
        params: [PICK, {
          name: "zoom",
          select: { type: "interval", encodings: ["y"] },
          bind: "scales",
        }],
        mark: { type: "point", filled: true, size: 50 },
        encoding: {
          y,
          tooltip: [
            { field: "variant" },
            { field: "value", title: yTitle, format: ".4~f" },
            { field: "commit" },
            { field: "date" },
            { field: "run" },
            { field: "version" },
            { field: "seed" },
          ],
        },
      },
    ],
  };
}

/**
 * Bars of the accuracy change B - A (points) per variant, for the compare view.
 * Self-contained (nothing outside its body), so the compare page runs this
 * very function in the browser.
 *
 * @example
 * ```ts
 * import { changeSpec } from "./plots.ts";
 * const s = changeSpec([{ variant: "q", change: -1.5 }], { q: "red" }) as never as { mark: { type: string } };
 * if (s.mark.type !== "bar") throw new Error();
 * ```
 */
export function changeSpec(
  rows: { variant: string; change: number }[],
  colors: Record<string, string>,
): VegaLiteSpec {
  const variants = rows.map((r) => r.variant);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    width: 420,
    height: { step: 18 },
    data: { values: rows },
    mark: { type: "bar" },
    encoding: {
      y: { field: "variant", type: "nominal", sort: variants, title: "variant" },
      x: { field: "change", type: "quantitative", title: "accuracy change B - A (points)" },
      color: {
        field: "variant",
        type: "nominal",
        scale: { domain: variants, range: variants.map((v) => colors[v] ?? "#888") },
        legend: null,
      },
      tooltip: [{ field: "variant" }, { field: "change", title: "points", format: "+.2f" }],
    },
  };
}

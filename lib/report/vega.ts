/**
 * Vega-Lite specs rendered to SVG headlessly with Vega (report/png.ts turns SVG into PNG).
 * @module
 */
import * as vl from "vega-lite";
import * as vega from "vega";
import { FONT_FAMILY } from "./png.ts";

/** A Vega-Lite specification (plain JSON). */
export type VegaLiteSpec = Record<string, unknown>;

/**
 * Renders a Vega-Lite spec to SVG text (fonts set to the bundled DejaVu Sans).
 *
 * @example
 * ```ts
 * import { renderSvg } from "./vega.ts";
 * const svg = await renderSvg({ data: { values: [{ x: 1, y: 2 }] }, mark: "point",
 *   encoding: { x: { field: "x", type: "quantitative" }, y: { field: "y", type: "quantitative" } } });
 * if (!svg.startsWith("<svg")) throw new Error();
 * ```
 */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const withFont = {
    ...spec,
    config: { font: FONT_FAMILY, ...(spec.config as Record<string, unknown> ?? {}) },
  };
  const compiled = vl.compile(withFont as unknown as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

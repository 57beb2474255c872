/**
 * The site's HTML: the page shell (navigation, the local Vega libraries, the
 * site script), sortable tables, and plot slots that `site.js` fills with
 * vega-embed. Pages are plain files; data a script needs rides in the page as
 * JSON (file:// pages may not fetch).
 * @module
 */
import { escapeXml } from "../util/xml.ts";
import type { VegaLiteSpec } from "../report/vega.ts";

/** A table cell: what it shows, how it sorts (a number sorts numerically), and an optional link. */
export interface Cell {
  text: string;
  sort?: number | string;
  href?: string;
  /** A CSS class for the cell (e.g. `regression`). */
  cls?: string;
}

/** A cell of a value: numbers with `digits` decimals (integers as they are), empty for null. */
export function cell(v: unknown, digits = 2): Cell {
  if (v === null || v === undefined || v === "") return { text: "", sort: "" };
  if (typeof v === "number") {
    return { text: Number.isInteger(v) ? String(v) : v.toFixed(digits), sort: v };
  }
  return { text: String(v), sort: String(v) };
}

/**
 * A table the site script makes sortable (click a header) and, with
 * `filter`, filterable (a text box above it: every word typed must occur in
 * the row).
 *
 * @example
 * ```ts
 * import { cell, table } from "./html.ts";
 * const h = table("t", ["run", "acc"], [[{ text: "r1", href: "runs/r1.html" }, cell(0.5)]]);
 * if (!h.includes('<a href="runs/r1.html">r1</a>') || !h.includes('data-sort="0.5"')) throw new Error();
 * ```
 */
export function table(
  id: string,
  columns: string[],
  rows: Cell[][],
  o: { filter?: boolean; select?: boolean } = {},
): string {
  if (!rows.length) return `<p class="empty">(none)</p>`;
  const th = columns.map((c) => `<th>${escapeXml(c)}</th>`).join("");
  const body = rows.map((r) =>
    `<tr>${
      r.map((c) => {
        const sort = c.sort === undefined ? "" : ` data-sort="${escapeXml(String(c.sort))}"`;
        const cls = c.cls ? ` class="${c.cls}"` : "";
        const text = escapeXml(c.text);
        return `<td${sort}${cls}>${
          c.href ? `<a href="${escapeXml(c.href)}">${text}</a>` : text
        }</td>`;
      }).join("")
    }</tr>`
  ).join("\n");
  const filter = o.filter
    ? `<p><input type="search" class="filter" data-table="${id}" placeholder="filter rows: words that must all occur" size="50"> <span class="count" data-table="${id}"></span></p>\n`
    : "";
  return `${filter}<table id="${id}" class="sortable${
    o.select ? " selectable" : ""
  }"><thead><tr>${th}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

/**
 * A slot for a Vega-Lite plot: the spec rides as JSON beside an empty div
 * that the site script renders with vega-embed (SVG renderer).
 *
 * @example
 * ```ts
 * import { plot } from "./html.ts";
 * if (!plot("p1", { mark: "point" }).includes('<div class="vl" data-spec="p1">')) throw new Error();
 * ```
 */
export function plot(id: string, spec: VegaLiteSpec): string {
  // "</" inside JSON would end the script element
  const json = JSON.stringify(spec).replaceAll("</", "<\\/");
  return `<script type="application/json" id="${id}">${json}</script><div class="vl" data-spec="${id}"></div>`;
}

/** The site's libraries and script, in load order (vega-embed needs vega and vega-lite as globals). */
export const SCRIPTS = ["vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "site.js"];

/**
 * A whole page. `depth` is how many folders below the site's root it is (for
 * the relative links to assets and pages); `head` adds scripts (page data).
 *
 * @example
 * ```ts
 * import { page } from "./html.ts";
 * const h = page("T", 2, "<p>x</p>");
 * if (!h.includes('src="../../assets/site.js"') || !h.includes('href="../../index.html"')) throw new Error();
 * ```
 */
export function page(title: string, depth: number, body: string, head = ""): string {
  const up = "../".repeat(depth);
  const scripts = SCRIPTS.map((s) => `<script src="${up}assets/${s}"></script>`).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title>
<link rel="stylesheet" href="${up}assets/site.css">
${scripts}
${head}</head><body>
<nav><a href="${up}index.html">Runs</a> <a href="${up}experiments.html">Experiments</a> <a href="${up}compare.html">Compare</a></nav>
<h1>${escapeXml(title)}</h1>
${body}
</body></html>
`;
}

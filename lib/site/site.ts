/**
 * Writes the results site: static files that work offline and from file://
 * (docs/site.md has the layout). The whole site is written into a temporary
 * folder beside `outDir` and moved into place at the end, so a failure leaves
 * the previous site (or nothing), never half of one. The same runs give the
 * same bytes: nothing in it depends on the time it was made.
 * @module
 */
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import * as vegaEmbed from "vega-embed";
import { changeSpec } from "./plots.ts";
import {
  backendOf,
  COMPARED,
  joinSummaries,
  regressions,
  runDifferences,
  wideRows,
} from "../analysis/compare.ts";
import { collectSite, type SiteData } from "./data.ts";
import { comparePage, experimentPage, experimentsPage, indexPage, runPage } from "./pages.ts";

/** What {@link writeSite} wrote. */
export interface SiteSummary {
  dir: string;
  runs: number;
  experiments: number;
  pages: number;
}

/** The browser bundles of vega, vega-lite and vega-embed, from the npm packages' own files. */
function libraryFiles(): [string, string][] {
  const require = createRequire(import.meta.url);
  const build = (pkg: string) => dirname(require.resolve(pkg));
  if (typeof vegaEmbed.default !== "function") throw new Error("vega-embed: no embed function");
  return [
    ["vega.min.js", join(build("vega"), "vega.min.js")],
    ["vega-lite.min.js", join(build("vega-lite"), "vega-lite.min.js")],
    ["vega-embed.min.js", join(build("vega-embed"), "vega-embed.min.js")],
  ];
}

/** The compare view's functions: the very ones `deno task compare` runs, as browser script. */
function compareLib(): string {
  const fns = [joinSummaries, wideRows, regressions, runDifferences, backendOf, changeSpec];
  return `// qgt's compare functions (lib/analysis/compare.ts, lib/site/plots.ts), as deno task site wrote them\n` +
    `var QGT_COMPARED = ${JSON.stringify(COMPARED)};\n` +
    fns.map((f) => f.toString()).join("\n\n") + "\n";
}

/** The runs as the compare view needs them: keys, labels, summaries and what runDifferences reads. */
function runsScript(d: SiteData): string {
  const runs = d.runs.map((r) => ({
    key: r.key,
    experiment: r.experiment,
    runId: r.runId,
    commit: r.commit,
    started: r.started,
    status: r.status,
    profile: r.profile,
    seed: r.seed,
    page: r.page,
    summary: r.summary.map((s) => ({
      variant: s.variant,
      accuracy: s.accuracy,
      bytes: s.bytes,
      reduction: s.reduction,
      accuracy_drop: s.accuracy_drop,
    })),
    // what runDifferences reads
    record: {
      experiment: r.record.experiment,
      seed: r.record.seed,
      dataset: r.record.dataset,
      versions: r.record.versions,
    },
  }));
  const data = { runs, commits: d.commits, colors: d.colors };
  return `window.QGT_SITE = ${JSON.stringify(data)};\n`;
}

/**
 * Builds the site from every run under `roots` into `outDir` (replaced as a
 * whole). `gitNewestFirst` orders commits (git log's order).
 *
 * @example
 * ```ts ignore
 * await writeSite(["reports/runs", "reports/results"], "reports/site", await commitOrder());
 * ```
 */
export async function writeSite(
  roots: string[],
  outDir: string,
  gitNewestFirst: string[],
  onDamaged?: (dir: string, reason: string) => void,
): Promise<SiteSummary> {
  const d = await collectSite(roots, gitNewestFirst, onDamaged);
  const final = resolve(outDir);
  const tmp = `${final}.tmp-${Deno.pid}`;
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  let pages = 0;
  const write = async (rel: string, text: string) => {
    await Deno.mkdir(dirname(join(tmp, rel)), { recursive: true });
    await Deno.writeTextFile(join(tmp, rel), text);
    if (rel.endsWith(".html")) pages++;
  };
  try {
    for (const [name, path] of libraryFiles()) {
      await write(`assets/${name}`, await Deno.readTextFile(path));
    }
    const here = dirname(new URL(import.meta.url).pathname);
    for (const f of ["site.js", "site.css"]) {
      await write(`assets/${f}`, await Deno.readTextFile(join(here, f)));
    }
    await write("assets/compare-lib.js", compareLib());
    await write("data/runs.js", runsScript(d));
    await write("index.html", indexPage(d));
    await write("experiments.html", experimentsPage(d));
    await write("compare.html", comparePage());
    const ids = [...new Set(d.runs.map((r) => r.experiment))].sort();
    for (const id of ids) await write(`experiments/${id}.html`, await experimentPage(d, id, roots));
    for (const r of d.runs) await write(r.page, await runPage(d, r, final));
    await Deno.remove(final, { recursive: true }).catch(() => {});
    await Deno.mkdir(dirname(final), { recursive: true });
    await Deno.rename(tmp, final);
  } catch (e) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  }
  return {
    dir: final,
    runs: d.runs.length,
    experiments: new Set(d.runs.map((r) => r.experiment)).size,
    pages,
  };
}

/**
 * The site's pages, as HTML text from {@link SiteData}: the index of runs,
 * the experiments, a page per experiment (variants against commits, seed
 * spread, paired QGT - QAT differences), a page per run (the run report,
 * interactive) and the compare view.
 * @module
 */
import { join, relative, resolve } from "node:path";
import { escapeXml } from "../util/xml.ts";
import { formatDuration } from "../util/progress.ts";
import { LAYER_COLUMNS, readTable, RUN_FILES, SUMMARY_COLUMNS } from "../run/run_dir.ts";
import { exists } from "../util/fs.ts";
import {
  curvesSpec,
  layerEpochSpec,
  layerErrorSpec,
  sizeAccuracySpec,
} from "../report/run_report.ts";
import { summaryHeadline } from "../report/run_outputs.ts";
import { collectSeeds, defaultPairs, pairRow, variantSeedRows } from "../analysis/seeds.ts";
import type { SiteData, SiteRun } from "./data.ts";
import { type Cell, cell, page, plot, table } from "./html.ts";
import { interactive, type TrendRow, trendSpec } from "./plots.ts";

const short = (c: string) => c.slice(0, 7);
const date = (iso: string) => iso.slice(0, 16).replace("T", " ");
const pct = (x: unknown) => (x === null || x === undefined || x === "" ? null : Number(x) * 100);

/** The runs table of the index (and of an experiment's page), with links relative to `up`. */
function runsTable(id: string, runs: SiteRun[], up: string, select: boolean): string {
  const rows: Cell[][] = runs.map((r) => [
    ...(select ? [{ text: "", sort: r.key, cls: "pick" }] : []),
    { text: r.experiment, href: `${up}experiments/${r.experiment}.html` },
    cell(r.version),
    { text: r.runId, sort: r.runId, href: `${up}${r.page}` },
    { text: short(r.commit) + (r.dirty ? "+" : ""), sort: r.commit },
    { text: date(r.started), sort: r.started },
    cell(r.status),
    cell(r.profile),
    cell(r.seed),
    { text: r.seconds === null ? "-" : formatDuration(r.seconds), sort: r.seconds ?? -1 },
    cell(r.backend),
    cell(r.root),
    cell(summaryHeadline(r.summary)),
  ]);
  const cols = [
    ...(select ? ["pick"] : []),
    "experiment",
    "version",
    "run",
    "commit",
    "started (UTC)",
    "status",
    "profile",
    "seed",
    "compute",
    "backend",
    "root",
    "variants: accuracy, size",
  ];
  return table(id, cols, rows, { filter: true, select });
}

/** The index: every run, newest first. */
export function indexPage(d: SiteData): string {
  const complete = d.runs.filter((r) => r.status === "complete").length;
  const body = `<p>${d.runs.length} runs (${complete} complete) of ${
    new Set(d.runs.map((r) => r.experiment)).size
  } experiments at ${d.commits.length} commits. Click a header to sort; tick two runs to compare them.</p>
<p><button id="compare-picked" disabled>Compare the two ticked runs</button></p>
${runsTable("runs", d.runs, "", true)}`;
  return page("qgt runs", 0, body);
}

/** The list of experiments with their run counts. */
export function experimentsPage(d: SiteData): string {
  const ids = [...new Set(d.runs.map((r) => r.experiment))].sort();
  const rows = ids.map((id) => {
    const rs = d.runs.filter((r) => r.experiment === id);
    return [
      { text: id, href: `experiments/${id}.html` },
      cell(rs.length),
      cell(rs.filter((r) => r.status === "complete").length),
      cell(new Set(rs.map((r) => r.commit)).size),
      cell([...new Set(rs.map((r) => r.profile))].sort().join(", ")),
      { text: date(rs[0].started), sort: rs[0].started },
    ];
  });
  return page(
    "qgt experiments",
    0,
    table(
      "experiments",
      ["experiment", "runs", "complete", "commits", "profiles", "latest run"],
      rows,
    ),
  );
}

const TRENDS: { metric: "accuracy" | "bytes" | "accuracy_drop"; title: string; log?: boolean }[] = [
  { metric: "accuracy", title: "accuracy of the deployed model (%)" },
  { metric: "bytes", title: "model.qgt size (bytes, log scale)", log: true },
  { metric: "accuracy_drop", title: "accuracy drop against float (points)" },
];

/** An experiment: its runs, then per profile the variants against commits and the seed tables. */
export async function experimentPage(
  d: SiteData,
  id: string,
  roots: string[],
): Promise<string> {
  const runs = d.runs.filter((r) => r.experiment === id);
  const parts: string[] = [];
  const profiles = [...new Set(runs.map((r) => r.profile))].sort();
  let n = 0;
  for (const profile of profiles) {
    const done = runs.filter((r) => r.profile === profile && r.status === "complete");
    if (!done.length) continue;
    const commits = d.commits.filter((c) => done.some((r) => r.commit === c)).map(short);
    parts.push(
      `<h2>Profile ${
        escapeXml(profile)
      }: ${done.length} complete runs at ${commits.length} commits</h2>`,
    );
    for (const t of TRENDS) {
      const rows: TrendRow[] = done.flatMap((r) =>
        r.summary.filter((s) => s[t.metric] !== null && s[t.metric] !== undefined).map((s) => ({
          variant: s.variant,
          commit: short(r.commit),
          date: date(r.started),
          run: r.runId,
          seed: r.seed,
          version: r.version,
          value: t.metric === "accuracy" ? Number(s.accuracy) * 100 : Number(s[t.metric]),
        }))
      );
      if (rows.length) {
        parts.push(
          plot(`trend-${n++}`, trendSpec(rows, commits, t.title, d.colors, { log: t.log })),
        );
      }
    }
    parts.push(await seedTables(roots, id, profile));
  }
  const body = `<p>${runs.length} runs. Each point is one run (one seed); a line joins each
commit's mean and a vertical rule spans the seeds' range. Click a legend entry to pick a variant
(shift-click for more); drag or scroll on a plot to zoom its y axis.</p>
${parts.join("\n")}
<h2>Runs</h2>
${runsTable("runs", runs, "../", false)}`;
  return page(`${id}: across commits`, 1, body);
}

/** The seed spread per variant and the paired QGT - QAT differences (`deno task seeds`' tables). */
async function seedTables(roots: string[], id: string, profile: string): Promise<string> {
  let sel;
  try {
    sel = await collectSeeds(roots, id, { profile });
  } catch (e) {
    return `<p class="empty">${escapeXml((e as Error).message)}</p>`;
  }
  const spread = variantSeedRows(sel.samples, sel.variants).map((r) => [
    cell(r.variant),
    cell(r.n),
    cell(r.seeds),
    cell(r.mean_pct),
    cell(r.sd_pct),
    cell(r.min_pct),
    cell(r.max_pct),
  ]);
  const pairs = defaultPairs(sel.samples).map(([a, b]) => pairRow(sel.samples, a, b)).map((p) => [
    cell(`${p.b} - ${p.a}`),
    cell(p.n),
    cell(p.seeds),
    cell(p.mean_diff),
    cell(p.sd_diff),
    cell(p.ci95_low),
    cell(p.ci95_high),
    cell(`${p.wins}/${p.ties}/${p.losses}`),
  ]);
  return `<h3>Seeds (version ${sel.version}, the newest run per seed; as <code>deno task seeds</code>)</h3>
${
    table(`seeds-${profile}`, [
      "variant",
      "n",
      "seeds",
      "mean %",
      "sd",
      "min %",
      "max %",
    ], spread)
  }
<h3>Paired QGT - QAT differences (accuracy points, shared seeds)</h3>
${
    table(`pairs-${profile}`, [
      "pair",
      "n",
      "seeds",
      "mean",
      "sd",
      "95% CI low",
      "95% CI high",
      "wins/ties/losses",
    ], pairs)
  }`;
}

async function tableIfAny(
  dir: string,
  name: "metrics" | "layers" | "layerEpochs",
): Promise<Record<string, unknown>[]> {
  return (await exists(join(dir, RUN_FILES[name]))) ? await readTable(dir, name) : [];
}

/** A run: what ran, its summary, interactive plots, the bottleneck table and its exports. */
export async function runPage(d: SiteData, r: SiteRun, siteDir: string): Promise<string> {
  const metrics = await tableIfAny(r.dir, "metrics");
  const layers = await tableIfAny(r.dir, "layers");
  const layerEpochs = await tableIfAny(r.dir, "layerEpochs");
  const depth = r.page.split("/").length - 1;
  const up = "../".repeat(depth);
  const plots: string[] = [];
  const add = (title: string, spec: Record<string, unknown>) =>
    plots.push(
      `<h2>${escapeXml(title)}</h2>${plot(`plot-${plots.length}`, interactive(spec, d.colors))}`,
    );
  if (metrics.length) add("Training curves", curvesSpec(metrics));
  if (r.summary.length) add("Size against accuracy", sizeAccuracySpec(r.summary as never));
  if (layers.length) add("Per-layer quantization error", layerErrorSpec(layers));
  if (layerEpochs.length) {
    add("Per-layer quantization error across epochs", layerEpochSpec(layerEpochs));
  }
  const summary = r.summary.map((s) =>
    SUMMARY_COLUMNS.map((c) => {
      const v = (s as unknown as Record<string, unknown>)[c];
      return c === "accuracy" || c === "simulated_accuracy"
        ? cell(pct(v))
        : cell(v, c === "loss" ? 4 : 2);
    })
  );
  const exports = r.summary.filter((s) => s.mode !== "float").map((s) => {
    const m = r.mcu[s.variant];
    return [
      cell(s.variant),
      cell(s.bytes),
      cell(s.reduction),
      cell(pct(s.accuracy)),
      cell(s.accuracy_drop),
      cell(s.tflite_bytes),
      cell(pct(s.tflite_agreement)),
      cell(m?.flash),
      cell(m?.ram),
      m?.instructions
        ? { text: `${(m.instructions / 1e6).toFixed(2)} M`, sort: m.instructions }
        : cell(null),
      cell(m?.kernels),
    ];
  });
  const relRun = relative(resolve(siteDir, r.page, ".."), resolve(r.dir));
  const rec = `<p>${escapeXml(r.experiment)} version ${r.version}, profile ${
    escapeXml(r.profile)
  }, seed ${r.seed};
commit <code>${escapeXml(r.commit.slice(0, 12))}</code>${r.dirty ? " (dirty tree)" : ""}; started ${
    escapeXml(date(r.started))
  } UTC; status ${escapeXml(r.status)}; compute ${
    r.seconds === null ? "-" : formatDuration(r.seconds)
  }; backend ${escapeXml(r.backend)}. Files: <a href="${
    escapeXml(relRun)
  }/${RUN_FILES.report}">report.html</a>,
<a href="${escapeXml(relRun)}/">the run directory</a>.</p>`;
  const warned = r.record.warnings ?? [];
  const warnings = warned.length
    ? `<ul class="warnings">${
      warned.map((w) => `<li>${escapeXml(w.replace(/^warning: /, ""))}</li>`).join("")
    }</ul>`
    : "";
  const body = `${rec}${warnings}
<p><a href="${up}compare.html#a=${encodeURIComponent(r.key)}">Compare this run with another</a></p>
<h2>Summary</h2>
${
    table(
      "summary",
      SUMMARY_COLUMNS.map((c) => c === "accuracy" || c === "simulated_accuracy" ? `${c} %` : c),
      summary,
    )
  }
${plots.join("\n")}
<h2>Layers (bottleneck analysis)</h2>
${table("layers", LAYER_COLUMNS, layers.map((l) => LAYER_COLUMNS.map((c) => cell(l[c], 4))))}
<h2>Exports</h2>
${
    table("exports", [
      "variant",
      "model.qgt bytes",
      "reduction",
      "accuracy %",
      "drop (points)",
      "tflite bytes",
      "tflite agreement %",
      "M4 flash",
      "M4 RAM",
      "M4 instructions / image",
      "M4 kernels",
    ], exports)
  }`;
  return page(`${r.experiment} v${r.version}: ${r.runId}`, depth, body);
}

/** The compare view: the page's script fills it from data/runs.js. */
export function comparePage(): string {
  const body = `<p>Pick an experiment and two runs, or the latest complete run at two commits. The
differences are <code>deno task compare</code>'s (B - A, the same functions); a regression is
accuracy lower by more than the threshold in points, or size larger by more than it in percent.</p>
<form id="compare-form">
<label>experiment <select id="cmp-exp"></select></label>
<label>A <select id="cmp-a"></select></label>
<label>B <select id="cmp-b"></select></label>
<label>threshold <input id="cmp-pct" type="number" min="0" step="0.1" value="1" size="4"></label>
</form>
<div id="compare-out"></div>`;
  return page(
    "Compare two runs",
    0,
    body,
    `<script src="data/runs.js"></script>
<script src="assets/compare-lib.js"></script>\n`,
  );
}

/**
 * The paper's figures, regenerated from the latest complete runs: weight
 * histograms (float, QAT-2, QGT-2), accuracy against bits (both datasets,
 * with seed spread), per-layer quantization error across epochs, size against
 * accuracy with the 81 KB budget, and training curves. Each figure is written
 * as `<name>.svg`, `<name>.png`, `<name>.vl.json` and the `<name>.csv` behind it.
 * @module
 */
import { join } from "node:path";
import { tableOf, writeCsv } from "../util/tables.ts";
import { renderSvg, type VegaLiteSpec } from "../report/vega.ts";
import { svgToPng } from "../report/png.ts";
import { curvesSpec, layerEpochSpec, sizeAccuracySpec } from "../report/run_report.ts";
import { writeFileAtomic, writeJsonAtomic, writeTextAtomic } from "../util/fs.ts";
import { foldBatchNorm } from "../models/fold.ts";
import { createModel, disposeModel, setWeights } from "../models/model.ts";
import {
  LAYER_EPOCH_COLUMNS,
  listRunDirs,
  type LocatedRun,
  METRIC_COLUMNS,
  readSummary,
  readTable,
  variantFiles,
} from "../run/run_dir.ts";
import { loadDeployed, readFinal } from "../run/final.ts";

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

/** A located complete run. */
export type FigureRun = LocatedRun;

/**
 * What the figures are drawn from: which experiments, variants and layer,
 * and the words on them. The paper's choices are `PAPER_FIGURES`
 * (`paper_figures.ts`); the rendering here knows no experiment by name.
 */
export interface FigureDefs {
  /** The one-seed experiment of figures (a), (c), (d) and (e). */
  main: {
    experiment: string;
    /** Its dataset's name in figure (b). */
    label: string;
    /** Figure (a): the kernel of `layer` of these variants, in units of the 2-bit grid's step. */
    histogram: { layer: string; float: string; qat: string; qgt: string };
    /** Figure (c): the variants whose per-layer error across epochs is shown. */
    layerErrorVariants: string[];
    /** Figure (d): the size budget (dashed) and the figure's title and caption. */
    sizeAccuracy: { budgetBytes: number; title: string; what: string };
    /** Figure (e): title and caption. */
    curves: { title: string; what: string };
    /** Figure (c): caption. */
    layerErrorWhat: string;
  };
  /** Figure (b): the seed sweep drawn beside the main experiment. */
  sweep: { experiment: string; label: string };
  /** Figure (b): caption. */
  accuracyBitsWhat: string;
}

/**
 * The latest complete run of an experiment with the given profile, per seed.
 *
 * @example
 * ```ts
 * import { latestRuns } from "./figures.ts";
 * const dir = await Deno.makeTempDir();
 * const runs = await latestRuns(dir, "person-detect");
 * if (runs.size !== 0) throw new Error(); // no runs under an empty root
 * await Deno.remove(dir);
 * ```
 */
export async function latestRuns(
  outRoot: string,
  id: string,
  profile = "default",
): Promise<Map<number, FigureRun>> {
  const runs = (await listRunDirs(outRoot, id)).filter((r) =>
    r.record.status === "complete" && r.record.experiment.profile === profile
  );
  const bySeed = new Map<number, FigureRun>();
  for (const r of runs) if (!bySeed.has(r.record.seed)) bySeed.set(r.record.seed, r);
  return bySeed;
}

/** One written figure. */
export interface Figure {
  name: string;
  title: string;
  what: string;
  runs: FigureRun[];
}

async function writeFigure(
  dir: string,
  name: string,
  spec: VegaLiteSpec,
  rows: object[],
  columns: string[],
): Promise<void> {
  await writeCsv(join(dir, `${name}.csv`), tableOf(rows, columns));
  await writeJsonAtomic(join(dir, `${name}.vl.json`), spec);
  const svg = await renderSvg(spec);
  await writeTextAtomic(join(dir, `${name}.svg`), svg);
  await writeFileAtomic(join(dir, `${name}.png`), await svgToPng(svg, 2));
}

/** Histogram of values in step units (w / s per output channel), as density per bin. */
function histogram(
  u: Float32Array,
  lo: number,
  hi: number,
  width: number,
): { center: number; density: number }[] {
  const n = Math.round((hi - lo) / width);
  const counts = new Float64Array(n);
  for (const v of u) {
    const b = Math.floor((v - lo) / width);
    if (b >= 0 && b < n) counts[b]++;
  }
  return Array.from(
    counts,
    (c, i) => ({
      center: Number((lo + (i + 0.5) * width).toFixed(4)),
      density: c / (u.length * width),
    }),
  );
}

function stepUnits(w: Float32Array, scales: Float32Array): Float32Array {
  const c = scales.length;
  return w.map((v, i) => v / scales[c === 1 ? 0 : i % c]);
}

/** Figure (a): the kernel of one layer of float, QAT and QGT, in units of the 2-bit grid's step. */
async function histogramFigure(dir: string, defs: FigureDefs, run: FigureRun): Promise<Figure[]> {
  const hv = defs.main.histogram, layer = hv.layer;
  const QAT = hv.qat.toUpperCase(), QGT = hv.qgt.toUpperCase();
  const final = (v: string) => variantFiles(run.dir, v).final;
  const q2 = await loadDeployed(final(hv.qgt)).catch(() => null);
  const a2 = await loadDeployed(final(hv.qat)).catch(() => null);
  const fc = await readFinal(final(hv.float)).catch(() => null);
  const q2q = q2?.final.quantized, a2q = a2?.final.quantized;
  if (!q2 || !a2 || !fc || !q2q || !a2q) return [];
  const fm = createModel(fc.arch, 0);
  setWeights(fm, fc.weights);
  const folded = foldBatchNorm(fm);
  const wf = folded.params.get(`${layer}/kernel`)!.dataSync() as Float32Array;
  const s2 = q2q.weights[layer].scales, sa = a2q.weights[layer].scales;
  // the float kernel measured on the grid QGT-2 ended with (per-channel scales of the same layer)
  const uq = stepUnits(a2q.latent[layer], sa), ug = stepUnits(q2q.latent[layer], s2);
  const hist: { variant: string; center: number; density: number }[] = [];
  for (
    const [variant, u] of [
      ["float", stepUnits(wf, s2)],
      [`${hv.qat} (before snapping)`, uq],
      [`${hv.qgt} (before snapping)`, ug],
    ] as const
  ) {
    for (const h of histogram(u, -3, 2, 0.05)) hist.push({ variant, ...h });
  }
  const offGrid = { qat: rmsOffGrid(uq), qgt: rmsOffGrid(ug) };
  for (const m of [fm, folded, q2.model, a2.model]) disposeModel(m);
  await writeFigure(
    dir,
    "weight_histograms",
    {
      $schema: SCHEMA,
      title: `Weights of ${layer} in 2-bit grid steps (levels at -2, -1, 0, 1)`,
      data: { values: hist },
      facet: {
        row: {
          field: "variant",
          type: "nominal",
          title: null,
          sort: ["float", `${hv.qat} (before snapping)`, `${hv.qgt} (before snapping)`],
        },
      },
      spec: {
        width: 480,
        height: 110,
        mark: { type: "area", interpolate: "step" },
        encoding: {
          x: { field: "center", type: "quantitative", title: "w / s (quantization steps)" },
          y: { field: "density", type: "quantitative", title: "density" },
        },
      },
    },
    hist,
    ["variant", "center", "density"],
  );
  return [{
    name: "weight_histograms",
    title: "(a) Weight histograms",
    what:
      `Kernel of ${layer} (BatchNorm folded) in units of the per-channel 2-bit step: float, ${QAT} and ${QGT} before the final snap. ` +
      `RMS distance of the weights to their nearest level: ${QAT} ${
        offGrid.qat.toFixed(3)
      }, ${QGT} ${
        offGrid.qgt.toFixed(3)
      } steps (0 would be exactly on the grid; 0.29 is what uniformly spread weights give).`,
    runs: [run],
  }];
}

/** Figures (d), (e) and (c) of the main run: size against accuracy, curves, per-layer error. */
async function mainRunFigures(dir: string, defs: FigureDefs, run: FigureRun): Promise<Figure[]> {
  const d = defs.main, figs: Figure[] = [];
  const sa = (await readSummary(run.dir)).map((r) => ({
    variant: r.variant,
    mode: r.mode,
    bits: r.bits,
    bytes: r.bytes,
    accuracy: r.accuracy,
  }));
  await writeFigure(
    dir,
    "size_accuracy",
    sizeAccuracySpec(sa, d.sizeAccuracy.budgetBytes, d.sizeAccuracy.title),
    sa,
    ["variant", "mode", "bits", "bytes", "accuracy"],
  );
  figs.push({
    name: "size_accuracy",
    title: "(d) Size against accuracy",
    what: d.sizeAccuracy.what,
    runs: [run],
  });
  const curves = (await readTable(run.dir, "metrics")).filter((r) =>
    r.split === "val" && r.metric === "accuracy"
  );
  await writeFigure(
    dir,
    "training_curves",
    curvesSpec(curves, d.curves.title),
    curves,
    METRIC_COLUMNS,
  );
  figs.push({
    name: "training_curves",
    title: "(e) Training curves",
    what: d.curves.what,
    runs: [run],
  });
  const le = (await readTable(run.dir, "layerEpochs")).filter((r) =>
    d.layerErrorVariants.includes(String(r.variant))
  );
  if (le.length) {
    await writeFigure(
      dir,
      "layer_error_epochs",
      layerEpochSpec(le, { field: "relative_error", log: true, height: 90 }),
      le,
      LAYER_EPOCH_COLUMNS,
    );
    figs.push({
      name: "layer_error_epochs",
      title: "(c) Per-layer quantization error across epochs",
      what: d.layerErrorWhat,
      runs: [run],
    });
  }
  return figs;
}

/** One point of figure (b): a variant's accuracy at its weight bits in one seed's run. */
interface BitsPoint {
  dataset: string;
  mode: string;
  bits: number;
  seed: number;
  accuracy: number;
}

/** The points of figure (b) from runs of one dataset (float drawn at every bit width). */
async function bitsPoints(dataset: string, runs: FigureRun[]): Promise<BitsPoint[]> {
  const acc: BitsPoint[] = [];
  for (const r of runs) {
    for (const s of await readSummary(r.dir)) {
      const bits = Number(s.bits), seed = r.record.seed, accuracy = Number(s.accuracy);
      if (s.mode === "float") {
        for (const b of [2, 3, 4, 8]) acc.push({ dataset, mode: "float", bits: b, seed, accuracy });
      } else if (Number.isFinite(bits)) {
        acc.push({ dataset, mode: String(s.mode), bits, seed, accuracy });
      }
    }
  }
  return acc;
}

/** The Vega-Lite spec of figure (b): accuracy against bits per dataset, mean and min-max over seeds. */
function accuracyBitsSpec(acc: BitsPoint[]): VegaLiteSpec {
  return {
    $schema: SCHEMA,
    title: "Accuracy against weight bits (mean over seeds, bars: min-max)",
    data: { values: acc },
    facet: { column: { field: "dataset", type: "nominal", title: null } },
    resolve: { scale: { y: "independent" } },
    spec: {
      width: 260,
      height: 260,
      layer: [
        {
          mark: { type: "line", point: true },
          encoding: {
            x: { field: "bits", type: "ordinal", title: "weight bits" },
            y: {
              aggregate: "mean",
              field: "accuracy",
              type: "quantitative",
              scale: { zero: false },
              title: "accuracy",
            },
            color: { field: "mode", type: "nominal" },
            strokeDash: {
              condition: { test: "datum.mode === 'float'", value: [4, 3] },
              value: [1, 0],
            },
          },
        },
        {
          // the seed spread as a min-max bar (Vega-Lite's errorbar "ci" bootstraps at
          // random, which would make the figure differ on every render)
          mark: { type: "rule" },
          encoding: {
            x: { field: "bits", type: "ordinal" },
            y: { aggregate: "min", field: "accuracy", type: "quantitative" },
            y2: { aggregate: "max", field: "accuracy" },
            color: { field: "mode", type: "nominal" },
          },
        },
      ],
    },
  };
}

/**
 * Writes every figure it has runs for into `dir`; returns what it wrote.
 * `defs` says which experiments, variants and layer (`PAPER_FIGURES` for the paper's).
 *
 * @example
 * ```ts ignore
 * const figs = await writeFigures("reports/runs", "reports/figures", PAPER_FIGURES);
 * ```
 */
export async function writeFigures(
  outRoot: string,
  dir: string,
  defs: FigureDefs,
  profile = "default",
): Promise<Figure[]> {
  const figs: Figure[] = [];
  const main = (await latestRuns(outRoot, defs.main.experiment, profile)).values().next()
    .value as FigureRun | undefined;
  const sweep = [...(await latestRuns(outRoot, defs.sweep.experiment, profile)).values()];
  if (main) {
    figs.push(...await histogramFigure(dir, defs, main));
    figs.push(...await mainRunFigures(dir, defs, main));
  }
  // (b) accuracy against bits, both datasets, seed spread
  const acc = [
    ...(main ? await bitsPoints(defs.main.label, [main]) : []),
    ...(sweep.length ? await bitsPoints(defs.sweep.label, sweep) : []),
  ];
  if (acc.length) {
    await writeFigure(
      dir,
      "accuracy_bits",
      accuracyBitsSpec(acc),
      acc,
      ["dataset", "mode", "bits", "seed", "accuracy"],
    );
    figs.push({
      name: "accuracy_bits",
      title: "(b) Accuracy against bits",
      what: defs.accuracyBitsWhat,
      runs: [...(main ? [main] : []), ...sweep],
    });
  }
  return figs;
}

/**
 * The README of the figures folder: each figure, what it shows, and the run
 * id and commit it came from.
 *
 * @example
 * ```ts
 * import { figuresReadme } from "./figures.ts";
 * const md = figuresReadme([]);
 * if (!md.startsWith("# Figures")) throw new Error();
 * // a section of the previous README whose figure was not regenerated stays
 * const kept = figuresReadme([], md + "## (z) Old: `old`\n\nkept\n");
 * if (!kept.includes("## (z) Old: `old`\n\nkept")) throw new Error(kept);
 * ```
 */
export function figuresReadme(figs: Figure[], previous = ""): string {
  const sections = new Map<string, string>(); // figure name -> its section, in the order written
  for (const part of previous.split(/^(?=## )/m).slice(1)) {
    const name = part.match(/^## .*`([^`]+)`\s*$/m)?.[1];
    if (name && !/^No complete runs/m.test(part)) sections.set(name, part.trimEnd() + "\n");
  }
  for (const f of figs) sections.set(f.name, figureSection(f));
  const lines = [
    "# Figures",
    "",
    "Regenerated by `deno task figures` from the latest complete runs in `reports/runs/`",
    "(`deno task figures --run` runs what is missing first). Each figure has an SVG, a PNG,",
    "its Vega-Lite spec (`.vl.json`) and the CSV behind it.",
    "",
  ];
  for (const s of sections.values()) lines.push(s);
  if (!sections.size) lines.push("No complete runs yet: run `deno task figures --run`.", "");
  return lines.join("\n");
}

/** One figure's README section: title, what it shows, the picture and the runs behind it. */
function figureSection(f: Figure): string {
  const lines = [
    `## ${f.title}: \`${f.name}\``,
    "",
    f.what,
    "",
    `![${f.title}](${f.name}.png)`,
    "",
  ];
  for (const r of f.runs) {
    lines.push(
      `- run \`${r.record.runId}\` of ${r.record.experiment.id} v${r.record.experiment.version} (seed ${r.record.seed}, profile ${r.record.experiment.profile}), commit \`${
        r.record.git.commit.slice(0, 12)
      }\`${r.record.git.dirty ? " with uncommitted changes" : ""}`,
    );
  }
  return lines.join("\n") + "\n";
}

/** Root-mean-square distance of u (in steps) to the nearest 2-bit level (-2..1). */
function rmsOffGrid(u: Float32Array | number[]): number {
  let s = 0;
  for (const x of u) {
    const d = x - Math.min(1, Math.max(-2, Math.round(x)));
    s += d * d;
  }
  return Math.sqrt(s / Math.max(1, u.length));
}

/**
 * The seeds report (`deno task seeds`, and a sweep's aggregation): the runs
 * chosen by {@link collectSeeds}, optionally re-evaluated on fresh images,
 * written as `samples.csv`, `seeds.csv`, `pairs.csv`, `seeds.vl.json` and
 * `seeds.svg` in one report directory, with the tables printed.
 * @module
 */
import { join, relative } from "node:path";
import { createHash } from "node:crypto";
import {
  collectSeeds,
  defaultPairs,
  type PairRow,
  pairRow,
  reevaluateSamples,
  requireVariants,
  type SeedFilter,
  type SeedSample,
  type SeedSelection,
  type VariantSeedRow,
  variantSeedRows,
} from "./seeds.ts";
import { REPO_ROOT } from "../util/path.ts";
import { loadDataset } from "../data/registry.ts";
import { datasetChecksum } from "../data/cache.ts";
import { evaluateModel } from "../engine/evaluate.ts";
import { formatRows, readCsv, rowsOf, tableOf, writeCsv } from "../util/tables.ts";
import { renderSvg } from "../report/vega.ts";
import { exists, writeJsonAtomic, writeTextAtomic } from "../util/fs.ts";
import { formatDuration, imageProgress } from "../util/progress.ts";
import { UsageError } from "../util/cli.ts";

/** What to report. */
export interface SeedsReportOptions extends SeedFilter {
  /** Run roots to search. */
  roots: string[];
  /** Experiment id. */
  id: string;
  /** Pairs (A, B) to compare (default: QAT against QGT at each bit width). */
  pairs?: [string, string][];
  /** Only these variants (default: all found). */
  variants?: string[];
  /** Re-evaluate the exported models on this many fresh synthetic-person images. */
  valCount?: number;
  /** The first fresh image (default: just after the runs' validation images). */
  valOffset?: number;
  /**
   * Report directory (default `reports/seeds/` + {@linkcode seedsReportName}).
   */
  reportDir?: string;
  /** Where lines go (default console.log). */
  log?: (line: string) => void;
}

/**
 * The default report directory's name:
 * `<id>-v<version>[+<also>...][-<profile>][-val<offset>-n<count>]`. The
 * profile is named unless it is `default`, so a `--profile full` report never
 * overwrites the default profile's report of the same version.
 *
 * @example
 * ```ts
 * import { seedsReportName } from "./seeds_report.ts";
 * if (seedsReportName("fashion-mnist", "5", "full", "") !== "fashion-mnist-v5-full") throw new Error();
 * if (seedsReportName("person-detect", "5+4", "default", "-val10000-n10000") !== "person-detect-v5+4-val10000-n10000") {
 *   throw new Error();
 * }
 * ```
 */
export function seedsReportName(
  id: string,
  versions: string,
  profile: string,
  suffix: string,
): string {
  return `${id}-v${versions}${profile === "default" ? "" : `-${profile}`}${suffix}`;
}

/** What was written. */
export interface SeedsReport {
  dir: string;
  selection: SeedSelection;
  samples: SeedSample[];
  rows: VariantSeedRow[];
  pairs: PairRow[];
}

const EVAL_COLUMNS = [
  "seed",
  "variant",
  "run_id",
  "model",
  "model_sha256",
  "images_sha256",
  "images",
  "accuracy",
];

/** Re-measures the chosen variants' exported models on fresh synthetic-person images. */
async function freshSamples(
  sel: SeedSelection,
  wanted: string[],
  valCount: number,
  valOffset: number | undefined,
  dirFor: (suffix: string) => string,
  log: (line: string) => void,
): Promise<{ samples: SeedSample[]; dir: string; measuredOn: string }> {
  const ds = JSON.parse(sel.dataset) as { name: string; options?: Record<string, unknown> };
  if (ds.name !== "synthetic-person") {
    throw new UsageError(
      `--val-count: fresh images come from synthetic-person's generator; these runs used ${ds.name}`,
    );
  }
  requireVariants(sel, wanted, "--pair"); // before the fresh images are generated
  if (!wanted.length) {
    throw new UsageError("--val-count: name the variants to re-evaluate (--variants or --pair)");
  }
  const o = ds.options ?? {};
  const trainCount = Number(o.trainCount ?? 8000);
  const offset = valOffset ?? Number(o.valOffset ?? trainCount) + Number(o.valCount ?? 2000);
  const { val } = await loadDataset(ds.name, { ...o, valOffset: offset, valCount });
  const imagesSha = datasetChecksum(val.images, val.labels);
  const measuredOn = `images ${offset}..${offset + valCount - 1} (interpreter)`;
  const dir = dirFor(`-val${offset}-n${valCount}`);
  const evalPath = join(dir, "evaluations.csv");
  // evaluations.csv is the directory's cache of every evaluation made in it: rows of earlier
  // invocations stay (a narrower invocation does not drop what a wider one measured); a row is one
  // (run, variant, model bytes, images), and its accuracy is reused wherever the hashes match.
  const known = new Map<string, number>();
  const evals = new Map<string, Record<string, unknown>>();
  const rowKey = (r: Record<string, unknown>) =>
    `${r.run_id}/${r.variant}:${r.model_sha256}:${r.images_sha256}`;
  if (await exists(evalPath)) {
    for (const r of rowsOf(await readCsv(evalPath))) {
      known.set(`${r.model_sha256}:${r.images_sha256}`, Number(r.accuracy));
      evals.set(rowKey(r), r);
    }
  }
  log(`re-evaluating ${wanted.join(", ")} on synthetic-person ${measuredOn}, ${valCount} images`);
  const samples = await reevaluateSamples(sel, wanted, async (bytes, file, s) => {
    const sha = createHash("sha256").update(bytes).digest("hex");
    const t0 = performance.now();
    let acc = known.get(`${sha}:${imagesSha}`);
    const cached = acc !== undefined;
    if (acc === undefined) {
      acc = (await evaluateModel(bytes, val, file, imageProgress(`seed ${s.seed} ${s.variant}`)))
        .accuracy;
    }
    log(
      `  seed ${s.seed} ${s.variant}: ${(acc * 100).toFixed(2)} % (run ${s.runId}; ${
        cached ? "from evaluations.csv" : formatDuration((performance.now() - t0) / 1000)
      })`,
    );
    const row = {
      seed: s.seed,
      variant: s.variant,
      run_id: s.runId,
      model: relative(REPO_ROOT, file),
      model_sha256: sha,
      images_sha256: imagesSha,
      images: valCount,
      accuracy: acc,
    };
    evals.set(rowKey(row), row);
    await writeCsv(evalPath, tableOf([...evals.values()], EVAL_COLUMNS));
    return acc;
  });
  return { samples, dir, measuredOn };
}

/** The figure: each seed's accuracy per variant and the mean. */
function seedsFigure(
  sel: SeedSelection,
  samples: SeedSample[],
  variants: string[],
  measuredOn: string | null,
): Record<string, unknown> {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: `${sel.id} v${
      [sel.version, ...sel.alsoVersions].join("+")
    }: accuracy per seed (points) and mean (tick)${measuredOn === null ? "" : `, ${measuredOn}`}`,
    data: {
      values: samples.map((s) => ({ variant: s.variant, seed: s.seed, accuracy: s.accuracy })),
    },
    width: { step: 28 },
    height: 240,
    encoding: {
      x: { field: "variant", type: "nominal", sort: variants, title: null },
      y: { field: "accuracy", type: "quantitative", scale: { zero: false }, title: "accuracy (%)" },
    },
    layer: [
      {
        mark: { type: "point", filled: true, opacity: 0.7 },
        encoding: { color: { field: "seed", type: "nominal" } },
      },
      {
        mark: { type: "tick", color: "black" },
        encoding: { y: { aggregate: "mean", field: "accuracy" } },
      },
    ],
  };
}

/**
 * Collects the seeds of experiment `id` under `roots`, computes each
 * variant's statistics over the seeds and the paired differences, prints
 * them and writes the report directory. Errors are one line naming what is
 * missing.
 *
 * @example
 * ```ts ignore
 * const r = await writeSeedsReport({ roots: ["reports/runs"], id: "fashion-mnist" });
 * console.log(r.dir);
 * ```
 */
export async function writeSeedsReport(o: SeedsReportOptions): Promise<SeedsReport> {
  const log = o.log ?? ((line: string) => console.log(line));
  const sel = await collectSeeds(o.roots, o.id, o);
  const only = o.variants;
  requireVariants(sel, only ?? [], "--variants");
  const pairList = o.pairs?.length ? o.pairs : defaultPairs(sel.samples);
  const ver = [sel.version, ...sel.alsoVersions].join("+");
  const dirFor = (suffix: string) =>
    o.reportDir ??
      join(REPO_ROOT, "reports", "seeds", seedsReportName(o.id, ver, sel.profile, suffix));
  let samples: SeedSample[], measuredOn = "summary.csv", dir: string;
  if (o.valCount === undefined) {
    samples = only ? sel.samples.filter((s) => only.includes(s.variant)) : sel.samples;
    dir = dirFor("");
  } else {
    const wanted = only ?? [...new Set(pairList.flat())];
    ({ samples, dir, measuredOn } = await freshSamples(
      sel,
      wanted,
      o.valCount,
      o.valOffset,
      dirFor,
      log,
    ));
  }
  const variants = sel.variants.filter((v) => samples.some((s) => s.variant === v));
  const rows = variantSeedRows(samples, variants);
  // explicit pairs must exist (pairRow says which variant is missing); default pairs follow the variants kept
  const pairs: PairRow[] =
    (o.pairs?.length ? o.pairs : pairList.filter((p) => p.every((v) => variants.includes(v))))
      .map(([a, b]) => pairRow(samples, a, b));

  log(`${o.id} v${ver} (${sel.profile}), dataset ${sel.dataset}: ${sel.runs.length} runs`);
  for (const r of sel.runs) {
    log(
      `  seed ${r.record.seed}: run ${r.record.runId} (v${r.record.experiment.version}, commit ${
        r.record.git.commit.slice(0, 7)
      }, ${r.record.versions?.backend ?? "wasm"})`,
    );
  }
  const backends = [...new Set(sel.runs.map((r) => r.record.versions?.backend ?? "wasm"))];
  if (backends.length > 1) {
    log(
      `note: the runs trained on different backends (${
        backends.join(", ")
      }), which round differently: part of a difference between seeds may be the backend's`,
    );
  }
  log("\naccuracy over seeds (%)");
  log(formatRows(rows as unknown as Record<string, unknown>[]));
  if (pairs.length) {
    log("\npaired differences B - A (accuracy points; 95 % t interval over the seeds)");
    log(formatRows(pairs as unknown as Record<string, unknown>[]));
  }

  await writeCsv(
    join(dir, "samples.csv"),
    tableOf(
      samples.map((s) => ({ ...s, run_id: s.runId, measured_on: measuredOn })),
      ["variant", "mode", "bits", "seed", "accuracy", "measured_on", "run_id", "commit"],
    ),
  );
  await writeCsv(
    join(dir, "seeds.csv"),
    tableOf(rows, ["variant", "n", "seeds", "mean_pct", "sd_pct", "min_pct", "max_pct"]),
  );
  await writeCsv(
    join(dir, "pairs.csv"),
    tableOf(pairs, [
      "a",
      "b",
      "n",
      "seeds",
      "mean_diff",
      "sd_diff",
      "ci95_low",
      "ci95_high",
      "wins",
      "ties",
      "losses",
    ]),
  );
  const spec = seedsFigure(sel, samples, variants, o.valCount === undefined ? null : measuredOn);
  await writeJsonAtomic(join(dir, "seeds.vl.json"), spec);
  await writeTextAtomic(join(dir, "seeds.svg"), await renderSvg(spec));
  log(`\nwrote ${dir}/samples.csv, seeds.csv, pairs.csv and seeds.svg`);
  return { dir, selection: sel, samples, rows, pairs };
}

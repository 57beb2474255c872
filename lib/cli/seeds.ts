/**
 * `deno task seeds <experiment.ts | ID> [--out DIR]... [--version N] [--profile P]
 * [--pair A,B]... [--variants A,B,...] [--val-count N [--val-offset N]] [--report-dir DIR]`:
 * each variant's accuracy over the seeds run (the latest complete run per
 * seed of one experiment version, profile and dataset) and paired differences
 * B - A on the shared seeds with a 95 % t interval (default pairs: QAT
 * against QGT at each bit width). Writes `samples.csv`, `seeds.csv`,
 * `pairs.csv` and `seeds.svg` to the report directory (default
 * `reports/seeds/<id>-v<version>/`).
 *
 * With `--val-count N` (synthetic-person runs) the exported models of the
 * compared variants are re-evaluated with the integer interpreter on N fresh
 * images of the generator's stream (from `--val-offset`, by default the first
 * image after the runs' validation images), which no run trained or
 * validated on: a larger test set than the runs' own, so a paired difference
 * is measured with less noise. Each evaluation is kept in the report
 * directory's `evaluations.csv` (keyed by the model's and the images'
 * SHA-256) and reused when the command is run again.
 * @module
 */
import { REPO_ROOT } from "../util/path.ts";
import { join, relative } from "node:path";
import { intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { loadExperimentModule } from "../experiment/define.ts";
import { createHash } from "node:crypto";
import {
  collectSeeds,
  defaultPairs,
  type PairRow,
  pairRow,
  reevaluateSamples,
  requireVariants,
  type SeedSample,
  variantSeedRows,
} from "../analysis/seeds.ts";
import { DEFAULT_RUNS_ROOT } from "../run/run_dir.ts";
import { loadDataset } from "../data/registry.ts";
import { datasetChecksum } from "../data/cache.ts";
import { evaluateModel } from "../export/export.ts";
import { formatRows, readCsv, rowsOf, tableOf, writeCsv } from "../util/tables.ts";
import { renderSvg } from "../report/vega.ts";
import { exists, writeJsonAtomic, writeTextAtomic } from "../util/fs.ts";
import { formatDuration } from "../util/progress.ts";

const USAGE =
  "usage: deno task seeds <experiment.ts | ID> [--out DIR]... [--version N] [--profile P] [--pair A,B]... [--variants A,B,...] [--val-count N [--val-offset N]] [--report-dir DIR]";

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

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    out: { type: "string", multiple: true },
    version: { type: "string" },
    profile: { type: "string" },
    pair: { type: "string", multiple: true },
    variants: { type: "string" },
    "val-count": { type: "string" },
    "val-offset": { type: "string" },
    "report-dir": { type: "string" },
  });
  const valCount = f["val-count"] === undefined
    ? undefined
    : intFlag("--val-count", f["val-count"], 1);
  const valOffsetFlag = f["val-offset"] === undefined
    ? undefined
    : intFlag("--val-offset", f["val-offset"], 0);
  if (valOffsetFlag !== undefined && valCount === undefined) {
    throw new UsageError(
      "--val-offset: needs --val-count N (how many fresh images to evaluate on)",
    );
  }
  const only = f.variants === undefined
    ? undefined
    : (f.variants as string).split(",").map((v) => v.trim()).filter((v) => v);
  if (only && !only.length) throw new UsageError("--variants: expected variant names A,B,...");
  if (positionals.length !== 1) throw new UsageError(USAGE);
  let id = positionals[0];
  if (id.endsWith(".ts")) {
    const def = await loadExperimentModule(id) as { id?: unknown };
    if (typeof def?.id !== "string") throw new Error(`${id}: the experiment has no id`);
    id = def.id;
  }
  const pairs = ((f.pair as string[] | undefined) ?? []).map((p): [string, string] => {
    const parts = p.split(",");
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      throw new UsageError(`--pair: expected two variant names A,B, got ${JSON.stringify(p)}`);
    }
    return [parts[0], parts[1]];
  });
  const roots = (f.out as string[] | undefined) ?? [DEFAULT_RUNS_ROOT];
  const sel = await collectSeeds(roots, id, {
    version: f.version === undefined ? undefined : intFlag("--version", f.version, 1),
    profile: f.profile as string | undefined,
  });
  requireVariants(sel, only ?? [], "--variants");
  const pairList = pairs.length ? pairs : defaultPairs(sel.samples);
  const dirFor = (suffix: string) =>
    (f["report-dir"] as string | undefined) ??
      join(REPO_ROOT, "reports", "seeds", `${id}-v${sel.version}${suffix}`);
  let samples: SeedSample[], measuredOn = "summary.csv", dir: string;
  if (valCount === undefined) {
    samples = only ? sel.samples.filter((s) => only.includes(s.variant)) : sel.samples;
    dir = dirFor("");
  } else {
    const ds = JSON.parse(sel.dataset) as { name: string; options?: Record<string, unknown> };
    if (ds.name !== "synthetic-person") {
      throw new UsageError(
        `--val-count: fresh images come from synthetic-person's generator; these runs used ${ds.name}`,
      );
    }
    const wanted = only ?? [...new Set(pairList.flat())];
    requireVariants(sel, wanted, "--pair"); // before the fresh images are generated
    if (!wanted.length) {
      throw new UsageError("--val-count: name the variants to re-evaluate (--variants or --pair)");
    }
    const o = ds.options ?? {};
    const trainCount = Number(o.trainCount ?? 8000);
    const offset = valOffsetFlag ??
      Number(o.valOffset ?? trainCount) + Number(o.valCount ?? 2000);
    const { val } = await loadDataset(ds.name, { ...o, valOffset: offset, valCount });
    const imagesSha = datasetChecksum(val.images, val.labels);
    measuredOn = `images ${offset}..${offset + valCount - 1} (interpreter)`;
    dir = dirFor(`-val${offset}-n${valCount}`);
    const evalPath = join(dir, "evaluations.csv");
    const known = new Map<string, number>();
    const evals: Record<string, unknown>[] = [];
    if (await exists(evalPath)) {
      for (const r of rowsOf(await readCsv(evalPath))) {
        known.set(`${r.model_sha256}:${r.images_sha256}`, Number(r.accuracy));
      }
    }
    console.log(
      `re-evaluating ${wanted.join(", ")} on synthetic-person ${measuredOn}, ${valCount} images`,
    );
    samples = await reevaluateSamples(sel, wanted, async (bytes, file, s) => {
      const sha = createHash("sha256").update(bytes).digest("hex");
      const t0 = performance.now();
      let acc = known.get(`${sha}:${imagesSha}`);
      const cached = acc !== undefined;
      if (acc === undefined) acc = (await evaluateModel(bytes, val, file)).accuracy;
      console.log(
        `  seed ${s.seed} ${s.variant}: ${(acc * 100).toFixed(2)} % (run ${s.runId}; ${
          cached ? "from evaluations.csv" : formatDuration((performance.now() - t0) / 1000)
        })`,
      );
      evals.push({
        seed: s.seed,
        variant: s.variant,
        run_id: s.runId,
        model: relative(REPO_ROOT, file),
        model_sha256: sha,
        images_sha256: imagesSha,
        images: valCount,
        accuracy: acc,
      });
      await writeCsv(evalPath, tableOf(evals, EVAL_COLUMNS));
      return acc;
    });
  }
  const variants = sel.variants.filter((v) => samples.some((s) => s.variant === v));
  const rows = variantSeedRows(samples, variants);
  // explicit pairs must exist (pairRow says which variant is missing); default pairs follow the variants kept
  const pairRows: PairRow[] = (pairs.length ? pairs : pairList.filter((p) =>
    p.every((v) => variants.includes(v))
  ))
    .map(([a, b]) => pairRow(samples, a, b));

  console.log(
    `${id} v${sel.version} (${sel.profile}), dataset ${sel.dataset}: ${sel.runs.length} runs`,
  );
  for (const r of sel.runs) {
    console.log(
      `  seed ${r.record.seed}: run ${r.record.runId} (commit ${r.record.git.commit.slice(0, 7)})`,
    );
  }
  console.log("\naccuracy over seeds (%)");
  console.log(formatRows(rows as unknown as Record<string, unknown>[]));
  if (pairRows.length) {
    console.log("\npaired differences B - A (accuracy points; 95 % t interval over the seeds)");
    console.log(formatRows(pairRows as unknown as Record<string, unknown>[]));
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
    tableOf(pairRows, [
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
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: `${id} v${sel.version}: accuracy per seed (points) and mean (tick)${
      valCount === undefined ? "" : `, ${measuredOn}`
    }`,
    data: {
      values: samples.map((s) => ({ variant: s.variant, seed: s.seed, accuracy: s.accuracy })),
    },
    width: { step: 28 },
    height: 240,
    encoding: {
      x: { field: "variant", type: "nominal", sort: variants, title: null },
      y: {
        field: "accuracy",
        type: "quantitative",
        scale: { zero: false },
        title: "accuracy (%)",
      },
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
  await writeJsonAtomic(join(dir, "seeds.vl.json"), spec);
  await writeTextAtomic(join(dir, "seeds.svg"), await renderSvg(spec));
  console.log(`\nwrote ${dir}/samples.csv, seeds.csv, pairs.csv and seeds.svg`);
});

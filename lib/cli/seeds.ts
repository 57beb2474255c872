/**
 * `deno task seeds <experiment.ts | ID> [--out DIR]... [--version N] [--profile P]
 * [--pair A,B]... [--report-dir DIR]`: each variant's accuracy over the seeds
 * run (the latest complete run per seed of one experiment version, profile
 * and dataset) and paired differences B - A on the shared seeds with a 95 %
 * t interval (default pairs: QAT against QGT at each bit width). Writes
 * `samples.csv`, `seeds.csv`, `pairs.csv` and `seeds.svg` to the report
 * directory (default `reports/seeds/<id>-v<version>/`).
 * @module
 */
import { join } from "node:path";
import { intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";
import { loadExperimentModule } from "../experiment/define.ts";
import {
  collectSeeds,
  defaultPairs,
  type PairRow,
  pairRow,
  variantSeedRows,
} from "../experiment/seeds.ts";
import { formatRows, tableOf, writeCsv } from "../report/tables.ts";
import { renderSvg } from "../report/vega.ts";
import { writeJsonAtomic, writeTextAtomic } from "../util/fs.ts";

const REPO = new URL("../../", import.meta.url).pathname;
const USAGE =
  "usage: deno task seeds <experiment.ts | ID> [--out DIR]... [--version N] [--profile P] [--pair A,B]... [--report-dir DIR]";

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    out: { type: "string", multiple: true },
    version: { type: "string" },
    profile: { type: "string" },
    pair: { type: "string", multiple: true },
    "report-dir": { type: "string" },
  });
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
  const roots = (f.out as string[] | undefined) ?? [join(REPO, "reports", "runs")];
  const sel = await collectSeeds(roots, id, {
    version: f.version === undefined ? undefined : intFlag("--version", f.version, 1),
    profile: f.profile as string | undefined,
  });
  const rows = variantSeedRows(sel.samples, sel.variants);
  const pairRows: PairRow[] = (pairs.length ? pairs : defaultPairs(sel.samples))
    .map(([a, b]) => pairRow(sel.samples, a, b));

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

  const dir = (f["report-dir"] as string | undefined) ??
    join(REPO, "reports", "seeds", `${id}-v${sel.version}`);
  await writeCsv(
    join(dir, "samples.csv"),
    tableOf(
      sel.samples.map((s) => ({ ...s, run_id: s.runId })),
      ["variant", "mode", "bits", "seed", "accuracy", "run_id", "commit"],
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
    title: `${id} v${sel.version}: accuracy per seed (points) and mean (tick)`,
    data: {
      values: sel.samples.map((s) => ({ variant: s.variant, seed: s.seed, accuracy: s.accuracy })),
    },
    width: { step: 28 },
    height: 240,
    encoding: {
      x: { field: "variant", type: "nominal", sort: sel.variants, title: null },
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

/**
 * `deno task seeds <experiment.ts | ID> [--out DIR]... [--version N] [--also-version N]... [--profile P]
 * [--seeds 1-5] [--pair A,B]... [--variants A,B,...] [--val-count N [--val-offset N]]
 * [--report-dir DIR]`: each variant's accuracy over the seeds run (the latest complete run per
 * seed of one experiment version, profile and dataset; `--also-version N` takes the
 * variants those runs lack from version N's runs, for variants left unchanged between versions)
 * and paired differences
 * B - A on the shared seeds with a 95 % t interval (default pairs: each QAT
 * variant against the QGT variant named alike, e.g. qat-2 / qgt-2). Writes `samples.csv`, `seeds.csv`,
 * `pairs.csv` and `seeds.svg` to the report directory (default
 * `reports/seeds/<id>-v<version>[-<profile>]/`, the profile named unless it is `default`).
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
import { intFlag, parseFlags, parseSeeds, runMain, UsageError } from "../util/cli.ts";
import { loadExperimentModule } from "../experiment/define.ts";
import { writeSeedsReport } from "../analysis/seeds_report.ts";
import { DEFAULT_RUNS_ROOT } from "../run/run_dir.ts";

const USAGE =
  "usage: deno task seeds <experiment.ts | ID> [--out DIR]... [--version N] [--also-version N]... [--profile P] [--seeds 1-5] [--pair A,B]... [--variants A,B,...] [--val-count N [--val-offset N]] [--report-dir DIR]";

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    out: {
      type: "string",
      arg: "DIR",
      multiple: true,
      help: "runs root to read (default: reports/runs)",
    },
    version: { type: "string", arg: "N", help: "the experiment version (default: the module's)" },
    "also-version": {
      type: "string",
      arg: "N",
      multiple: true,
      help: "take variants the runs lack from version N's runs",
    },
    profile: { type: "string", arg: "P", help: "the runs' profile (default: default)" },
    seeds: { type: "string", arg: "1-5", help: "only these seeds (default: every seed run)" },
    pair: {
      type: "string",
      arg: "A,B",
      multiple: true,
      help: "a paired difference B - A (default: each qat-N with qgt-N)",
    },
    variants: { type: "string", arg: "A,B", help: "only these variants" },
    "val-count": {
      type: "string",
      arg: "N",
      help: "re-evaluate exports on N fresh images (synthetic-person)",
    },
    "val-offset": {
      type: "string",
      arg: "N",
      help: "with --val-count: first fresh image (default: after the runs' validation images)",
    },
    "report-dir": {
      type: "string",
      arg: "DIR",
      help: "where the tables go (default: reports/seeds/<id>-v<version>[-<profile>])",
    },
  }, USAGE);
  const valCount = f["val-count"] === undefined
    ? undefined
    : intFlag("--val-count", f["val-count"], 1);
  const valOffset = f["val-offset"] === undefined
    ? undefined
    : intFlag("--val-offset", f["val-offset"], 0);
  if (valOffset !== undefined && valCount === undefined) {
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
  // given the experiment file, its variants report in the order it declares them
  let order: string[] | undefined;
  if (id.endsWith(".ts")) {
    const def = await loadExperimentModule(id) as { id?: unknown; variants?: unknown };
    if (typeof def?.id !== "string") throw new Error(`${id}: the experiment has no id`);
    id = def.id;
    if (def.variants && typeof def.variants === "object") order = Object.keys(def.variants);
  }
  const pairs = ((f.pair as string[] | undefined) ?? []).map((p): [string, string] => {
    const parts = p.split(",");
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      throw new UsageError(`--pair: expected two variant names A,B, got ${JSON.stringify(p)}`);
    }
    return [parts[0], parts[1]];
  });
  await writeSeedsReport({
    roots: (f.out as string[] | undefined) ?? [DEFAULT_RUNS_ROOT],
    id,
    version: f.version === undefined ? undefined : intFlag("--version", f.version, 1),
    alsoVersions: ((f["also-version"] as string[] | undefined) ?? []).map((x) =>
      intFlag("--also-version", x, 1)
    ),
    profile: f.profile as string | undefined,
    seeds: f.seeds === undefined ? undefined : parseSeeds("--seeds", f.seeds),
    pairs,
    order,
    variants: only,
    valCount,
    valOffset,
    reportDir: f["report-dir"] as string | undefined,
  });
});

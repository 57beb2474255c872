/**
 * `deno task compare [REV_A] [REV_B] [--experiment ID] [--seed N] [--profile P] [--out DIR] [--fail-on-regression PCT]`:
 * compares the latest complete runs at two commits, prints accuracy and bytes
 * at A and B per variant with their changes, says what else than the commit
 * differs between the two runs, writes a comparison table and plot, and with
 * `--fail-on-regression` exits 1 when accuracy drops by more than PCT points
 * or size grows by more than PCT percent.
 * @module
 */
import { REPO_ROOT } from "../util/path.ts";
import { join } from "node:path";
import { intFlag, parseFlags, runMain, UsageError } from "../util/cli.ts";
import {
  compareSummaries,
  pickRuns,
  regressions,
  runDifferences,
  wideRows,
} from "../analysis/compare.ts";
import { DEFAULT_RUNS_ROOT } from "../run/run_dir.ts";
import { formatRows, tableOf, writeCsv } from "../util/tables.ts";
import { renderSvg } from "../report/vega.ts";
import { writeJsonAtomic, writeTextAtomic } from "../util/fs.ts";

const USAGE =
  "usage: deno task compare [REV_A] [REV_B] [--experiment ID] [--seed N] [--profile P] [--out DIR] [--fail-on-regression PCT] [--report-dir DIR]";

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    experiment: {
      type: "string",
      arg: "ID",
      help: "the experiment to compare (default: the one both commits ran)",
    },
    seed: { type: "string", arg: "N", help: "compare runs of this seed" },
    profile: {
      type: "string",
      arg: "P",
      help: "compare runs of this profile (default, quick, full)",
    },
    out: { type: "string", arg: "DIR", help: "runs root (default: reports/runs)" },
    "fail-on-regression": {
      type: "string",
      arg: "PCT",
      help: "exit 1 when accuracy drops by more than PCT points or size grows by more than PCT %",
    },
    "report-dir": {
      type: "string",
      arg: "DIR",
      help: "where compare.csv and the plot go (default: reports/compare/<id>-<A>-<B>)",
    },
  }, USAGE);
  if (positionals.length > 2) {
    throw new UsageError(USAGE);
  }
  let pct: number | undefined;
  if (f["fail-on-regression"] !== undefined) {
    pct = Number(f["fail-on-regression"]);
    if (!(pct >= 0)) {
      throw new UsageError(
        `--fail-on-regression: expected a non-negative number, got ${
          JSON.stringify(f["fail-on-regression"])
        }`,
      );
    }
  }
  const outRoot = (f.out as string | undefined) ?? DEFAULT_RUNS_ROOT;
  const [a, b] = await pickRuns(
    outRoot,
    positionals[0],
    positionals[1],
    f.experiment as string | undefined,
    REPO_ROOT,
    {
      seed: f.seed !== undefined ? intFlag("--seed", f.seed, 0, 2 ** 31) : undefined,
      profile: f.profile as string | undefined,
    },
  );
  const { rows, onlyA, onlyB } = await compareSummaries(a.dir, b.dir);
  const id = a.record.experiment.id;
  console.log(
    `${id}: A = run ${a.record.runId} (commit ${
      a.record.git.commit.slice(0, 7)
    }), B = run ${b.record.runId} (commit ${b.record.git.commit.slice(0, 7)})`,
  );
  console.log(formatRows(wideRows(rows)));
  const differ = runDifferences(a.record, b.record);
  if (differ.length) {
    console.error(
      `note: the runs differ in more than the commit, and the changes include that: ${
        differ.join("; ")
      }`,
    );
  }
  if (onlyA.length) console.error(`note: only in A (not compared): ${onlyA.join(", ")}`);
  if (onlyB.length) console.error(`note: only in B (not compared): ${onlyB.join(", ")}`);
  const dir = (f["report-dir"] as string | undefined) ??
    join(
      REPO_ROOT,
      "reports",
      "compare",
      `${id}-${a.record.git.commit.slice(0, 7)}-${b.record.git.commit.slice(0, 7)}`,
    );
  await writeCsv(join(dir, "compare.csv"), tableOf(rows, ["variant", "metric", "a", "b", "delta"]));
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: `${id}: accuracy at ${a.record.git.commit.slice(0, 7)} (A) and ${
      b.record.git.commit.slice(0, 7)
    } (B)`,
    data: {
      values: rows.filter((r) => r.metric === "accuracy").flatMap((r) => [
        { variant: r.variant, run: "A", accuracy: r.a },
        { variant: r.variant, run: "B", accuracy: r.b },
      ]),
    },
    mark: "bar",
    width: 60,
    height: 220,
    encoding: {
      column: { field: "variant", type: "nominal", title: null },
      x: { field: "run", type: "nominal", title: null },
      y: { field: "accuracy", type: "quantitative", scale: { zero: false } },
      color: { field: "run", type: "nominal" },
    },
  };
  await writeJsonAtomic(join(dir, "compare.vl.json"), spec);
  await writeTextAtomic(join(dir, "compare.svg"), await renderSvg(spec));
  console.log(`wrote ${dir}/compare.csv and compare.svg`);
  if (pct !== undefined) {
    const reg = regressions(rows, pct);
    if (reg.length) {
      for (const r of reg) console.error(`regression: ${r}`);
      Deno.exit(1);
    }
    console.log(`no regression beyond ${pct}`);
  }
});

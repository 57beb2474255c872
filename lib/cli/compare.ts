/**
 * `deno task compare [REV_A] [REV_B] [--experiment ID] [--out DIR] [--fail-on-regression PCT]`:
 * compares the latest complete runs at two commits, prints metric, A, B and
 * delta per variant, writes a comparison table and plot, and with
 * `--fail-on-regression` exits 1 when accuracy drops by more than PCT points
 * or size grows by more than PCT percent.
 * @module
 */
import { join } from "node:path";
import { parseFlags, runMain, UsageError } from "../util/cli.ts";
import { compareSummaries, pickRuns, regressions } from "../experiment/compare.ts";
import { formatRows, tableOf, writeCsv } from "../report/tables.ts";
import { renderSvg } from "../report/vega.ts";
import { writeJsonAtomic, writeTextAtomic } from "../util/fs.ts";

const REPO = new URL("../../", import.meta.url).pathname;

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    experiment: { type: "string" },
    out: { type: "string" },
    "fail-on-regression": { type: "string" },
    "report-dir": { type: "string" },
  });
  if (positionals.length > 2) {
    throw new UsageError(
      "usage: deno task compare [REV_A] [REV_B] [--experiment ID] [--fail-on-regression PCT]",
    );
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
  const outRoot = (f.out as string | undefined) ?? join(REPO, "reports", "runs");
  const [a, b] = await pickRuns(
    outRoot,
    positionals[0],
    positionals[1],
    f.experiment as string | undefined,
    REPO,
  );
  const rows = await compareSummaries(a.dir, b.dir);
  const id = a.record.experiment.id;
  console.log(
    `${id}: A = run ${a.record.runId} (commit ${
      a.record.git.commit.slice(0, 7)
    }), B = run ${b.record.runId} (commit ${b.record.git.commit.slice(0, 7)})`,
  );
  console.log(
    formatRows(
      rows.map((r) => ({ variant: r.variant, metric: r.metric, A: r.a, B: r.b, delta: r.delta })),
    ),
  );
  const dir = (f["report-dir"] as string | undefined) ??
    join(
      REPO,
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

/**
 * `deno task figures [--run] [--out DIR] [--runs DIR] [--layer NAME]`: regenerates
 * every figure from the latest complete runs into `reports/figures/`; with
 * `--run`, first runs the experiments that have no complete run
 * (person-detect, fashion-mnist seeds 1-3).
 * @module
 */
import { join } from "node:path";
import { parseFlags, runMain } from "../util/cli.ts";
import { figuresReadme, latestRuns, writeFigures } from "../report/figures.ts";
import { writeTextAtomic } from "../util/fs.ts";
import { runExperiment } from "../experiment/runner.ts";
import { exportVariant } from "../export/mod.ts";
import { initBackend } from "../backend/mod.ts";

const REPO = new URL("../../", import.meta.url).pathname;

await runMain(async () => {
  const { values: f } = parseFlags(Deno.args, {
    run: { type: "boolean" },
    out: { type: "string" },
    runs: { type: "string" },
    layer: { type: "string", default: "pw7" },
  });
  const outRoot = (f.runs as string | undefined) ?? join(REPO, "reports", "runs");
  const dir = (f.out as string | undefined) ?? join(REPO, "reports", "figures");
  if (f.run) {
    if (!(await latestRuns(outRoot, "person-detect")).size) {
      await runExperiment({
        path: join(REPO, "experiments", "person-detect.ts"),
        outRoot,
        exporter: exportVariant,
      });
    }
    const have = await latestRuns(outRoot, "fashion-mnist");
    for (const seed of [1, 2, 3]) {
      if (have.has(seed)) continue;
      await runExperiment({
        path: join(REPO, "experiments", "fashion-mnist.ts"),
        outRoot,
        resolve: { seed },
        exporter: exportVariant,
      });
    }
  }
  await initBackend("wasm");
  const figs = await writeFigures(outRoot, dir, f.layer as string);
  await writeTextAtomic(join(dir, "README.md"), figuresReadme(figs));
  for (const fig of figs) console.log(`${fig.title}: ${join(dir, fig.name)}.{svg,png,csv}`);
  if (!figs.length) {
    console.log("no complete runs of person-detect or fashion-mnist yet (use --run)");
  }
});

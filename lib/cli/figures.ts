/**
 * `deno task figures [--run] [--out DIR] [--runs DIR] [--layer NAME]`: regenerates
 * every figure from the latest complete runs into `reports/figures/`; with
 * `--run`, first runs the experiments that have no complete run
 * (person-detect, fashion-mnist seeds 1-3).
 * @module
 */
import { REPO_ROOT } from "../util/path.ts";
import { join } from "node:path";
import { parseFlags, runMain } from "../util/cli.ts";
import { figuresReadme, latestRuns, writeFigures } from "../analysis/figures.ts";
import { PAPER_FIGURES } from "../analysis/paper_figures.ts";
import { DEFAULT_RUNS_ROOT } from "../run/run_dir.ts";
import { writeTextAtomic } from "../util/fs.ts";
import { runExperiment } from "../experiment/runner.ts";
import { initBackend } from "../backend/mod.ts";

const USAGE = "usage: deno task figures [--run] [--out DIR] [--runs DIR] [--layer NAME]";

await runMain(async () => {
  const { values: f } = parseFlags(Deno.args, {
    run: { type: "boolean" },
    out: { type: "string" },
    runs: { type: "string" },
    layer: { type: "string", default: PAPER_FIGURES.main.histogram.layer },
  }, USAGE);
  const outRoot = (f.runs as string | undefined) ?? DEFAULT_RUNS_ROOT;
  const dir = (f.out as string | undefined) ?? join(REPO_ROOT, "reports", "figures");
  if (f.run) {
    if (!(await latestRuns(outRoot, PAPER_FIGURES.main.experiment)).size) {
      await runExperiment({
        path: join(REPO_ROOT, "experiments", "person-detect.ts"),
        outRoot,
      });
    }
    const have = await latestRuns(outRoot, PAPER_FIGURES.sweep.experiment);
    for (const seed of [1, 2, 3]) {
      if (have.has(seed)) continue;
      await runExperiment({
        path: join(REPO_ROOT, "experiments", "fashion-mnist.ts"),
        outRoot,
        resolve: { seed },
      });
    }
  }
  await initBackend("wasm");
  const defs = {
    ...PAPER_FIGURES,
    main: {
      ...PAPER_FIGURES.main,
      histogram: { ...PAPER_FIGURES.main.histogram, layer: f.layer as string },
    },
  };
  const figs = await writeFigures(outRoot, dir, defs);
  await writeTextAtomic(join(dir, "README.md"), figuresReadme(figs));
  for (const fig of figs) console.log(`${fig.title}: ${join(dir, fig.name)}.{svg,png,csv}`);
  if (!figs.length) {
    console.log("no complete runs of person-detect or fashion-mnist yet (use --run)");
  }
});

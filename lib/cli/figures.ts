/**
 * `deno task figures [--run] [--out DIR] [--runs DIR] [--layer NAME]`: regenerates
 * every figure from the latest complete runs into `reports/figures/`; with
 * `--run`, first runs the experiments that have no complete run
 * (person-detect, fashion-mnist seeds 1-3). A figure with no complete run to draw it
 * from keeps its committed files and README section; with nothing at all to draw it
 * says so, writes nothing and exits 1.
 * @module
 */
import { REPO_ROOT } from "../util/path.ts";
import { join } from "node:path";
import { parseFlags, runMain, taskCommand, UsageError } from "../util/cli.ts";
import { figuresReadme, latestRuns, writeFigures } from "../analysis/figures.ts";
import { PAPER_FIGURES } from "../analysis/paper_figures.ts";
import { DEFAULT_RUNS_ROOT } from "../run/run_dir.ts";
import { exists, writeTextAtomic } from "../util/fs.ts";
import { runExperiment } from "../experiment/runner.ts";
import { initBackend } from "../backend/mod.ts";

const USAGE = "usage: deno task figures [--run] [--out DIR] [--runs DIR] [--layer NAME]";

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    run: { type: "boolean", help: "first run the experiments that have no complete run (hours)" },
    out: { type: "string", arg: "DIR", help: "where the figures go (default: reports/figures)" },
    runs: { type: "string", arg: "DIR", help: "runs root to read (default: reports/runs)" },
    layer: {
      type: "string",
      arg: "NAME",
      default: PAPER_FIGURES.main.histogram.layer,
      help: "the layer of the weight histogram",
    },
  }, USAGE);
  if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}\n${USAGE}`);
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
  if (!figs.length) {
    throw new Error(
      `${outRoot}: no complete runs of ${PAPER_FIGURES.main.experiment} or ${PAPER_FIGURES.sweep.experiment} to draw from; ` +
        `nothing written (run them first: ${taskCommand("figures", ["--run"])})`,
    );
  }
  const readme = join(dir, "README.md");
  const previous = await exists(readme) ? await Deno.readTextFile(readme) : "";
  await writeTextAtomic(readme, figuresReadme(figs, previous));
  for (const fig of figs) console.log(`${fig.title}: ${join(dir, fig.name)}.{svg,png,csv}`);
});

/**
 * `deno task run <experiment.ts> [options]`: runs an experiment module and
 * prints where its results are and the headline table.
 * @module
 */
import { intFlag, parseFlags, runMain, shellQuote, UsageError } from "../util/cli.ts";
import { runExperiment } from "../experiment/runner.ts";
import { type BackendName, BACKENDS } from "../backend/mod.ts";
import { consoleProgress } from "../util/progress.ts";
import { formatRows } from "../util/tables.ts";
import { exists } from "../util/fs.ts";

const USAGE =
  `usage: deno task run <experiment.ts> [--seed N] [--quick | --full] [--data DIR] [--out DIR]
       [--backend wasm|cpu] [--set key=value ...] [--variants a,b] [--resume [--run-id ID]] [--quiet]`;

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    seed: { type: "string" },
    quick: { type: "boolean" },
    full: { type: "boolean" },
    data: { type: "string" },
    out: { type: "string" },
    backend: { type: "string", default: "wasm" },
    set: { type: "string", multiple: true },
    variants: { type: "string" },
    resume: { type: "boolean" },
    "run-id": { type: "string" },
    quiet: { type: "boolean" },
  }, USAGE);
  if (positionals.length !== 1) throw new UsageError(`expected one experiment module\n${USAGE}`);
  const path = positionals[0];
  if (!(await exists(path))) throw new UsageError(`${path}: experiment file not found`);
  if (f.quick && f.full) throw new UsageError("--quick and --full exclude each other");
  if (!BACKENDS.includes(f.backend as BackendName)) {
    throw new UsageError(
      `--backend: expected one of ${BACKENDS.join(", ")}, got ${JSON.stringify(f.backend)}`,
    );
  }
  if (f["run-id"] && !f.resume) throw new UsageError("--run-id goes with --resume");
  for (const flag of ["data", "out"] as const) {
    const dir = f[flag] as string | undefined;
    if (dir === undefined) continue;
    const st = await Deno.stat(dir).catch(() => null);
    if (st && !st.isDirectory) {
      throw new UsageError(`--${flag}: ${dir} is a file; expected a directory`);
    }
  }
  const variants = f.variants !== undefined
    ? String(f.variants).split(",").map((s) => s.trim()).filter(Boolean)
    : undefined;
  if (variants && !variants.length) {
    throw new UsageError(
      `--variants: expected variant names a,b, got ${JSON.stringify(f.variants)}`,
    );
  }
  // Ctrl-C / kill: say how to continue (the run keeps a checkpoint after every epoch)
  const again = ["deno task run", ...Deno.args.map(shellQuote), ...(f.resume ? [] : ["--resume"])]
    .join(" ");
  for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    Deno.addSignalListener(sig, () => {
      console.error(`\nqgt: interrupted; continue from the last epoch checkpoint with: ${again}`);
      Deno.exit(code);
    });
  }
  const res = await runExperiment({
    path,
    resolve: {
      profile: f.quick ? "quick" : f.full ? "full" : "default",
      seed: f.seed !== undefined ? intFlag("--seed", f.seed, 0, 2 ** 31) : undefined,
      set: (f.set as string[] | undefined) ?? [],
      dataDir: f.data as string | undefined,
      variants,
    },
    outRoot: f.out as string | undefined,
    backend: f.backend as BackendName,
    resume: f.resume ? ((f["run-id"] as string | undefined) ?? true) : undefined,
    progress: consoleProgress({ quiet: !!f.quiet }),
  });
  // fixed decimals per column: bytes whole, the ratio and percentages to 0.01
  const rows = res.summary.map((s) => ({
    variant: s.variant,
    bytes: s.bytes,
    "x smaller": s.reduction.toFixed(2),
    "accuracy %": (s.accuracy * 100).toFixed(2),
    "drop (points)": s.accuracy_drop === null ? "" : s.accuracy_drop.toFixed(2),
  }));
  console.log(
    `\n${res.record.experiment.id} run ${res.record.runId} (commit ${
      res.record.git.commit.slice(0, 7)
    }${res.record.git.dirty ? ", dirty" : ""})`,
  );
  console.log(formatRows(rows));
  console.log(`\nresults: ${res.runDir}/ (summary.csv, metrics.csv, layers.csv, report.html)`);
});

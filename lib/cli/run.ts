/**
 * `deno task run <experiment.ts> [options]`: runs an experiment module and
 * prints where its results are and the headline table.
 * @module
 */
import { intFlag, parseFlags, runMain, taskCommand, UsageError } from "../util/cli.ts";
import { runExperiment } from "../experiment/runner.ts";
import { type BackendChoice, BACKENDS, chooseBackend } from "../backend/mod.ts";
import { consoleProgress } from "../util/progress.ts";
import { formatRows } from "../util/tables.ts";
import { exists, removePendingTemps } from "../util/fs.ts";

const USAGE =
  `usage: deno task run <experiment.ts> [--seed N] [--quick | --full] [--data DIR] [--out DIR]
       [--backend wasm|native|auto|cpu] [--set key=value ...] [--variants a,b] [--resume [--run-id ID]] [--quiet]`;

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    seed: { type: "string", arg: "N", help: "the run's seed (default: the experiment's seed)" },
    quick: { type: "boolean", help: "the experiment's small profile (profiles.quick)" },
    full: { type: "boolean", help: "the experiment's paper-scale profile (profiles.full)" },
    data: {
      type: "string",
      arg: "DIR",
      help: "your own images or dataset files instead of the default",
    },
    out: { type: "string", arg: "DIR", help: "runs root (default: reports/runs)" },
    backend: {
      type: "string",
      arg: "NAME",
      default: "auto",
      help:
        "training backend: auto (native where oneDNN loads and passes its self-check, else wasm), native (oneDNN: apt-get install libdnnl-dev), wasm or cpu",
    },
    set: {
      type: "string",
      arg: "KEY=VALUE",
      multiple: true,
      help: "set any field by its dotted path, e.g. train.epochs=3",
    },
    variants: { type: "string", arg: "A,B", help: "run only these variants (default: all)" },
    resume: { type: "boolean", help: "continue the latest interrupted run of this configuration" },
    "run-id": { type: "string", arg: "ID", help: "with --resume: continue this run" },
    quiet: { type: "boolean", help: "no progress lines (warnings and errors still print)" },
  }, USAGE);
  if (positionals.length !== 1) throw new UsageError(`expected one experiment module\n${USAGE}`);
  const path = positionals[0];
  if (!(await exists(path))) throw new UsageError(`${path}: experiment file not found`);
  if (f.quick && f.full) throw new UsageError("--quick and --full exclude each other");
  const choices = [...BACKENDS, "auto"];
  if (!choices.includes(f.backend as string)) {
    throw new UsageError(
      `--backend: expected one of ${choices.join(", ")}, got ${JSON.stringify(f.backend)}`,
    );
  }
  const backend = await chooseBackend(f.backend as BackendChoice);
  if (backend.note) console.error(backend.note);
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
  const again = taskCommand("run", [...Deno.args, ...(f.resume ? [] : ["--resume"])]);
  for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    Deno.addSignalListener(sig, () => {
      removePendingTemps(); // a write under way leaves no temporary file
      console.error(`\nqgt: interrupted; continue from the last epoch checkpoint with: ${again}`);
      setTimeout(() => {
        removePendingTemps(); // one the system was still creating at the first call
        Deno.exit(code);
      }, 200);
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
    backend: backend.name,
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
